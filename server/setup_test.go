package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	apispec "github.com/levqor/levqor/api/spec"
	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/config"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/connectors/httpcall"
	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/gen/client"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/outbound"
	"github.com/levqor/levqor/server"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/sqlite"
	"github.com/levqor/levqor/store/storetest"
	"github.com/levqor/levqor/users"
)

// bundle is what an HTTP test needs: the real handler serving on loopback over a
// fresh, migrated SQLite database, clients whose every response is checked against
// api/openapi.yaml, and the server's log.
type bundle struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:41234 (no trailing slash).
	URL string
	// Client is the generated Go client, over the validating transport.
	Client *client.ClientWithResponses
	// HTTP is a plain client over the same validating transport, for requests the
	// generated client cannot make (unknown routes, other methods, odd headers).
	// It never follows redirects: a test sees exactly what the server answered.
	HTTP *http.Client
	// Store is the store the server runs on (the one an option put there, if any).
	Store store.Store

	logs *syncBuffer
}

// Logs returns everything the server has logged so far: slog JSON, one object a line.
func (b *bundle) Logs() string { return b.logs.String() }

// LogLines returns the server's log decoded, one map per line. It fails the test
// on a line that is not a JSON object.
func (b *bundle) LogLines(t *testing.T) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.Logs()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not a JSON object: %v\n%s", err, line)
		}
		lines = append(lines, m)
	}
	return lines
}

// do sends one request through b.HTTP (so the response is checked against the
// spec) and returns it with its body read. header values replace the defaults.
func (b *bundle) do(t *testing.T, method, path string, header http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, b.URL+path, body)
	if err != nil {
		t.Fatalf("new request %s %s: %v", method, path, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := b.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, data
}

// problemOf decodes a problem+json response, failing the test on any other
// Content-Type; it also checks the problem's status and request_id agree with the
// response's status and X-Request-ID.
func problemOf(t *testing.T, resp *http.Response, body []byte) client.Problem {
	t.Helper()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/problem+json" {
		t.Fatalf("%s %s: Content-Type %q, want application/problem+json; body %.300s",
			resp.Request.Method, resp.Request.URL.Path, resp.Header.Get("Content-Type"), body)
	}
	var p client.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("%s %s: problem body: %v", resp.Request.Method, resp.Request.URL.Path, err)
	}
	if p.Status != resp.StatusCode {
		t.Errorf("%s %s: problem status %d, HTTP status %d", resp.Request.Method, resp.Request.URL.Path, p.Status, resp.StatusCode)
	}
	if p.RequestId == nil || *p.RequestId != resp.Header.Get("X-Request-ID") {
		t.Errorf("%s %s: problem request_id %v, X-Request-ID %q", resp.Request.Method, resp.Request.URL.Path, p.RequestId, resp.Header.Get("X-Request-ID"))
	}
	return p
}

// deref returns *s, or "<nil>" for messages.
func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// testOptions are server.Options with the store the test's services are built
// over: an option may replace Store, or any service, before the server is built.
type testOptions struct {
	server.Options
	Store store.Store
	// Lease is the job engine's lease when setup builds the engine (default 3 s,
	// so rescue tests run fast); tests whose steps are heavy under -race take longer.
	Lease time.Duration
}

// build fills in the services the test left unset over o.Store, as main builds
// them (budgets: 10 USD a day, 200 a month), and returns the server's Options.
func (o *testOptions) build(t testing.TB) server.Options {
	t.Helper()
	if o.Spec == nil {
		o.Spec = loadSpec(t)
	}
	if o.Database == nil {
		o.Database = o.Store
	}
	if o.Keys == nil {
		o.Keys = keys.NewService(o.Store, nil)
	}
	if o.Users == nil {
		o.Users = users.NewService(o.Store)
	}
	if o.Budgets == nil {
		o.Budgets = budget.NewService(o.Store, budget.Limits{Daily: budget.USDToNanos(10), Monthly: budget.USDToNanos(200)})
	}
	if o.Hub == nil {
		o.Hub = jobs.NewHub()
	}
	if o.Notifications == nil {
		o.Notifications = notifier.NewPreferences(o.Store, o.Store)
	}
	return o.Options
}

