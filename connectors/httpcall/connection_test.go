package httpcall_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/connectortest"
	"github.com/levqor/levqor/connectors/httpcall"
	"github.com/levqor/levqor/outbound"
)

// Secrets of these tests: distinctive, so that a search for them cannot match by chance.
const (
	connAuth  = "Bearer conn-SECRET-4e1f9a7c"
	connKey   = "key-SECRET-b82d6e30"
	connQuery = "query-SECRET-5c0a19f7"
)

// recorder is an upstream that records the headers and query of each request.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
}

func newRecorder(t *testing.T, h http.Handler) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, r.Clone(context.Background()))
		rec.mu.Unlock()
		if h != nil {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok": true}`))
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (rec *recorder) requests() []*http.Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]*http.Request(nil), rec.reqs...)
}

// connRegistry is the http connector over a guard letting loopback through, with
// usr_a's http connection "api" holding two headers and a query parameter.
func connRegistry(t *testing.T) (*connectors.Registry, *connectortest.Credentials) {
	t.Helper()
	guard, err := outbound.NewGuard([]string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	creds := connectortest.NewCredentials()
	creds.Set("usr_a", "http", "api", map[string]string{"Authorization": connAuth, "X-Api-Key": connKey, "?api_key": connQuery})
	r, err := connectors.NewRegistry(httpcall.New(guard).WithCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	return r, creds
}

func TestRequestConnectionAddsSecretsAtSendTime(t *testing.T) {
	r, _ := connRegistry(t)
	up := newRecorder(t, nil)
	in := map[string]any{"url": up.URL + "/items?page=2", "connection": "api", "headers": map[string]string{"X-Trace": "t1", "x-api-key-hint": "not a secret"}}
	out, err := r.Run(connectortest.StepContext("usr_a"), "http", "request", mustJSON(t, in))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	connectortest.AssertNoSecrets(t, []string{connAuth, connKey, connQuery, "SECRET"}, out, err)
	reqs := up.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream got %d requests, want 1", len(reqs))
	}
	got := reqs[0]
	if got.Header.Get("Authorization") != connAuth || got.Header.Get("X-Api-Key") != connKey || got.Header.Get("X-Trace") != "t1" {
		t.Errorf("upstream headers = %v; want the connection's Authorization and X-Api-Key besides the step's X-Trace", got.Header)
	}
	if q := got.URL.Query(); q.Get("api_key") != connQuery || q.Get("page") != "2" {
		t.Errorf("upstream query = %q; want the connection's api_key besides the step's page=2", got.URL.RawQuery)
	}

	// Without "connection", nothing of the connection is sent, not even for an owner who has one.
	delete(in, "connection")
	if _, err := r.Run(connectortest.StepContext("usr_a"), "http", "request", mustJSON(t, in)); err != nil {
		t.Fatalf("Run without a connection: %v", err)
	}
	if last := up.requests()[1]; last.Header.Get("Authorization") != "" || last.URL.Query().Has("api_key") {
		t.Errorf("a step naming no connection sent the connection's secrets: %v %q", last.Header, last.URL.RawQuery)
	}
}

func TestRequestConnectionMissing(t *testing.T) {
	r, creds := connRegistry(t)
	up := newRecorder(t, nil)
	for _, tc := range []struct {
		name string
		ctx  context.Context
		conn string
	}{
		{"another owner's connection", connectortest.StepContext("usr_b"), "api"},
		{"a name the owner has not", connectortest.StepContext("usr_a"), "other"},
		{"no step", context.Background(), "api"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Run(tc.ctx, "http", "request", mustJSON(t, map[string]any{"url": up.URL, "connection": tc.conn}))
			var se *connectors.StepError
			if !errors.As(err, &se) || se.Code != connectors.CodeNoCredentials || se.Retryable {
				t.Fatalf("Run = %v; want a final no_credentials", err)
			}
		})
	}
	creds.Fail(errors.New("database is down"))
	_, err := r.Run(connectortest.StepContext("usr_a"), "http", "request", mustJSON(t, map[string]any{"url": up.URL, "connection": "api"}))
	var se *connectors.StepError
	if !errors.As(err, &se) || se.Code != connectors.CodeUpstreamError || !se.Retryable {
		t.Fatalf("Run with the credentials store down = %v; want a retryable upstream_error", err)
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("upstream was called %d times without the connection", n)
	}
}

