package stepinput_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/stepinput"
)

const payload = `{
	"user": {"name": "Ada", "email": "ada@example.com", "age": 36, "admin": false, "nick": null},
	"items": [{"name": "first", "price": 1.50}, {"name": "second", "price": 12345678901234567890}],
	"html": "<b>&</b>",
	"tag": {"t": "<i>&"},
	"template": "{{steps.secret.output}}",
	"0": "zero key"
}`

var outputs = map[string]json.RawMessage{
	"fetch":  json.RawMessage(`{"status": 200, "json": {"ids": [3, 5]}, "text": "ok"}`),
	"secret": json.RawMessage(`{"token": "SECRET"}`),
	"list":   json.RawMessage(`[10, 20]`),
	"broken": json.RawMessage(`{"a":`),
	"empty":  nil,
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    string // compared as JSON values
		wantRef string // if set, a *RefError for this reference is expected
		wantMsg string
	}{
		{name: "no references", input: `{"a": [1, 2.50, true, null, "x"], "b": {"c": "d"}}`,
			want: `{"a": [1, 2.50, true, null, "x"], "b": {"c": "d"}}`},
		{name: "whole string keeps the type: object", input: `{"u": "{{payload.user}}"}`,
			want: `{"u": {"name": "Ada", "email": "ada@example.com", "age": 36, "admin": false, "nick": null}}`},
		{name: "number", input: `{"n": "{{payload.user.age}}"}`, want: `{"n": 36}`},
		{name: "big number stays exact", input: `{"n": "{{payload.items.1.price}}"}`, want: `{"n": 12345678901234567890}`},
		{name: "boolean", input: `{"b": "{{payload.user.admin}}"}`, want: `{"b": false}`},
		{name: "null", input: `{"b": "{{payload.user.nick}}"}`, want: `{"b": null}`},
		{name: "whitespace inside braces", input: `{"e": "{{  payload.user.email \t}}"}`, want: `{"e": "ada@example.com"}`},
		{name: "array index", input: `{"n": "{{payload.items.0.name}}"}`, want: `{"n": "first"}`},
		{name: "digit key on an object", input: `{"n": "{{payload.0}}"}`, want: `{"n": "zero key"}`},
		{name: "whole payload", input: `{"p": "{{payload}}"}`, want: `{"p": ` + payload + `}`},
		{name: "step output", input: `{"ids": "{{steps.fetch.output.json.ids}}", "first": "{{steps.fetch.output.json.ids.1}}"}`,
			want: `{"ids": [3, 5], "first": 5}`},
		{name: "whole step output", input: `["{{steps.list.output}}"]`, want: `[[10, 20]]`},
		{name: "interpolation: strings raw, others compact JSON",
			input: `{"msg": "Hi {{payload.user.name}} ({{payload.user.age}}, {{ payload.user.admin }}, {{payload.user.nick}}): {{steps.fetch.output.json}}"}`,
			want:  `{"msg": "Hi Ada (36, false, null): {\"ids\":[3,5]}"}`},
		{name: "interpolation does not HTML-escape", input: `{"m": "x{{payload.html}}y", "n": "-{{payload.items.0}}", "o": "={{payload.tag}}"}`,
			want: `{"m": "x<b>&</b>y", "n": "-{\"name\":\"first\",\"price\":1.50}", "o": "={\"t\":\"<i>&\"}"}`},
		{name: "substituted values are not evaluated again", input: `{"t": "{{payload.template}}", "u": "> {{payload.template}}"}`,
			want: `{"t": "{{steps.secret.output}}", "u": "> {{steps.secret.output}}"}`},
		{name: "keys are not evaluated", input: `{"{{payload.user.name}}": 1}`, want: `{"{{payload.user.name}}": 1}`},
		{name: "nested arrays and objects", input: `[{"a": ["{{payload.user.age}}", {"b": "{{steps.fetch.output.text}}"}]}]`,
			want: `[{"a": [36, {"b": "ok"}]}]`},
		{name: "other placeholders are left alone", input: `{"a": "{{ name }}", "b": "Dear {{name}}, {{payload.user.name}}", "c": "{{}}", "d": "{{payloads.x}}"}`,
			want: `{"a": "{{ name }}", "b": "Dear {{name}}, Ada", "c": "{{}}", "d": "{{payloads.x}}"}`},
		{name: "unbalanced braces are text", input: `{"a": "{{payload.user.name", "b": "payload.user.name}}"}`,
			want: `{"a": "{{payload.user.name", "b": "payload.user.name}}"}`},
		{name: "escaped braces in JSON are still braces", input: `{"a": "\u007b{payload.user.age}}"}`, want: `{"a": 36}`},

		{name: "missing key", input: `{"a": "{{payload.user.phone}}"}`, wantRef: "payload.user.phone", wantMsg: `no key "phone" under user`},
		{name: "missing key inside text", input: `{"a": "x {{payload.nope}} y"}`, wantRef: "payload.nope", wantMsg: `no key "nope"`},
		{name: "index out of range", input: `{"a": "{{payload.items.2.name}}"}`, wantRef: "payload.items.2.name", wantMsg: "index 2 is out of range under items (length 2)"},
		{name: "index not a number", input: `{"a": "{{payload.items.first}}"}`, wantRef: "payload.items.first", wantMsg: `"first" is not an array index`},
		{name: "index with a leading zero", input: `{"a": "{{payload.items.01}}"}`, wantRef: "payload.items.01", wantMsg: "not an array index"},
		{name: "negative index", input: `{"a": "{{payload.items.-1}}"}`, wantRef: "payload.items.-1", wantMsg: "not an array index"},
		{name: "into a scalar", input: `{"a": "{{payload.user.age.x}}"}`, wantRef: "payload.user.age.x", wantMsg: `cannot look up "x" in a number under user.age`},
		{name: "unknown step", input: `{"a": "{{steps.later.output.x}}"}`, wantRef: "steps.later.output.x", wantMsg: `step "later" has no output`},
		{name: "step with no output", input: `{"a": "{{steps.empty.output}}"}`, wantRef: "steps.empty.output", wantMsg: "there is no output of step empty"},
		{name: "broken step output", input: `{"a": "{{steps.broken.output.a}}"}`, wantRef: "steps.broken.output.a", wantMsg: "not valid JSON"},
		{name: "malformed step reference", input: `{"a": "{{steps.fetch.json}}"}`, wantRef: "steps.fetch.json", wantMsg: "steps.<id>.output"},
		{name: "empty segment", input: `{"a": "{{payload..x}}"}`, wantRef: "payload..x", wantMsg: "empty or blank path segment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := stepinput.Resolve(json.RawMessage(tt.input), json.RawMessage(payload), outputs)
			if tt.wantRef != "" {
				var re *stepinput.RefError
				if !errors.As(err, &re) {
					t.Fatalf("Resolve = %s, %v; want a *RefError", got, err)
				}
				if re.Ref != tt.wantRef || !strings.Contains(re.Reason, tt.wantMsg) {
					t.Fatalf("RefError = {%q, %q}, want {%q, …%q…}", re.Ref, re.Reason, tt.wantRef, tt.wantMsg)
				}
				if !strings.Contains(err.Error(), "{{"+tt.wantRef+"}}") {
					t.Errorf("Error() = %q does not name the reference", err)
				}
				if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "Ada") {
					t.Errorf("Error() = %q leaks referenced data", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			assertSameJSON(t, got, []byte(tt.want))
		})
	}
}