// setup starts server.New on httptest (127.0.0.1) over a fresh migrated SQLite
// store in t.TempDir() (storetest.OpenSQLite), with the defaults config.Load gives
// (body limit, CORS origins), no rate limiting (Options.Limits nil) and a
// debug-level JSON logger that Logs() reads. Each opt may change the
// Options before the server is built, e.g. to put in a different Store (the
// default one stays open until the test ends) or to lower MaxBodyBytes.
// Replacing Logger means Logs() no longer sees the server's log.
//
// Everything is closed when the test ends.
func setup(t *testing.T, opts ...func(*testOptions)) *bundle {
	t.Helper()
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatalf("default config: %v", err)
	}
	logs := &syncBuffer{}
	logHandler := slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})
	o := testOptions{Store: storetest.OpenSQLite(t), Options: server.Options{
		Logger:         slog.New(logHandler),
		MaxBodyBytes:   cfg.MaxBodyBytes,
		Started:        time.Now(),
		TrustedProxies: cfg.TrustedProxies,
		CORSOrigins:    cfg.CORSOrigins,
	}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.Jobs == nil {
		engine := newEngineLease(t, o.Store, o.Logger, []string{"127.0.0.0/8"}, o.Lease)
		o.Jobs, o.Hub = engine.Service, engine.Hub
	}
	handler, err := server.New(o.build(t))
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	srv := httptest.NewUnstartedServer(handler)
	srv.Config.ErrorLog = slog.NewLogLogger(logHandler, slog.LevelWarn)
	srv.Start()
	t.Cleanup(srv.Close)

	// DisableCompression: the transport must not add Accept-Encoding or inflate
	// bodies behind the test's back; tests that want gzip ask for it.
	base := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 8}
	t.Cleanup(base.CloseIdleConnections) // runs before srv.Close, which waits for idle connections
	vt := newValidatingTransport(t, base)
	hc := &http.Client{
		Transport:     vt,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c, err := client.NewClientWithResponses(srv.URL, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatalf("client.NewClientWithResponses: %v", err)
	}
	return &bundle{URL: srv.URL, Client: c, HTTP: hc, Store: o.Store, logs: logs}
}

// openUnmigrated opens a SQLite store in a fresh file under t.TempDir() without
// migrating it (no schema_migrations table): a database that is not ready. It is
// closed when the test ends.
func openUnmigrated(t *testing.T) store.Store {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "levqor.db"))
	if err != nil {
		t.Fatalf("open SQLite: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close SQLite: %v", err)
		}
	})
	return db
}

// loadSpec returns a fresh copy of the embedded spec (callers may change it).
func loadSpec(t testing.TB) *openapi3.T {
	t.Helper()
	spec, err := apispec.Load()
	if err != nil {
		t.Fatalf("load spec: %v", err)
	}
	return spec
}

// registerDecoders teaches kin-openapi to read text/html bodies as strings, as it
// already does text/plain; it has no decoder for HTML and would refuse to validate
// the docs page. (The registry is kin-openapi's, process-wide.)
var registerDecoders = sync.OnceFunc(func() {
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
})

// validatingTransport checks every response against api/openapi.yaml before the
// caller sees it, and turns a response that breaks the spec into an error. A
// response to a request the spec has no operation for (unknown path or method)
// cannot be matched to an operation; it must then be an error status with an
// application/problem+json body valid against components/schemas/Problem.
//
// Bodies are read in full before the caller gets them, so this transport does not
// suit streaming responses.
type validatingTransport struct {
	base    http.RoundTripper
	router  routers.Router
	problem *openapi3.Schema
}

