package server_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"mime"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"gopkg.in/yaml.v3"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/gen/client"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/outbound"
	"github.com/levqor/levqor/server"
)

// generatedRequestID is the shape of the ids the server makes up (middleware.go):
// 16 characters of levqor.IDAlphabet.
var generatedRequestID = regexp.MustCompile(`^[0-9a-v]{16}$`)

func TestHealth(t *testing.T) {
	b := setup(t)
	resp, err := b.Client.GetHealthWithResponse(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != http.StatusOK || resp.JSON200 == nil || string(resp.JSON200.Status) != "ok" {
		t.Fatalf("GET /health: %d %s", resp.StatusCode(), resp.Body)
	}
	var body map[string]any
	if err := json.Unmarshal(resp.Body, &body); err != nil || len(body) != 1 || body["status"] != "ok" {
		t.Fatalf(`GET /health body %s, want exactly {"status":"ok"} (%v)`, resp.Body, err)
	}
}

func TestReady(t *testing.T) {
	t.Run("migrated", func(t *testing.T) {
		b := setup(t)
		resp, err := b.Client.GetReadyWithResponse(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != http.StatusOK || resp.JSON200 == nil {
			t.Fatalf("GET /ready: %d %s", resp.StatusCode(), resp.Body)
		}
		if string(resp.JSON200.Status) != "ready" || string(resp.JSON200.Database) != "sqlite" {
			t.Fatalf("GET /ready: %+v, want ready on sqlite", *resp.JSON200)
		}
	})
	t.Run("not migrated", func(t *testing.T) {
		unmigrated := openUnmigrated(t) // schema_migrations does not exist
		b := setup(t, func(o *testOptions) { o.Store = unmigrated })
		resp, err := b.Client.GetReadyWithResponse(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != http.StatusServiceUnavailable || resp.ApplicationproblemJSON503 == nil {
			t.Fatalf("GET /ready on an unmigrated store: %d %s, want a 503 problem", resp.StatusCode(), resp.Body)
		}
		if ct := resp.ContentType(); ct != "application/problem+json" {
			t.Errorf("Content-Type %q, want application/problem+json", ct)
		}
		p := resp.ApplicationproblemJSON503
		if string(p.Code) != levqor.EUnavailable || p.Status != http.StatusServiceUnavailable {
			t.Errorf("problem %+v, want code unavailable and status 503", *p)
		}
		if deref(p.RequestId) != resp.HTTPResponse.Header.Get("X-Request-ID") {
			t.Errorf("problem request_id %s, header %q", deref(p.RequestId), resp.HTTPResponse.Header.Get("X-Request-ID"))
		}
		// Migrating the very store the server holds makes it ready: the 503 was about
		// the schema, not some other fault.
		if err := unmigrated.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(server.ReadyCacheTTL) // the verdict is cached that long
		again, err := b.Client.GetReadyWithResponse(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if again.StatusCode() != http.StatusOK {
			t.Fatalf("GET /ready after Migrate: %d %s", again.StatusCode(), again.Body)
		}
	})
	t.Run("engine stopped, cached", func(t *testing.T) {
		var engine *jobs.Engine
		var probes atomic.Int32
		b := setup(t, func(o *testOptions) {
			reg, err := connectors.NewRegistry(core.New())
			if err != nil {
				t.Fatal(err)
			}
			guard, err := outbound.NewGuard(nil)
			if err != nil {
				t.Fatal(err)
			}
			if engine, err = jobs.NewEngine(jobs.Config{Store: o.Store, Registry: reg, Guard: guard, Encode: server.EncodeJob, Logger: o.Logger, ShutdownTimeout: time.Second,
				Sealer: credentials.NewService(o.Store, testSecretKey, nil)}); err != nil {
				t.Fatal(err)
			}
			o.Jobs, o.Hub = engine.Service, engine.Hub
			o.ReadyChecks = []server.ReadyCheck{{Name: "job_engine", Check: func(context.Context) error {
				probes.Add(1)
				if !engine.Running() {
					return levqor.Errorf(levqor.EUnavailable, "The job engine is not running.")
				}
				return nil
			}}}
		})
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = engine.Run(ctx) }()
		for !engine.Running() {
			time.Sleep(time.Millisecond)
		}
		if resp, err := b.Client.GetReadyWithResponse(t.Context()); err != nil || resp.StatusCode() != http.StatusOK {
			t.Fatalf("GET /ready with the engine running: %v %v", resp, err)
		}
		stop()
		<-done
		time.Sleep(server.ReadyCacheTTL)
		probes.Store(0)
		start := time.Now()
		for range 20 {
			resp, err := b.Client.GetReadyWithResponse(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			p := resp.ApplicationproblemJSON503
			if resp.StatusCode() != http.StatusServiceUnavailable || p == nil || p.Errors == nil ||
				len(*p.Errors) != 1 || (*p.Errors)[0].Pointer != "job_engine" {
				t.Fatalf("GET /ready with the engine stopped: %d %s, want a 503 naming job_engine", resp.StatusCode(), resp.Body)
			}
		}
		// A failing verdict is cached for ReadyFailTTL: at most one probe per TTL began.
		if n, most := probes.Load(), 1+int32(time.Since(start)/server.ReadyFailTTL); n < 1 || n > most {
			t.Errorf("20 quick /ready calls ran the checks %d times, want 1 to %d (a failure is cached for %v)", n, most, server.ReadyFailTTL)
		}
	})
	// A check that starts to pass is seen within ReadyFailTTL, not ReadyCacheTTL: at
	// start-up the listener comes a moment before the job engine runs, and a probe in
	// between must not hold the server unready for a second.
	t.Run("failure cached briefly", func(t *testing.T) {
		var up atomic.Bool
		b := setup(t, func(o *testOptions) {
			o.ReadyChecks = []server.ReadyCheck{{Name: "job_engine", Check: func(context.Context) error {
				if !up.Load() {
					return levqor.Errorf(levqor.EUnavailable, "The job engine is not running.")
				}
				return nil
			}}}
		})
		if resp, body := b.do(t, "GET", "/ready", nil, nil); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("GET /ready before the check passes: %d %s, want 503", resp.StatusCode, body)
		}
		up.Store(true)
		time.Sleep(server.ReadyFailTTL)
		if resp, body := b.do(t, "GET", "/ready", nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /ready %v after the check passes: %d %s, want 200", server.ReadyFailTTL, resp.StatusCode, body)
		}
	})
}

// TestPublicStatusIsMinimal: the public /status says the service answers and its
// version, and nothing about the queue, tenants or the runtime (issue #13).
func TestPublicStatusIsMinimal(t *testing.T) {
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "status@example.com")
	b.submit(t, ten.key, echoJob("status")) // a queue to leak, were it leaked
	resp, err := b.Client.GetStatusWithResponse(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != http.StatusOK || resp.JSON200 == nil {
		t.Fatalf("GET /status: %d %s", resp.StatusCode(), resp.Body)
	}
	if s := resp.JSON200; s.Status != "ok" || s.Service != "levqor" || s.Version != levqor.Version {
		t.Errorf("status %+v, want ok, levqor, %q", s, levqor.Version)
	}
	var fields map[string]any
	if err := json.Unmarshal(resp.Body, &fields); err != nil {
		t.Fatal(err)
	}
	if len(fields) != 3 {
		t.Errorf("public /status has fields %v, want only status, service and version", fields)
	}
	for _, leak := range []string{runtime.Version(), "queue", "depth", "go_version", "uptime", "database", "sqlite"} {
		if strings.Contains(string(resp.Body), leak) {
			t.Errorf("public /status mentions %q: %s", leak, resp.Body)
		}
	}
}

// TestAdminStatus: the detail that /status used to show publicly is at
// /api/v1/admin/status, for admin keys only.
func TestAdminStatus(t *testing.T) {
	started := time.Now().Add(-90 * time.Minute).Truncate(time.Millisecond)
	b := setup(t, withAdmin, func(o *testOptions) { o.Started = started })
	ten := b.newTenant(t, "admin-status@example.com")
	monitor := b.createKey(t, ten.owner, "jobs:read", "metrics:read", "users:read").Key
	asAdmin := func(ctx context.Context, r *http.Request) error { r.Header.Set("X-Api-Key", adminKey); return nil }

	// Without a key, or with a key that is not admin: refused, with no detail.
	for who, key := range map[string]string{"no key": "", "a non-admin key": monitor} {
		resp, body := b.do(t, "GET", "/api/v1/admin/status", hdr(key, ""), nil)
		want := http.StatusUnauthorized
		if key != "" {
			want = http.StatusForbidden
		}
		if p := problemOf(t, resp, body); resp.StatusCode != want || strings.Contains(string(body), "depth") {
			t.Errorf("%s: %d %+v, want %d and no detail", who, resp.StatusCode, p, want)
		}
	}

	before := time.Now()
	resp, err := b.Client.GetAdminStatusWithResponse(t.Context(), asAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != http.StatusOK || resp.JSON200 == nil {
		t.Fatalf("GET /api/v1/admin/status: %d %s", resp.StatusCode(), resp.Body)
	}
	s := resp.JSON200
	if s.Service != "levqor" || s.Version != levqor.Version || s.Commit != levqor.Commit {
		t.Errorf("service %q version %q commit %q, want levqor %q %q", s.Service, s.Version, s.Commit, levqor.Version, levqor.Commit)
	}
	if !s.StartedAt.Equal(started) {
		t.Errorf("started_at %v, want %v", s.StartedAt, started)
	}
	if _, offset := s.StartedAt.Zone(); offset != 0 {
		t.Errorf("started_at %v is not UTC", s.StartedAt)
	}
	// uptime_s counts from Options.Started: at least 90 minutes, and no more than
	// the time that has really passed since.
	if lo, hi := before.Sub(started).Seconds(), time.Since(started).Seconds(); s.UptimeS < lo || s.UptimeS > hi {
		t.Errorf("uptime_s %v, want between %v and %v", s.UptimeS, lo, hi)
	}
	if !strings.HasPrefix(s.GoVersion, "go") || s.GoVersion != runtime.Version() {
		t.Errorf("go_version %q, want %q", s.GoVersion, runtime.Version())
	}
	if string(s.Database) != "sqlite" {
		t.Errorf("database %q, want sqlite", s.Database)
	}
	if len(s.Queue.Depth) != 8 {
		t.Errorf("queue depth %v, want all eight statuses", s.Queue.Depth)
	}

	// A server that has just started reports a small, non-negative uptime.
	fresh := setup(t, withAdmin)
	resp, err = fresh.Client.GetAdminStatusWithResponse(t.Context(), asAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if u := resp.JSON200.UptimeS; u < 0 || u > 60 {
		t.Errorf("uptime_s of a fresh server %v, want 0..60", u)
	}
}

func TestRootLinks(t *testing.T) {
	b := setup(t)
	resp, err := b.Client.GetRootWithResponse(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != http.StatusOK || resp.JSON200 == nil {
		t.Fatalf("GET /: %d %s", resp.StatusCode(), resp.Body)
	}
	root := resp.JSON200
	if root.Service != "levqor" || root.Version != levqor.Version {
		t.Errorf("service %q version %q", root.Service, root.Version)
	}
	want := map[string]string{"docs": "/docs", "openapi": "/openapi.json", "health": "/health", "ready": "/ready", "status": "/status"}
	for name, path := range want {
		if root.Links[name] != path {
			t.Errorf("links[%q] = %q, want %q", name, root.Links[name], path)
		}
	}
	// Every link the index advertises is served.
	for name, path := range root.Links {
		r, body := b.do(t, http.MethodGet, path, nil, nil)
		if r.StatusCode != http.StatusOK {
			t.Errorf("links[%q] = %s answers %d: %.200s", name, path, r.StatusCode, body)
		}
	}
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestOpenAPIJSON(t *testing.T) {
	b := setup(t)
	resp, err := b.Client.GetOpenAPIJSONWithResponse(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d %s", resp.StatusCode(), resp.Body)
	}
	if ct := resp.ContentType(); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	doc, err := openapi3.NewLoader().LoadFromData(resp.Body)
	if err != nil {
		t.Fatalf("/openapi.json does not load as OpenAPI: %v", err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi %q, want 3.0.3", doc.OpenAPI)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Errorf("/openapi.json is not a valid OpenAPI document: %v", err)
	}
	embedded := loadSpec(t)
	// Rendered on the first request, it is still the whole spec, although New has since dropped the servers from its copy.
	if len(doc.Servers) != len(embedded.Servers) || len(doc.Servers) == 0 || doc.Servers[0].URL != embedded.Servers[0].URL {
		t.Errorf("/openapi.json servers %v, want the embedded spec's %v", doc.Servers, embedded.Servers)
	}
	if got, want := doc.Paths.InMatchingOrder(), embedded.Paths.InMatchingOrder(); !slices.Equal(sorted(got), sorted(want)) {
		t.Errorf("/openapi.json paths %v, want the embedded spec's %v", sorted(got), sorted(want))
	}
	for path, item := range embedded.Paths.Map() {
		for method, op := range item.Operations() {
			got := doc.Paths.Value(path)
			if got == nil || got.GetOperation(method) == nil || got.GetOperation(method).OperationID != op.OperationID {
				t.Errorf("/openapi.json lacks %s %s (%s)", method, path, op.OperationID)
			}
		}
	}
	checkNotModified(t, b, "/openapi.json", resp.HTTPResponse.Header.Get("ETag"))
}

func TestOpenAPIYAML(t *testing.T) {
	b := setup(t)
	resp, err := b.Client.GetOpenAPIYAMLWithResponse(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != http.StatusOK {
		t.Fatalf("GET /openapi.yaml: %d %s", resp.StatusCode(), resp.Body)
	}
	if ct := resp.ContentType(); ct != "application/yaml" {
		t.Errorf("Content-Type %q, want application/yaml", ct)
	}
	var doc struct {
		OpenAPI string         `yaml:"openapi"`
		Paths   map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(resp.Body, &doc); err != nil {
		t.Fatalf("/openapi.yaml is not YAML: %v", err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi %q, want 3.0.3", doc.OpenAPI)
	}
	if got, want := sortedKeys(doc.Paths), sorted(loadSpec(t).Paths.InMatchingOrder()); !slices.Equal(got, want) {
		t.Errorf("/openapi.yaml paths %v, want the embedded spec's %v", got, want)
	}
	checkNotModified(t, b, "/openapi.yaml", resp.HTTPResponse.Header.Get("ETag"))
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// checkNotModified checks the conditional GET contract of a fixed document: its
// ETag in If-None-Match (plain, weak, in a list, or *) gives 304 with no body;
// another tag gives the full document again.
func checkNotModified(t *testing.T, b *bundle, path, etag string) {
	t.Helper()
	if !regexp.MustCompile(`^"[0-9a-f]{24}"$`).MatchString(etag) {
		t.Fatalf("%s: ETag %q is not a strong quoted validator", path, etag)
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		resp, body := b.do(t, http.MethodGet, path, http.Header{"If-None-Match": {inm}}, nil)
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("%s with If-None-Match %s: %d and %d body bytes, want 304 and none", path, inm, resp.StatusCode, len(body))
		}
		if got := resp.Header.Get("ETag"); got != etag {
			t.Errorf("%s 304: ETag %q, want %q", path, got, etag)
		}
	}
	resp, body := b.do(t, http.MethodGet, path, http.Header{"If-None-Match": {`"0000"`}}, nil)
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Errorf("%s with a stale If-None-Match: %d and %d body bytes, want 200 and the document", path, resp.StatusCode, len(body))
	}
}

func TestDocsPage(t *testing.T) {
	b := setup(t)
	resp, err := b.Client.GetDocsWithResponse(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != http.StatusOK {
		t.Fatalf("GET /docs: %d %s", resp.StatusCode(), resp.Body)
	}
	if mt, _, _ := mime.ParseMediaType(resp.ContentType()); mt != "text/html" {
		t.Errorf("Content-Type %q, want text/html", resp.ContentType())
	}
	csp := resp.HTTPResponse.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q lacks script-src 'self'", csp)
	}
	for _, bad := range []string{"'unsafe-inline'", "'unsafe-eval'", "*"} {
		if strings.Contains(csp, bad) {
			t.Errorf("CSP %q allows %s", csp, bad)
		}
	}
	if !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q lacks frame-ancestors 'none'", csp)
	}
	checkNotModified(t, b, "/docs", resp.HTTPResponse.Header.Get("ETag"))

	// Every script, stylesheet and icon the page references is served from /docs/.
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(string(resp.Body), -1)
	if len(refs) < 4 {
		t.Fatalf("the docs page references %d files; want its scripts, styles and icon", len(refs))
	}
	for _, m := range refs {
		ref := m[1]
		if !strings.HasPrefix(ref, "/docs/") {
			t.Errorf("the docs page loads %q from outside /docs/", ref)
			continue
		}
		r, body := b.do(t, http.MethodGet, ref, nil, nil)
		if r.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("%s: %d, %d bytes", ref, r.StatusCode, len(body))
		}
	}
	if inline := regexp.MustCompile(`<script>|<style>|\son[a-z]+=`).FindString(string(resp.Body)); inline != "" {
		t.Errorf("the docs page has inline code (%q) its CSP would block", inline)
	}
}

func TestDocsAssets(t *testing.T) {
	b := setup(t)
	const asset = "swagger-ui-bundle.js"

	plain, err := b.Client.GetDocsAssetWithResponse(t.Context(), asset, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plain.StatusCode() != http.StatusOK {
		t.Fatalf("GET /docs/%s: %d", asset, plain.StatusCode())
	}
	h := plain.HTTPResponse.Header
	if ce := h.Get("Content-Encoding"); ce != "" {
		t.Errorf("without Accept-Encoding: Content-Encoding %q, want identity", ce)
	}
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt != "text/javascript" && mt != "application/javascript" {
		t.Errorf("Content-Type %q, want JavaScript", h.Get("Content-Type"))
	}
	if !bytes.Contains(plain.Body, []byte("SwaggerUIBundle")) {
		t.Errorf("the identity body (%d bytes) is not Swagger UI's bundle", len(plain.Body))
	}
	if plain.HTTPResponse.ContentLength != int64(len(plain.Body)) {
		t.Errorf("Content-Length %d, body %d bytes", plain.HTTPResponse.ContentLength, len(plain.Body))
	}
	if !strings.Contains(h.Get("Vary"), "Accept-Encoding") {
		t.Errorf("Vary %q lacks Accept-Encoding", h.Get("Vary"))
	}
	if cc := h.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Errorf("Cache-Control %q, want a max-age for a static asset", cc)
	}

	gz, err := b.Client.GetDocsAssetWithResponse(t.Context(), asset, &client.GetDocsAssetParams{AcceptEncoding: ptr("br, gzip;q=0.8")})
	if err != nil {
		t.Fatal(err)
	}
	if gz.StatusCode() != http.StatusOK || gz.HTTPResponse.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("with Accept-Encoding gzip: %d, Content-Encoding %q, want 200 gzip", gz.StatusCode(), gz.HTTPResponse.Header.Get("Content-Encoding"))
	}
	if len(gz.Body) >= len(plain.Body) {
		t.Errorf("gzip body %d bytes is not smaller than identity %d", len(gz.Body), len(plain.Body))
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz.Body))
	if err != nil {
		t.Fatalf("gzip body: %v", err)
	}
	inflated, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gzip body: %v", err)
	}
	if sha256.Sum256(inflated) != sha256.Sum256(plain.Body) {
		t.Errorf("the gzip body inflates to %d bytes unlike the identity body's %d", len(inflated), len(plain.Body))
	}
	if gz.HTTPResponse.Header.Get("ETag") != h.Get("ETag") {
		t.Errorf("ETag differs by encoding: %q vs %q", gz.HTTPResponse.Header.Get("ETag"), h.Get("ETag"))
	}

	refused, err := b.Client.GetDocsAssetWithResponse(t.Context(), asset, &client.GetDocsAssetParams{AcceptEncoding: ptr("gzip;q=0, identity")})
	if err != nil {
		t.Fatal(err)
	}
	if ce := refused.HTTPResponse.Header.Get("Content-Encoding"); ce != "" || !bytes.Equal(refused.Body, plain.Body) {
		t.Errorf("with gzip;q=0: Content-Encoding %q and %d bytes, want identity", ce, len(refused.Body))
	}

	checkNotModified(t, b, "/docs/"+asset, h.Get("ETag"))
	checkNotModified(t, b, "/docs/swagger-ui.css", func() string {
		r, _ := b.do(t, http.MethodGet, "/docs/swagger-ui.css", nil, nil)
		return r.Header.Get("ETag")
	}())

	missing, err := b.Client.GetDocsAssetWithResponse(t.Context(), "no-such-asset.js", nil)
	if err != nil {
		t.Fatal(err)
	}
	if missing.StatusCode() != http.StatusNotFound || missing.ApplicationproblemJSON404 == nil {
		t.Fatalf("GET /docs/no-such-asset.js: %d %s, want a 404 problem", missing.StatusCode(), missing.Body)
	}
	if p := missing.ApplicationproblemJSON404; string(p.Code) != levqor.ENotFound || deref(p.Instance) != "/docs/no-such-asset.js" {
		t.Errorf("problem %+v, want not_found on /docs/no-such-asset.js", *p)
	}
}

func ptr[T any](v T) *T { return &v }

func TestRequestID(t *testing.T) {
	b := setup(t)
	sane := []string{"abc", "req-1.2_3:4", strings.Repeat("a", 128), "01J9Z8X7Y6W5V4T3S2R1Q0P9N8"}
	for _, id := range sane {
		for _, path := range []string{"/health", "/no-such-route"} {
			resp, body := b.do(t, http.MethodGet, path, http.Header{"X-Request-Id": {id}}, nil)
			if got := resp.Header.Get("X-Request-ID"); got != id {
				t.Errorf("GET %s with sane X-Request-ID %q: echoed %q", path, id, got)
			}
			if resp.StatusCode == http.StatusNotFound {
				if p := problemOf(t, resp, body); deref(p.RequestId) != id {
					t.Errorf("problem request_id %q, want %q", deref(p.RequestId), id)
				}
			}
		}
	}
	insane := map[string]string{
		"too long":       strings.Repeat("a", 129),
		"200 chars":      strings.Repeat("x", 200),
		"space":          "abc def",
		"tab":            "abc\tdef",
		"slash":          "a/b",
		"quote":          `a"b`,
		"log injection":  `x","status":200,"y":"`,
		"non-ASCII":      "réq",
		"angle brackets": "<script>",
	}
	seen := map[string]bool{}
	for name, id := range insane {
		resp, _ := b.do(t, http.MethodGet, "/health", http.Header{"X-Request-Id": {id}}, nil)
		got := resp.Header.Get("X-Request-ID")
		if got == id || !generatedRequestID.MatchString(got) {
			t.Errorf("%s X-Request-ID %q: answered with %q, want a generated id", name, id, got)
		}
		if seen[got] {
			t.Errorf("generated id %q was handed out twice", got)
		}
		seen[got] = true
		if strings.Contains(b.Logs(), id) {
			t.Errorf("%s X-Request-ID %q reached the log", name, id)
		}
	}
	// Control characters cannot be sent by net/http's client. Sent raw, they never
	// reach a handler: net/http itself answers 400 (text/plain, before any of our
	// middleware, so without our headers) and nothing is echoed.
	t.Run("control characters", func(t *testing.T) {
		for _, id := range []string{"abc\x01def", "abc\x7f", "a\x00b"} {
			status, header := rawGet(t, b.URL, "/health", "X-Request-ID: "+id)
			if status != http.StatusBadRequest || header.Get("X-Request-ID") != "" {
				t.Errorf("X-Request-ID %q: status %d, X-Request-ID %q; want net/http's 400 and no echo", id, status, header.Get("X-Request-ID"))
			}
		}
		if strings.Contains(b.Logs(), "abc\\u0001def") {
			t.Error("a control-character request id reached the log")
		}
	})
	// No header at all: one is generated.
	resp, _ := b.do(t, http.MethodGet, "/health", nil, nil)
	if !generatedRequestID.MatchString(resp.Header.Get("X-Request-ID")) {
		t.Errorf("without X-Request-ID the server answered %q", resp.Header.Get("X-Request-ID"))
	}
}

// securityHeaders are the headers every response carries (middleware.go). The
// Content-Security-Policy and Cache-Control are checked separately: the docs and
// spec routes set their own.
var securityHeaders = map[string]string{
	"X-Content-Type-Options":       "nosniff",
	"X-Frame-Options":              "DENY",
	"Referrer-Policy":              "no-referrer",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Embedder-Policy": "require-corp",
	"Cross-Origin-Resource-Policy": "same-origin",
	"Permissions-Policy":           "camera=(), microphone=(), geolocation=(), payment=()",
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	var maxBody int64
	b := setup(t, func(o *testOptions) { maxBody = o.MaxBodyBytes })
	cases := []struct {
		name   string
		method string
		path   string
		header http.Header
		body   []byte
		status int
		csp    string // "" means the API's policy
	}{
		{"ok", "GET", "/health", nil, nil, 200, ""},
		{"index", "GET", "/", nil, nil, 200, ""},
		{"spec", "GET", "/openapi.json", nil, nil, 200, ""},
		{"not modified", "GET", "/openapi.json", http.Header{"If-None-Match": {"*"}}, nil, 304, ""},
		{"docs", "GET", "/docs", nil, nil, 200, "docs"},
		{"asset", "GET", "/docs/swagger-ui.css", nil, nil, 200, ""},
		{"unknown route", "GET", "/no-such-route", nil, nil, 404, ""},
		{"unknown asset", "GET", "/docs/nope.js", nil, nil, 404, ""},
		{"invalid parameter", "GET", "/docs/.hidden", nil, nil, 400, ""},
		{"wrong method", "DELETE", "/health", nil, nil, 405, ""},
		{"too large", "POST", "/health", nil, bytes.Repeat([]byte("a"), int(maxBody)+1), 413, ""},
		{"head", "HEAD", "/health", nil, nil, 405, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != nil {
				body = bytes.NewReader(tc.body)
			}
			resp, data := b.do(t, tc.method, tc.path, tc.header, body)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s %s: %d, want %d: %.300s", tc.method, tc.path, resp.StatusCode, tc.status, data)
			}
			for name, want := range securityHeaders {
				if got := resp.Header.Get(name); got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
			csp := resp.Header.Get("Content-Security-Policy")
			if tc.csp == "" && csp != "default-src 'none'; frame-ancestors 'none'" {
				t.Errorf("Content-Security-Policy %q, want the API's", csp)
			}
			if tc.csp != "" && (!strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'")) {
				t.Errorf("Content-Security-Policy %q, want default-src and frame-ancestors 'none'", csp)
			}
			if cc := resp.Header.Get("Cache-Control"); cc == "" {
				t.Error("no Cache-Control")
			} else if resp.StatusCode >= 400 && cc != "no-store" {
				t.Errorf("error response Cache-Control %q, want no-store", cc)
			}
			if id := resp.Header.Get("X-Request-ID"); !generatedRequestID.MatchString(id) {
				t.Errorf("X-Request-ID %q", id)
			}
			if resp.StatusCode >= 400 && tc.method != http.MethodHead {
				p := problemOf(t, resp, data)
				if want := map[int]string{400: "invalid", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}[tc.status]; string(p.Code) != want {
					t.Errorf("problem code %q, want %q", p.Code, want)
				}
			}
			if tc.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "GET" {
				t.Errorf("Allow %q, want GET", resp.Header.Get("Allow"))
			}
		})
	}
}

// accessLine finds the one access log line of the request with the given id.
func accessLine(t *testing.T, b *bundle, id string) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, l := range b.LogLines(t) {
		if l["msg"] == "request" && l["request_id"] == id {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d access log lines for request %s, want 1:\n%s", len(found), id, b.Logs())
	}
	return found[0]
}

func TestAccessLog(t *testing.T) {
	b := setup(t)
	cases := []struct {
		id, method, path, route string
		status                  int
		errorCode               string
	}{
		{"log-asset", "GET", "/docs/favicon-16x16.png", "/docs/{asset}", 200, ""},
		{"log-health", "GET", "/health", "/health", 200, ""},
		{"log-missing-asset", "GET", "/docs/none.png", "/docs/{asset}", 404, "not_found"},
		{"log-unknown", "GET", "/no/such/route", "", 404, "not_found"},
		{"log-method", "PUT", "/status", "", 405, "method_not_allowed"},
	}
	for _, tc := range cases {
		resp, body := b.do(t, tc.method, tc.path, http.Header{"X-Request-Id": {tc.id}}, nil)
		if resp.StatusCode != tc.status {
			t.Fatalf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
		line := accessLine(t, b, tc.id)
		if line["level"] != "INFO" || line["method"] != tc.method || line["route"] != tc.route || line["status"] != float64(tc.status) {
			t.Errorf("%s %s: access line %v, want method %s route %q status %d", tc.method, tc.path, line, tc.method, tc.route, tc.status)
		}
		if d, ok := line["duration_ms"].(float64); !ok || d < 0 || d > 30_000 {
			t.Errorf("%s %s: duration_ms %v", tc.method, tc.path, line["duration_ms"])
		}
		if n, ok := line["bytes"].(float64); !ok || int(n) != len(body) {
			t.Errorf("%s %s: bytes %v, want %d", tc.method, tc.path, line["bytes"], len(body))
		}
		if got, _ := line["error_code"].(string); got != tc.errorCode {
			t.Errorf("%s %s: error_code %q, want %q", tc.method, tc.path, got, tc.errorCode)
		}
		if _, ok := line["time"].(string); !ok {
			t.Errorf("%s %s: access line has no time", tc.method, tc.path)
		}
	}
	// One line per request: every line is JSON, and there are as many access lines
	// as requests.
	n := 0
	for _, l := range b.LogLines(t) {
		if l["msg"] == "request" {
			n++
		}
	}
	if n != len(cases) {
		t.Errorf("%d access lines for %d requests:\n%s", n, len(cases), b.Logs())
	}
}

// rawGet sends a GET over a bare TCP connection, for requests net/http's client
// refuses to write, and returns the status and headers.
func rawGet(t *testing.T, baseURL, path string, headerLines ...string) (int, http.Header) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(baseURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: levqor.test\r\nConnection: close\r\n"
	for _, l := range headerLines {
		req += l + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("raw GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}