func TestResolveRejectsInvalidJSON(t *testing.T) {
	for _, in := range []string{``, `{`, `{"a": 1} x`, `{"a": 1}{}`} {
		_, err := stepinput.Resolve(json.RawMessage(in), json.RawMessage(payload), outputs)
		if err == nil {
			t.Errorf("Resolve(%q) = nil error", in)
		}
		var re *stepinput.RefError
		if errors.As(err, &re) {
			t.Errorf("Resolve(%q) = RefError %v, want a plain error", in, err)
		}
	}
}

func TestResolveWithoutPayload(t *testing.T) {
	_, err := stepinput.Resolve(json.RawMessage(`{"a": "{{payload.x}}"}`), nil, nil)
	var re *stepinput.RefError
	if !errors.As(err, &re) || re.Reason != "there is no payload" {
		t.Fatalf("Resolve = %v, want RefError \"there is no payload\"", err)
	}
}

func TestRefs(t *testing.T) {
	tests := []struct {
		input   string
		want    []string
		wantErr bool
	}{
		{input: `{"a": 1}`, want: nil},
		{input: `{"b": "{{ steps.fetch.output.ids.0 }}", "a": ["{{payload.x}}", "{{payload.x}} and {{steps.list.output}}"], "c": "{{ name }}"},`, wantErr: true},
		{input: `{"b": "{{ steps.fetch.output.ids.0 }}", "a": ["{{payload.x}}", "{{payload.x}} and {{steps.list.output}}"], "c": "{{ name }}"}`,
			want: []string{"payload.x", "steps.list.output", "steps.fetch.output.ids.0"}},
		{input: `{"{{payload.key}}": "v"}`, want: nil},
		{input: `["{{steps..output}}"]`, wantErr: true},
		{input: `["{{steps.x}}"]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			got, err := stepinput.Refs(json.RawMessage(tt.input))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Refs = %q, nil; want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Refs: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Refs = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStepID(t *testing.T) {
	tests := []struct {
		ref    string
		want   string
		wantOK bool
	}{
		{"steps.fetch.output.ids.0", "fetch", true},
		{"steps.list.output", "list", true},
		{"payload.x", "", false},
		{"steps.x", "", false},
		{"name", "", false},
	}
	for _, tt := range tests {
		got, ok := stepinput.StepID(tt.ref)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("StepID(%q) = %q, %v; want %q, %v", tt.ref, got, ok, tt.want, tt.wantOK)
		}
	}
}

// FuzzResolve checks that Resolve never panics, returns valid JSON when it succeeds, and
// returns input whose strings hold no "{{" unchanged.
func FuzzResolve(f *testing.F) {
	seeds := []string{
		`{"a": "{{payload.user.name}}"}`,
		`{"a": "x {{ payload.items.1.price }} y {{steps.fetch.output.json.ids.0}}"}`,
		`{"a": "{{steps.list.output.5}}"}`,
		`["{{payload}}", "{{", "}}", "{{}}", "{{{payload.0}}}"]`,
		`{"a": [1, 2.5e10, true, null, {"b": "c"}]}`,
		`{"a": [1, 2.50, "x}}", {"{{k": null}]}`,
		`"{{payload.html}}"`,
		`12345678901234567890`,
		`{"a": "\u007b{payload.user.age}}"}`,
		`0 }`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), []byte(payload))
	}
	f.Fuzz(func(t *testing.T, input, payload []byte) {
		out, err := stepinput.Resolve(input, payload, outputs)
		if err == nil && !json.Valid(out) {
			t.Fatalf("Resolve(%q) returned invalid JSON %q", input, out)
		}
		if !json.Valid(input) {
			if err == nil {
				t.Fatalf("Resolve(%q) accepted invalid JSON", input)
			}
			return
		}
		var in any
		dec := json.NewDecoder(bytes.NewReader(input))
		dec.UseNumber()
		if dec.Decode(&in) != nil || containsBraces(in) {
			return
		}
		if err != nil {
			t.Fatalf("Resolve(%q) = %v, want success: it holds no reference", input, err)
		}
		assertSameJSON(t, out, input)
	})
}

// containsBraces reports whether any string value (not key) holds "{{".
func containsBraces(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.Contains(v, "{{")
	case []any:
		for _, e := range v {
			if containsBraces(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range v {
			if containsBraces(e) {
				return true
			}
		}
	}
	return false
}

func assertSameJSON(t *testing.T, got, want []byte) {
	t.Helper()
	g, w := decodeNumbers(t, got), decodeNumbers(t, want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// decodeNumbers decodes JSON with numbers kept as their exact text, so 1.50 stays 1.50.
func decodeNumbers(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

// TestResolveSizeLimit: the resolved input may be MaxResolvedBytes long and no longer,
// whether a value is substituted whole or interpolated into text.
func TestResolveSizeLimit(t *testing.T) {
	// A JSON string of n bytes, quotes included.
	text := func(n int) string { return strings.Repeat("a", n-2) }
	payload := func(s string) json.RawMessage { return json.RawMessage(`{"s":"` + s + `"}`) }
	for _, tc := range []struct {
		name    string
		input   string
		s       string
		wantErr bool
	}{
		{"whole value at the limit", `"{{payload.s}}"`, text(stepinput.MaxResolvedBytes), false},
		{"whole value a byte over", `"{{payload.s}}"`, text(stepinput.MaxResolvedBytes + 1), true},
		{"interpolated at the limit", `"x{{payload.s}}"`, text(stepinput.MaxResolvedBytes - 1), false},
		{"interpolated a byte over", `"x{{payload.s}}"`, text(stepinput.MaxResolvedBytes), true},
		// Escapes count: each quote in the value takes two bytes once written.
		{"escapes count", `"{{payload.s}}"`, strings.Repeat(`\"`, stepinput.MaxResolvedBytes/2), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := stepinput.Resolve(json.RawMessage(tc.input), payload(tc.s), nil)
			var se *stepinput.SizeError
			if tc.wantErr {
				if !errors.As(err, &se) || se.Limit != stepinput.MaxResolvedBytes {
					t.Fatalf("Resolve: %d bytes, err %v; want a *SizeError with limit %d", len(out), err, stepinput.MaxResolvedBytes)
				}
				if !strings.Contains(err.Error(), strconv.Itoa(stepinput.MaxResolvedBytes)) {
					t.Errorf("error %q does not name the limit", err)
				}
				return
			}
			if err != nil || len(out) != stepinput.MaxResolvedBytes {
				t.Fatalf("Resolve: %d bytes, err %v; want exactly %d bytes", len(out), err, stepinput.MaxResolvedBytes)
			}
		})
	}
}