func newValidatingTransport(t testing.TB, base http.RoundTripper) *validatingTransport {
	t.Helper()
	registerDecoders()
	spec := loadSpec(t)
	spec.Servers = nil // match paths only, whatever the test server's host
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		t.Fatalf("route the spec: %v", err)
	}
	problem := spec.Components.Schemas["Problem"]
	if problem == nil || problem.Value == nil {
		t.Fatal("the spec has no components/schemas/Problem")
	}
	return &validatingTransport{base: base, router: router, problem: problem.Value}
}

// errBreaksSpec marks a response that does not conform to api/openapi.yaml.
var errBreaksSpec = errors.New("response breaks api/openapi.yaml")

func (v *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := v.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("%s %s: read response body: %w", req.Method, req.URL.Path, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := v.check(req, resp, body); err != nil {
		return nil, fmt.Errorf("%s %s → %d: %w: %w\nbody: %.300s", req.Method, req.URL.RequestURI(), resp.StatusCode, errBreaksSpec, err, body)
	}
	return resp, nil
}

func (v *validatingTransport) check(req *http.Request, resp *http.Response, body []byte) error {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		if !errors.Is(err, routers.ErrPathNotFound) && !errors.Is(err, routers.ErrMethodNotAllowed) {
			return fmt.Errorf("find the operation: %w", err)
		}
		return v.checkProblem(req, resp, body)
	}
	header := resp.Header
	if strings.EqualFold(header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("Content-Encoding is gzip but the body is not: %w", err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			return fmt.Errorf("Content-Encoding is gzip but the body does not inflate: %w", err)
		}
		header = header.Clone()
		header.Del("Content-Encoding")
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    req,
			PathParams: params,
			Route:      route,
		},
		Status:  resp.StatusCode,
		Header:  header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	return openapi3filter.ValidateResponse(req.Context(), in)
}

// checkProblem is the contract for requests outside the spec: an error status and
// a Problem document (just the header for HEAD, whose response has no body).
func (v *validatingTransport) checkProblem(req *http.Request, resp *http.Response, body []byte) error {
	if resp.StatusCode < 400 {
		return fmt.Errorf("no operation in the spec matches, yet the status is %d", resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/problem+json" {
		return fmt.Errorf("no operation in the spec matches and Content-Type is %q, not application/problem+json", resp.Header.Get("Content-Type"))
	}
	if req.Method == http.MethodHead {
		return nil
	}
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("problem body is not JSON: %w", err)
	}
	if err := v.problem.VisitJSON(doc, openapi3.VisitAsResponse(), openapi3.MultiErrors()); err != nil {
		return fmt.Errorf("problem body does not match components/schemas/Problem: %w", err)
	}
	return nil
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines and the test's.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestValidatingTransportRejects proves the transport is a real check: responses
// that break the spec, or a route outside it that answers without a problem, are
// errors. Without it every other test here could pass against a broken server.
func TestValidatingTransportRejects(t *testing.T) {
	cases := []struct {
		name, path  string
		status      int
		contentType string
		body        string
	}{
		{"body breaks the schema", "/health", 200, "application/json", `{"status":"fine"}`},
		{"extra property", "/health", 200, "application/json", `{"status":"ok","extra":1}`},
		{"undeclared content type", "/health", 200, "text/plain", `ok`},
		{"problem without code", "/health", 500, "application/problem+json", `{"type":"x","title":"x","status":500}`},
		{"unknown route answers 200", "/nope", 200, "application/json", `{}`},
		{"unknown route answers plain text", "/nope", 404, "text/plain", `404 page not found`},
		{"unknown route answers a bad problem", "/nope", 404, "application/problem+json", `{"title":"x"}`},
		{"broken gzip", "/docs/swagger-ui.css", 200, "text/css", "not gzip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				if tc.name == "broken gzip" {
					w.Header().Set("Content-Encoding", "gzip")
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer fake.Close()
			hc := &http.Client{Transport: newValidatingTransport(t, &http.Transport{DisableCompression: true})}
			resp, err := hc.Get(fake.URL + tc.path)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("GET %s: want a spec violation, got %d and no error", tc.path, resp.StatusCode)
			}
			if !errors.Is(err, errBreaksSpec) {
				t.Fatalf("GET %s: want errBreaksSpec, got %v", tc.path, err)
			}
		})
	}
	t.Run("conforming responses pass", func(t *testing.T) {
		fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if r.URL.Path != "/health" {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, `{"type":"https://levqor.ai/problems/not-found","title":"Not Found","status":404,"code":"not_found"}`)
				return
			}
			io.WriteString(w, `{"status":"ok"}`)
		}))
		defer fake.Close()
		hc := &http.Client{Transport: newValidatingTransport(t, &http.Transport{DisableCompression: true})}
		for _, path := range []string{"/health", "/nope"} {
			resp, err := hc.Get(fake.URL + path)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			resp.Body.Close()
		}
	})
}

