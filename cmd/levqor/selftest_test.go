package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestSelftestAgainstServe: every check passes against a real serve (with the job
// round trip and the metrics summary, given a key), one "ok" line per check, exit 0;
// --quick checks liveness only.
func TestSelftestAgainstServe(t *testing.T) {
	srv := startServe(t, filepath.Join(t.TempDir(), "data"), jobsTestEnv("LEVQOR_CORS_ORIGINS=https://app.example.com")...)
	url := "http://" + srv.addr
	out, errOut, code := runLevqor(t, t.TempDir(), cleanEnv(), "selftest", "--url", url, "--key", jobsTestKey, "--origin", "https://app.example.com")
	if code != 0 {
		t.Fatalf("selftest: exit %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 13 {
		t.Errorf("%d lines, want 13 checks:\n%s", len(lines), out)
	}
	for _, want := range []string{"health", "ready", "status", "docs", "openapi", "marketing", "sitemap", "security.txt", "cors", "headers", "admin-status", "metrics", "job"} {
		if !strings.Contains(out, "ok   "+want+" ") {
			t.Errorf("no passing %s check:\n%s", want, out)
		}
	}
	out, _, code = runLevqor(t, t.TempDir(), cleanEnv(), "selftest", "--url", url, "--quick")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "ok   health") {
		t.Errorf("--quick: exit %d, %q", code, out)
	}
	// An origin the server does not allow fails the CORS check, and only it.
	out, _, code = runLevqor(t, t.TempDir(), cleanEnv(), "selftest", "--url", url, "--origin", "https://evil.example")
	if code != 1 || strings.Count(out, "FAIL") != 1 || !strings.Contains(out, "FAIL cors") {
		t.Errorf("disallowed origin: exit %d\n%s", code, out)
	}
}

// TestSelftestFails: a server that is not Levqor fails the checks (exit 1, a FAIL line
// each); a wrong command line exits 2.
func TestSelftestFails(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer bad.Close()
	out, _, code := runLevqor(t, t.TempDir(), cleanEnv(), "selftest", "--url", bad.URL)
	if code != 1 || strings.Count(out, "FAIL") != 10 {
		t.Errorf("against a failing server: exit %d\n%s", code, out)
	}
	if _, _, code := runLevqor(t, t.TempDir(), cleanEnv(), "selftest", "--url", "ftp://x"); code != 2 {
		t.Errorf("bad --url: exit %d, want 2", code)
	}
}