// TestResolveBombStaysWithinBudget: a small input that repeats a reference to a large
// value (the expansion would be ~200 MB) fails with a *SizeError having allocated about
// the budget, not the expansion.
func TestResolveBombStaysWithinBudget(t *testing.T) {
	big := strings.Repeat("x", 100<<10)
	payload := json.RawMessage(`{"big":"` + big + `","obj":{"v":"` + big + `"}}`)
	const repeats = 2000
	for _, tc := range []struct{ name, input string }{
		{"whole values in an array", `[` + strings.TrimSuffix(strings.Repeat(`"{{payload.big}}",`, repeats), ",") + `]`},
		{"objects in an object", `{` + strings.TrimSuffix(func() string {
			var b strings.Builder
			for i := range repeats {
				fmt.Fprintf(&b, `"k%d":"{{payload.obj}}",`, i)
			}
			return b.String()
		}(), ",") + `}`},
		{"interpolated text", `{"t":"` + strings.Repeat(`{{payload.big}}`, repeats) + `"}`},
		{"interpolated objects", `{"t":"` + strings.Repeat(`-{{payload.obj}}`, repeats) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			out, err := stepinput.Resolve(json.RawMessage(tc.input), payload, nil)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			var se *stepinput.SizeError
			if !errors.As(err, &se) {
				t.Fatalf("Resolve: %d bytes, err %v; want a *SizeError", len(out), err)
			}
			// The input and payload are decoded (well under 1 MB here); on top of that
			// the result may be built up to its limit, with room for growth copies.
			allocated := after.TotalAlloc - before.TotalAlloc
			if limit := uint64(8 * stepinput.MaxResolvedBytes); allocated > limit {
				t.Errorf("Resolve allocated %d bytes before failing, want at most %d", allocated, limit)
			}
			if elapsed > 2*time.Second {
				t.Errorf("Resolve took %v to fail, want it quick", elapsed)
			}
		})
	}
}

func TestResolveItem(t *testing.T) {
	out, err := stepinput.ResolveItem(json.RawMessage(`{"n":"{{item.name}}","i":"{{index}}","s":"#{{index}}"}`), nil, nil, json.RawMessage(`{"name":"ada"}`), 7)
	if err != nil || string(out) != `{"i":7,"n":"ada","s":"#7"}` {
		t.Fatalf("ResolveItem = %s, %v", out, err)
	}
	var re *stepinput.RefError
	if _, err := stepinput.Resolve(json.RawMessage(`{"n":"{{item}}"}`), nil, nil); !errors.As(err, &re) {
		t.Fatalf("{{item}} outside a for_each: %v, want a *RefError", err)
	}
}
