package httpcall_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/connectortest"
	"github.com/levqor/levqor/connectors/httpcall"
	"github.com/levqor/levqor/outbound"
)

// upstream is a real HTTP server on 127.0.0.1 playing the service a step calls.
type upstream struct {
	*httptest.Server
	port string
	hits atomic.Int64
	last atomic.Pointer[seen]
}

// seen is what upstream received.
type seen struct {
	Method, Path, ContentType, UserAgent, Auth string
	Body                                       string
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	mux := http.NewServeMux()
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		io.WriteString(w, `{"id": 7, "tags": ["a", "b"]}`)
	})
	mux.HandleFunc("/problem", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		io.WriteString(w, `{"title": "ok"}`)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Location", "/somewhere")
		io.WriteString(w, "got it")
	})
	mux.HandleFunc("/status/", func(w http.ResponseWriter, r *http.Request) {
		code := strings.TrimPrefix(r.URL.Path, "/status/")
		if code == "429" {
			ra := "7"
			if r.URL.Query().Has("ra") {
				ra = r.URL.Query().Get("ra")
			}
			w.Header().Set("Retry-After", ra)
			w.WriteHeader(http.StatusTooManyRequests)
		} else if code == "404" {
			w.WriteHeader(http.StatusNotFound)
		} else {
			w.WriteHeader(http.StatusBadGateway)
		}
		io.WriteString(w, "upstream body with token=SECRET")
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", "1048577")
		}
		w.Write([]byte(strings.Repeat("x", httpcall.MaxResponseBytes+1)))
	})
	mux.HandleFunc("/exactly-max", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write([]byte(strings.Repeat("x", httpcall.MaxResponseBytes)))
	})
	mux.HandleFunc("/fits", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write([]byte(strings.Repeat("x", 1048000)))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		u.last.Store(&seen{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"),
			UserAgent: r.Header.Get("User-Agent"), Auth: r.Header.Get("Authorization"), Body: string(body)})
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(u.Close)
	parsed, err := url.Parse(u.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.port = parsed.Port()
	return u
}

func setup(t *testing.T) (*connectors.Registry, *upstream, *upstream) {
	t.Helper()
	allowed := newUpstream(t)
	forbidden := newUpstream(t) // same host, a port the guard does not allow
	guard, err := outbound.NewGuard([]string{"127.0.0.1:" + allowed.port})
	if err != nil {
		t.Fatal(err)
	}
	r, err := connectors.NewRegistry(httpcall.New(guard))
	if err != nil {
		t.Fatal(err)
	}
	return r, allowed, forbidden
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRequest(t *testing.T) {
	r, up, forbidden := setup(t)
	text := func(s string) *string { return &s }

	tests := []struct {
		name          string
		input         map[string]any
		wantOut       *httpcall.Output
		wantSeen      *seen
		wantCode      string
		wantRetryable bool
		wantRetryIn   time.Duration
		wantMsg       string
		wantNoHit     bool
	}{
		{
			name:     "GET JSON",
			input:    map[string]any{"url": up.URL + "/json"},
			wantOut:  &httpcall.Output{Status: 200, Headers: map[string]string{"content-type": "application/json; charset=utf-8", "content-length": "29"}, JSON: json.RawMessage(`{"id":7,"tags":["a","b"]}`)},
			wantSeen: &seen{Method: "GET", Path: "/json", UserAgent: "Levqor-HTTP-Connector/1"},
		},
		{
			name:    "+json media type is JSON",
			input:   map[string]any{"url": up.URL + "/problem"},
			wantOut: &httpcall.Output{Status: 200, Headers: map[string]string{"content-type": "application/problem+json", "content-length": "15"}, JSON: json.RawMessage(`{"title":"ok"}`)},
		},
		{
			name:     "POST JSON body with headers",
			input:    map[string]any{"method": "POST", "url": up.URL + "/echo", "json": map[string]any{"a": []int{1, 2}}, "headers": map[string]string{"Accept": "text/plain"}},
			wantOut:  &httpcall.Output{Status: 200, Headers: map[string]string{"content-type": "text/plain", "content-length": "6", "location": "/somewhere"}, Text: text("got it")},
			wantSeen: &seen{Method: "POST", Path: "/echo", ContentType: "application/json", UserAgent: "Levqor-HTTP-Connector/1", Body: `{"a":[1,2]}`},
		},
		{
			name:     "PUT text body, caller's content type and user agent win",
			input:    map[string]any{"method": "PUT", "url": up.URL + "/echo", "text": "héllo", "headers": map[string]string{"content-type": "text/csv", "User-Agent": "mine"}},
			wantOut:  &httpcall.Output{Status: 200, Headers: map[string]string{"content-type": "text/plain", "content-length": "6", "location": "/somewhere"}, Text: text("got it")},
			wantSeen: &seen{Method: "PUT", Path: "/echo", ContentType: "text/csv", UserAgent: "mine", Body: "héllo"},
		},
		{
			name:     "JSON null body is sent",
			input:    map[string]any{"method": "PATCH", "url": up.URL + "/echo", "json": nil},
			wantSeen: &seen{Method: "PATCH", Path: "/echo", ContentType: "application/json", UserAgent: "Levqor-HTTP-Connector/1", Body: "null"},
			wantOut:  &httpcall.Output{Status: 200, Headers: map[string]string{"content-type": "text/plain", "content-length": "6", "location": "/somewhere"}, Text: text("got it")},
		},
		{
			name:    "HEAD has no body",
			input:   map[string]any{"method": "HEAD", "url": up.URL + "/json"},
			wantOut: &httpcall.Output{Status: 200, Headers: map[string]string{"content-type": "application/json; charset=utf-8", "content-length": "29"}},
		},
		{
			name:    "204 has no body",
			input:   map[string]any{"method": "DELETE", "url": up.URL + "/empty"},
			wantOut: &httpcall.Output{Status: 204, Headers: map[string]string{}},
		},
		{
			name:    "a body that fits in a step's output is returned",
			input:   map[string]any{"url": up.URL + "/fits", "timeout_ms": 30000},
			wantOut: &httpcall.Output{Status: 200, Headers: map[string]string{"content-type": "application/octet-stream"}, Text: text(strings.Repeat("x", 1048000))},
		},
		{name: "a body at the limit that does not fit in a step's output", input: map[string]any{"url": up.URL + "/exactly-max"},
			wantCode: connectors.CodeResponseTooLarge, wantMsg: "does not fit in a step's output (1048576 bytes)"},
		{name: "404 is final", input: map[string]any{"url": up.URL + "/status/404"},
			wantCode: connectors.CodeUpstreamError, wantMsg: "upstream responded 404 Not Found"},
		{name: "502 is retryable", input: map[string]any{"url": up.URL + "/status/502"},
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "upstream responded 502 Bad Gateway"},
		{name: "429 is retryable after Retry-After", input: map[string]any{"url": up.URL + "/status/429"},
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantRetryIn: 7 * time.Second, wantMsg: "429"},
		{name: "response with a large Content-Length", input: map[string]any{"url": up.URL + "/big"},
			wantCode: connectors.CodeResponseTooLarge, wantMsg: "larger than 1048576 bytes"},
		{name: "chunked response over the limit", input: map[string]any{"url": up.URL + "/big?chunked=1"},
			wantCode: connectors.CodeResponseTooLarge, wantMsg: "larger than 1048576 bytes"},
		{name: "timeout_ms", input: map[string]any{"url": up.URL + "/slow", "timeout_ms": 50},
			wantCode: connectors.CodeTimeout, wantRetryable: true, wantMsg: "no complete response within 50ms"},
		{name: "disallowed loopback port is refused", input: map[string]any{"url": forbidden.URL + "/json"},
			wantCode: connectors.CodeRefused, wantMsg: "refused: 127.0.0.1 is a loopback address", wantNoHit: true},
		{name: "metadata address is refused", input: map[string]any{"url": "http://169.254.169.254/latest/meta-data/"},
			wantCode: connectors.CodeRefused, wantMsg: "refused: 169.254.169.254 is a link-local address (cloud metadata)"},
		{name: "localhost is refused", input: map[string]any{"url": "http://localhost:" + forbidden.port + "/json"},
			wantCode: connectors.CodeRefused, wantMsg: "refused: localhost resolves to a loopback address"},
		{name: "credentials in the URL", input: map[string]any{"url": "http://user:pw@127.0.0.1:" + up.port + "/json"},
			wantCode: connectors.CodeInvalidInput, wantMsg: "must not contain credentials"},
		{name: "scheme", input: map[string]any{"url": "file:///etc/passwd"},
			wantCode: connectors.CodeInvalidInput, wantMsg: "http:// or https://"},
		{name: "header value with a newline", input: map[string]any{"url": up.URL + "/json", "headers": map[string]string{"X-A": "a\r\nX-Injected: 1"}},
			wantCode: connectors.CodeInvalidInput, wantMsg: `header "X-A" has a control character`},
		{name: "Host header", input: map[string]any{"url": up.URL + "/json", "headers": map[string]string{"host": "evil"}},
			wantCode: connectors.CodeInvalidInput, wantMsg: "at /headers/host: not allowed here"},
		{name: "Transfer-Encoding header", input: map[string]any{"url": up.URL + "/json", "headers": map[string]string{"Transfer-Encoding": "chunked"}},
			wantCode: connectors.CodeInvalidInput, wantMsg: "at /headers/Transfer-Encoding: not allowed here"},
		{name: "header name that is not a token", input: map[string]any{"url": up.URL + "/json", "headers": map[string]string{"Bad Name": "x"}},
			wantCode: connectors.CodeInvalidInput, wantMsg: "at /headers: additionalProperties: additional properties 'Bad Name' not allowed"},
		{name: "header value too long", input: map[string]any{"url": up.URL + "/json", "headers": map[string]string{"X-Long": strings.Repeat("v", 8193)}},
			wantCode: connectors.CodeInvalidInput, wantMsg: "at /headers/X-Long: maxLength: got 8193, want 8192"},
		{name: "json and text together", input: map[string]any{"url": up.URL + "/echo", "json": 1, "text": "x"},
			wantCode: connectors.CodeInvalidInput, wantMsg: "at /json: not allowed here"},
		{name: "method", input: map[string]any{"url": up.URL + "/echo", "method": "TRACE"},
			wantCode: connectors.CodeInvalidInput, wantMsg: "at /method: enum"},
		{name: "url required", input: map[string]any{"method": "GET"},
			wantCode: connectors.CodeInvalidInput, wantMsg: "missing property 'url'"},
		{name: "url too long", input: map[string]any{"url": up.URL + "/" + strings.Repeat("a", 2048)},
			wantCode: connectors.CodeInvalidInput, wantMsg: "at /url: maxLength"},
		{name: "timeout_ms too big", input: map[string]any{"url": up.URL + "/json", "timeout_ms": 30001},
			wantCode: connectors.CodeInvalidInput, wantMsg: "at /timeout_ms: maximum"},
		{name: "too many headers", input: map[string]any{"url": up.URL + "/json", "headers": manyHeaders(33)},
			wantCode: connectors.CodeInvalidInput, wantMsg: "at /headers: maxProperties: got 33, want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up.last.Store(nil)
			hitsBefore := forbidden.hits.Load()
			out, err := r.Run(context.Background(), "http", "request", mustJSON(t, tt.input))
			if tt.wantCode != "" {
				var se *connectors.StepError
				if !errors.As(err, &se) {
					t.Fatalf("Run = %s, %v; want a StepError %s", out, err, tt.wantCode)
				}
				if se.Code != tt.wantCode || se.Retryable != tt.wantRetryable || se.RetryAfter != tt.wantRetryIn {
					t.Fatalf("Run error = %q retryable=%v retryAfter=%v; want %s retryable=%v retryAfter=%v",
						se, se.Retryable, se.RetryAfter, tt.wantCode, tt.wantRetryable, tt.wantRetryIn)
				}
				if !strings.Contains(se.Message, tt.wantMsg) {
					t.Errorf("message %q does not contain %q", se.Message, tt.wantMsg)
				}
				if strings.Contains(se.Error(), "SECRET") || strings.Contains(se.Error(), "pw@") {
					t.Errorf("message %q leaks upstream body or credentials", se.Error())
				}
				if tt.wantNoHit && forbidden.hits.Load() != hitsBefore {
					t.Errorf("refused server was reached")
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			connectortest.CheckOutput(t, r, "http", "request", mustJSON(t, tt.input), out)
			var got httpcall.Output
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("output %s: %v", out, err)
			}
			if !reflect.DeepEqual(&got, tt.wantOut) {
				gotJSON, _ := json.Marshal(got)
				wantJSON, _ := json.Marshal(tt.wantOut)
				t.Fatalf("output = %.300s\nwant     %.300s", gotJSON, wantJSON)
			}
			if tt.wantSeen != nil {
				if s := up.last.Load(); s == nil || *s != *tt.wantSeen {
					t.Fatalf("upstream saw %+v, want %+v", s, tt.wantSeen)
				}
			}
		})
	}
}

func manyHeaders(n int) map[string]string {
	h := map[string]string{}
	for i := range n {
		h["X-H"+strings.Repeat("a", i)] = "v"
	}
	return h
}

// TestRequestFollowsGuardedRedirects checks the redirect path end to end: an allowed
// server redirecting to a disallowed port is refused, not followed.
func TestRequestFollowsGuardedRedirects(t *testing.T) {
	_, up, forbidden := setup(t)
	toForbidden := httptest.NewServer(http.RedirectHandler(forbidden.URL+"/json", http.StatusFound))
	defer toForbidden.Close()
	toAllowed := httptest.NewServer(http.RedirectHandler(up.URL+"/json", http.StatusFound))
	defer toAllowed.Close()
	guard, err := outbound.NewGuard([]string{
		strings.TrimPrefix(toForbidden.URL, "http://"),
		strings.TrimPrefix(toAllowed.URL, "http://"),
		"127.0.0.1:" + up.port,
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := connectors.NewRegistry(httpcall.New(guard))
	if err != nil {
		t.Fatal(err)
	}

	out, err := r.Run(context.Background(), "http", "request", mustJSON(t, map[string]any{"url": toAllowed.URL}))
	if err != nil || !strings.Contains(string(out), `"json":{"id":7`) {
		t.Fatalf("redirect to an allowed server: Run = %s, %v", out, err)
	}

	_, err = r.Run(context.Background(), "http", "request", mustJSON(t, map[string]any{"url": toForbidden.URL}))
	var se *connectors.StepError
	if !errors.As(err, &se) || se.Code != connectors.CodeRefused || se.Retryable {
		t.Fatalf("Run = %v, want a non-retryable refused StepError", err)
	}
	if !errors.Is(err, outbound.ErrRefused) {
		t.Errorf("errors.Is(%v, outbound.ErrRefused) = false", err)
	}
	if n := forbidden.hits.Load(); n != 0 {
		t.Fatalf("redirect target was reached %d times", n)
	}
}

func TestRequestStepDeadline(t *testing.T) {
	r, up, _ := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Run(ctx, "http", "request", mustJSON(t, map[string]any{"url": up.URL + "/slow"}))
	var se *connectors.StepError
	if !errors.As(err, &se) || se.Code != connectors.CodeTimeout || !se.Retryable {
		t.Fatalf("Run = %v, want a retryable timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Run took %v despite a 50ms step deadline", d)
	}
}

func TestRetryAfter(t *testing.T) {
	r, up, _ := setup(t)
	tests := []struct {
		header   string
		min, max time.Duration
	}{
		{"7", 7 * time.Second, 7 * time.Second},
		{"0", 0, 0},
		{"", 0, 0},
		{"soon", 0, 0},
		{"-5", 0, 0},
		{"99999999999", httpcall.MaxRetryAfter, httpcall.MaxRetryAfter},
		{time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat), 100 * time.Second, 2 * time.Minute},
		{time.Now().Add(-time.Minute).UTC().Format(http.TimeFormat), 0, 0},
		{time.Now().Add(48 * time.Hour).UTC().Format(http.TimeFormat), httpcall.MaxRetryAfter, httpcall.MaxRetryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			_, err := r.Run(context.Background(), "http", "request",
				mustJSON(t, map[string]any{"url": up.URL + "/status/429?ra=" + url.QueryEscape(tt.header)}))
			var se *connectors.StepError
			if !errors.As(err, &se) || se.Code != connectors.CodeUpstreamError || !se.Retryable {
				t.Fatalf("Run = %v, want a retryable upstream_error", err)
			}
			if se.RetryAfter < tt.min || se.RetryAfter > tt.max {
				t.Fatalf("RetryAfter = %v, want between %v and %v", se.RetryAfter, tt.min, tt.max)
			}
		})
	}
}
