package analytics

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/static"
)

// browser is a person's User-Agent.
const browser = "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0"

func newTestService(t *testing.T) *Service {
	t.Helper()
	s, err := NewService(nil, []byte("internal-test-secret-0123"))
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	c, err := LoadCopy(static.MarketingFS())
	if err != nil {
		t.Fatalf("LoadCopy: %v", err)
	}
	s.WithCopy(c)
	at := time.Date(2025, 11, 3, 12, 0, 0, 0, time.UTC)
	return s.WithClock(func() time.Time { return at })
}

func TestEventNormalises(t *testing.T) {
	s := newTestService(t)
	e, err := s.event(TrackInput{
		Type: CTAClick, Payload: json.RawMessage(" {\"plan\": \"pro\",\n \"n\": [1, 2]} "),
		Ref:      "https://levqor.ai/pricing?utm_source=Newsletter&email=ada%40example.com&utm_medium=email&utm_campaign=launch#top",
		Referrer: "https://www.Example.com/post?id=1", Email: " Ada@Example.com ", UserAgent: browser,
	})
	if err != nil {
		t.Fatalf("event: %v", err)
	}
	if !strings.HasPrefix(e.ID, "evt_") || e.Type != CTAClick || !e.At.Equal(s.now()) || e.Bot {
		t.Errorf("event = %+v", e)
	}
	if e.Path != "/pricing" || e.ReferrerHost != "example.com" || e.UTM != (UTM{"newsletter", "email", "launch"}) {
		t.Errorf("path %q, referrer host %q, UTM %+v", e.Path, e.ReferrerHost, e.UTM)
	}
	if e.Ref != "https://levqor.ai/pricing?utm_source=Newsletter&utm_medium=email&utm_campaign=launch" || e.Referrer != "https://www.Example.com/post" {
		t.Errorf("stored ref %q and referrer %q: want no other query parameters", e.Ref, e.Referrer)
	}
	if string(e.Payload) != `{"plan":"pro","n":[1,2]}` {
		t.Errorf("payload %s, want it compact", e.Payload)
	}
	if e.EmailHash != hashEmail(s.secret, "ada@example.com") || strings.Contains(e.EmailHash, "ada") {
		t.Errorf("email hash %q", e.EmailHash)
	}
	bot, err := s.event(TrackInput{Type: PageView, Payload: json.RawMessage("null"), UserAgent: "curl/8.5.0"})
	if err != nil || !bot.Bot || bot.Payload != nil || bot.EmailHash != "" {
		t.Errorf("curl's event = %+v, %v; want flagged, no payload, no hash", bot, err)
	}
}

