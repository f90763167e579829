package server_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/server"
)

// writeExport writes a miniature Next export: two pages with inline scripts and an asset.
func writeExport(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"index.html":                  `<!doctype html><html><head><script src="/_next/static/chunks/a.js" async=""></script></head><body><h1>Home</h1><script>self.__next_f=self.__next_f||[]</script><script id="_R_">self.__next_f.push([1,"x"])</script></body></html>`,
		"pricing.html":                `<!doctype html><html><body><h1>Pricing</h1><script>self.__next_f.push([2])</script></body></html>`,
		"pricing.txt":                 "1:payload",
		"_next/static/chunks/a.js":    "console.log(1)",
		"_next/static/chunks/app.css": "body{margin:0}",
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func scriptHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

func TestWebSiteServedAtRoot(t *testing.T) {
	b := setup(t, func(o *testOptions) { o.WebDir = writeExport(t) })
	html := http.Header{"Accept": {"text/html,application/xhtml+xml,*/*;q=0.8"}}

	resp, body := b.do(t, "GET", "/", html, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<h1>Home</h1>") {
		t.Fatalf("GET / as a browser: %d %s", resp.StatusCode, body)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self' ", scriptHash("self.__next_f=self.__next_f||[]"), scriptHash(`self.__next_f.push([1,"x"])`), "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("home page CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, scriptHash("self.__next_f.push([2])")) {
		t.Errorf("home page CSP %q allows too much", csp)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("home page lacks the security headers: %v", resp.Header)
	}

	// API clients still get the JSON index, and API routes keep theirs.
	if resp, body := b.do(t, "GET", "/", http.Header{"Accept": {"application/json"}}, nil); resp.StatusCode != 200 || !strings.Contains(string(body), `"service":"levqor"`) {
		t.Errorf("GET / as an API client: %d %s", resp.StatusCode, body)
	}
	if resp, _ := b.do(t, "GET", "/health", html, nil); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("GET /health: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, _ := b.do(t, "GET", "/faq", html, nil); resp.StatusCode != 200 || strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src") {
		t.Errorf("GET /faq is not the Go page any more: %d %s", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}

	// The export's own paths are described by GET /'s text, not by operations of
	// their own, so the spec-validating client cannot judge them: a plain one asks.
	plain := &bundle{URL: b.URL, HTTP: &http.Client{}}
	resp, body = plain.do(t, "GET", "/pricing", html, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Pricing") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), scriptHash("self.__next_f.push([2])")) {
		t.Errorf("GET /pricing: %d %s %s", resp.StatusCode, body, resp.Header.Get("Content-Security-Policy"))
	}
	resp, _ = plain.do(t, "GET", "/_next/static/chunks/a.js", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("asset: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
	}
	if resp, _ := plain.do(t, "GET", "/pricing.txt", nil, nil); resp.StatusCode != 200 {
		t.Errorf("RSC payload: %d", resp.StatusCode)
	}
	for _, p := range []string{"/nope", "/_next/static/chunks/../../../index.html", "/api/v1/nope"} {
		if resp, _ := plain.do(t, "GET", p, html, nil); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	if resp, _ := plain.do(t, "POST", "/pricing", nil, nil); resp.StatusCode == 200 {
		t.Errorf("POST /pricing served the page")
	}
}

func TestWebSiteWithoutIndexStopsStartUp(t *testing.T) {
	dir := t.TempDir()
	o := testOptions{Store: openUnmigrated(t)}
	o.Hub, o.WebDir = jobs.NewHub(), dir
	if _, err := server.New(o.build(t)); err == nil || !strings.Contains(err.Error(), "index.html") {
		t.Fatalf("server.New over an empty web dir: %v, want an error naming index.html", err)
	}
}