// Secrets a reference resolved into the input are refused when the step runs, as
// literal ones are at intake; the message names the header, never its value.
func TestRequestRefusesSecretsInInput(t *testing.T) {
	r, _ := connRegistry(t)
	up := newRecorder(t, nil)
	for _, tc := range []struct {
		name    string
		headers map[string]string
		query   string
		pointer string
	}{
		{"Authorization", map[string]string{"Authorization": connAuth}, "", "/headers/Authorization"},
		{"lower-case authorization", map[string]string{"authorization": connAuth}, "", "/headers/authorization"},
		{"Proxy-Authorization", map[string]string{"PROXY-AUTHORIZATION": connAuth}, "", "/headers/PROXY-AUTHORIZATION"},
		{"X-Api-Key", map[string]string{"x-api-key": connKey}, "", "/headers/x-api-key"},
		{"Cookie", map[string]string{"Cookie": "session=" + connKey}, "", "/headers/Cookie"},
		{"api_key query", nil, "?a=1&api_key=" + connQuery, "/url"},
		{"escaped access_token query", nil, "?Access%5Ftoken=" + connQuery, "/url"},
		{"token query", nil, "?token=" + connQuery + "#x", "/url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := map[string]any{"url": up.URL + "/x" + tc.query}
			if tc.headers != nil {
				in["headers"] = tc.headers
			}
			out, err := r.Run(connectortest.StepContext("usr_a"), "http", "request", mustJSON(t, in))
			var se *connectors.StepError
			if !errors.As(err, &se) || se.Code != connectors.CodeInvalidInput || !strings.Contains(se.Message, tc.pointer+":") ||
				!strings.Contains(se.Message, "connection") {
				t.Fatalf("Run = %v; want invalid_input naming %s and pointing at connections", err, tc.pointer)
			}
			connectortest.AssertNoSecrets(t, []string{connAuth, connKey, connQuery}, out, err)
		})
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("upstream was called %d times with secrets in the input", n)
	}
}

// InputSecret is what intake asks before a step is stored, references unresolved.
func TestInputSecret(t *testing.T) {
	r, _ := connRegistry(t)
	for _, tc := range []struct {
		name, input, pointer string
	}{
		{"literal Authorization", `{"url": "https://api.example.com", "headers": {"Authorization": "Bearer x"}}`, "/headers/Authorization"},
		{"referenced Authorization value", `{"url": "https://api.example.com", "headers": {"Accept": "a", "cookie": "{{payload.c}}"}}`, "/headers/cookie"},
		{"header name with a slash", `{"url": "https://x", "headers": {"X-API-KEY": "k"}}`, "/headers/X-API-KEY"},
		{"templated url with a secret query", `{"url": "https://api.example.com/{{payload.p}}?client_secret={{payload.s}}"}`, "/url"},
		{"whole headers from a reference: checked when run", `{"url": "https://x", "headers": "{{payload.h}}"}`, ""},
		{"harmless look-alikes", `{"url": "https://x/?page_token=a&tokens=b&key=c", "headers": {"X-Api-Key-Id": "1", "Accept": "*/*"}}`, ""},
		{"no query", `{"url": "https://x/token"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ptr, msg := r.InputSecret("http", "request", json.RawMessage(tc.input))
			if ptr != tc.pointer || (msg == "") != (tc.pointer == "") {
				t.Fatalf("InputSecret = %q, %q; want pointer %q", ptr, msg, tc.pointer)
			}
			if strings.Contains(msg, "Bearer x") || strings.Contains(msg, "payload.s") {
				t.Errorf("message %q quotes the value", msg)
			}
		})
	}
}

// A redirect to another host must not carry the connection's headers there (Go's
// client drops Authorization and Cookie itself, but not X-Api-Key); a redirect on
// the same host keeps them.
func TestRequestConnectionHeadersStayOnTheirHost(t *testing.T) {
	r, _ := connRegistry(t)
	other := newRecorder(t, nil)
	first := newRecorder(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/away":
			http.Redirect(w, req, other.URL+"/landed", http.StatusFound)
		case "/here":
			http.Redirect(w, req, "/landed", http.StatusFound)
		default:
			w.Write([]byte("ok"))
		}
	}))
	for _, path := range []string{"/away", "/here"} {
		if _, err := r.Run(connectortest.StepContext("usr_a"), "http", "request", mustJSON(t, map[string]any{"url": first.URL + path, "connection": "api"})); err != nil {
			t.Fatalf("Run %s: %v", path, err)
		}
	}
	away := other.requests()
	if len(away) != 1 {
		t.Fatalf("the other host got %d requests, want 1", len(away))
	}
	if h := away[0].Header; h.Get("X-Api-Key") != "" || h.Get("Authorization") != "" || strings.Contains(h.Get("Referer"), connQuery) {
		t.Errorf("a redirect to another host carried the connection's headers or query (in Referer): %v", h)
	}
	here := first.requests()
	if len(here) != 3 || here[2].URL.Path != "/landed" || here[2].Header.Get("X-Api-Key") != connKey {
		t.Fatalf("a redirect on the same host: %d requests, last %v; want the connection's X-Api-Key kept", len(here), here[len(here)-1].Header)
	}
}