// newEngine starts a job engine over st for the length of the test: the core and
// http connectors, an outbound guard that lets loopback fakes through, short
// leases and polls so tests run fast.
func newEngine(t *testing.T, st store.Store, log *slog.Logger) *jobs.Engine {
	t.Helper()
	return newEngineAllowing(t, st, log, []string{"127.0.0.0/8"})
}

// newEngineAllowing is newEngine with an outbound guard that exempts exactly the
// allow entries (as LEVQOR_OUTBOUND_ALLOW_HOSTS would; nil exempts nothing), for
// both the http connector and callback URLs.
func newEngineAllowing(t *testing.T, st store.Store, log *slog.Logger, allow []string) *jobs.Engine {
	t.Helper()
	return newEngineWith(t, st, log, allow)
}

// newEngineWith is newEngineAllowing with more connectors besides core and http.
func newEngineWith(t *testing.T, st store.Store, log *slog.Logger, allow []string, more ...connectors.Connector) *jobs.Engine {
	t.Helper()
	return newEngineLease(t, st, log, allow, 0, more...)
}

// newEngineLease is newEngineWith with a lease other than the tests' 3 s (0 keeps it).
func newEngineLease(t *testing.T, st store.Store, log *slog.Logger, allow []string, lease time.Duration, more ...connectors.Connector) *jobs.Engine {
	t.Helper()
	return newEngineApprovals(t, st, log, allow, lease, jobs.ApprovalOptions{}, more...)
}

// newEngineApprovals is newEngineLease with core.approval steps configured.
func newEngineApprovals(t *testing.T, st store.Store, log *slog.Logger, allow []string, lease time.Duration, approvals jobs.ApprovalOptions, more ...connectors.Connector) *jobs.Engine {
	t.Helper()
	if lease == 0 {
		lease = 3 * time.Second
	}
	guard, err := outbound.NewGuard(allow)
	if err != nil {
		t.Fatal(err)
	}
	creds := credentials.NewService(st, testSecretKey, nil)
	reg, err := connectors.NewRegistry(append([]connectors.Connector{core.New(), httpcall.New(guard).WithCredentials(creds)}, more...)...)
	if err != nil {
		t.Fatal(err)
	}
	return startEngine(t, jobs.Config{
		Store: st, Registry: reg, Guard: guard, ShutdownTimeout: 5 * time.Second,
		Worker:            jobs.WorkerOptions{Concurrency: 8, Lease: lease, Poll: 50 * time.Millisecond, RescueAtStart: true, RetryBase: 50 * time.Millisecond},
		CallbackRetryBase: 50 * time.Millisecond,
		Encode:            server.EncodeJob,
		Sealer:            creds,
		Logger:            log,
		Approvals:         approvals,
	})
}

// startEngine builds the engine cfg describes and runs it until the test ends.
func startEngine(t testing.TB, cfg jobs.Config) *jobs.Engine {
	t.Helper()
	engine, err := jobs.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = engine.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return engine
}