func TestEventRefuses(t *testing.T) {
	s := newTestService(t)
	deep := strings.Repeat(`{"a":`, MaxPayloadDepth) + "1" + strings.Repeat("}", MaxPayloadDepth)
	cases := []struct {
		name    string
		in      TrackInput
		code    string
		pointer string
	}{
		{"unknown type", TrackInput{Type: "purchase"}, levqor.EInvalid, "/type"},
		{"payload array", TrackInput{Type: PageView, Payload: json.RawMessage(`[1]`)}, levqor.EInvalid, "/payload"},
		{"payload string", TrackInput{Type: PageView, Payload: json.RawMessage(`"x"`)}, levqor.EInvalid, "/payload"},
		{"payload not UTF-8", TrackInput{Type: PageView, Payload: json.RawMessage("{\"a\":\"\xff\"}")}, levqor.EInvalid, "/payload"},
		{"payload too deep", TrackInput{Type: PageView, Payload: json.RawMessage(`{"x":` + deep + `}`)}, levqor.EInvalid, "/payload"},
		{"payload too large", TrackInput{Type: PageView, Payload: json.RawMessage(`{"x":"` + strings.Repeat("a", MaxPayloadBytes) + `"}`)}, levqor.ETooLarge, "/payload"},
		{"long ref", TrackInput{Type: PageView, Ref: strings.Repeat("é", maxTextChars+1)}, levqor.EInvalid, "/ref"},
		{"long referrer", TrackInput{Type: PageView, Referrer: strings.Repeat("r", maxTextChars+1)}, levqor.EInvalid, "/referrer"},
		{"long path", TrackInput{Type: PageView, Path: "/" + strings.Repeat("p", maxTextChars)}, levqor.EInvalid, "/path"},
		{"long email", TrackInput{Type: PageView, Email: strings.Repeat("e", maxEmailChars+1)}, levqor.EInvalid, "/email"},
	}
	for _, tc := range cases {
		_, err := s.event(tc.in)
		var le *levqor.Error
		if !errors.As(err, &le) || le.Code != tc.code || len(le.Fields) != 1 || le.Fields[0].Pointer != tc.pointer {
			t.Errorf("%s: err = %v, want %s at %s", tc.name, err, tc.code, tc.pointer)
		}
	}
	// The limits themselves are allowed.
	justDeep := json.RawMessage(deep)
	justLarge := json.RawMessage(`{"x":"` + strings.Repeat("a", MaxPayloadBytes-8) + `"}`)
	for _, p := range []json.RawMessage{justDeep, justLarge} {
		if _, err := s.event(TrackInput{Type: PageView, Payload: p}); err != nil {
			t.Errorf("payload of %d bytes, depth %d: %v", len(p), levqor.JSONDepth(p), err)
		}
	}
}

func TestNewServiceRefusesShortSecret(t *testing.T) {
	if _, err := NewService(nil, []byte("short")); err == nil {
		t.Error("NewService accepted a 5-byte secret")
	}
}

func TestEmbeddedCopy(t *testing.T) {
	c := newTestService(t).copy
	if len(c.Headlines) == 0 || len(c.CTAs) == 0 || len(c.USPs) == 0 || len(c.Testimonials) == 0 {
		t.Fatalf("embedded copy is missing parts: %+v", c)
	}
	// Quotes are labelled as samples until real customers agree to be named.
	for _, q := range c.Testimonials {
		if !strings.Contains(strings.ToLower(q.Name+" "+q.Role+" "+q.Quote), "sample") {
			t.Errorf("testimonial %+v is not labelled as a sample", q)
		}
	}
}

func TestLoadCopyRefuses(t *testing.T) {
	good := `{"headlines":["h"],"ctas":[{"label":"Docs","url":"/docs"}],"usps":[{"title":"t","body":"b"}]}`
	quotes := `{"testimonials":[{"quote":"q","name":"n","role":"r"}]}`
	if _, err := LoadCopy(fstest.MapFS{"landing_snippets.json": {Data: []byte(good)}, "testimonials.json": {Data: []byte(quotes)}}); err != nil {
		t.Fatalf("LoadCopy(good) = %v", err)
	}
	cases := map[string][2]string{
		"unknown field":     {`{"headlines":["h"],"extra":1}`, quotes},
		"no headlines":      {`{"headlines":[]}`, quotes},
		"javascript URL":    {`{"headlines":["h"],"ctas":[{"label":"x","url":"javascript:alert(1)"}]}`, quotes},
		"protocol-relative": {`{"headlines":["h"],"ctas":[{"label":"x","url":"//evil.example"}]}`, quotes},
		"empty quote":       {good, `{"testimonials":[{"quote":" ","name":"n","role":"r"}]}`},
		"missing file":      {good, ""},
	}
	for name, files := range cases {
		fsys := fstest.MapFS{"landing_snippets.json": {Data: []byte(files[0])}}
		if files[1] != "" {
			fsys["testimonials.json"] = &fstest.MapFile{Data: []byte(files[1])}
		}
		if _, err := LoadCopy(fsys); err == nil {
			t.Errorf("%s: LoadCopy accepted it", name)
		}
	}
}
