package server_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/gen/client"
)

// target is an internal service an attacker would like a step to reach: it counts
// every request it gets.
type target struct {
	*httptest.Server
	hits atomic.Int32
	port string
}

// newTarget serves on addr ("127.0.0.1:0", "[::1]:0"); it skips the test when the
// address family is not available.
func newTarget(t *testing.T, addr string) *target {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	tg := &target{}
	tg.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"secret":"internal"}`)
	}))
	tg.Listener.Close()
	tg.Listener = ln
	tg.Start()
	t.Cleanup(tg.Close)
	_, tg.port, _ = net.SplitHostPort(ln.Addr().String())
	return tg
}

// callJob submits a job whose one step calls url with http.request and waits for
// it to end.
func (b *bundle) callJob(t *testing.T, key, url string) client.Job {
	t.Helper()
	acc := b.submit(t, key, map[string]any{"workflow": "ssrf", "payload": map[string]any{},
		"steps": []any{step("call", "http", "request", map[string]any{"url": url, "timeout_ms": 3000})}})
	return b.waitJob(t, key, acc.JobId, 10*time.Second, "ended", func(j client.Job) bool {
		return j.Status == "succeeded" || j.Status == "failed" || j.Status == "canceled"
	})
}

// checkRefused requires a job to have failed at once, its step refused by the guard
// for the given reason.
func checkRefused(t *testing.T, j client.Job, reason string) {
	t.Helper()
	st := j.Steps[0]
	if j.Status != "failed" || st.Status != "failed" || st.Error == nil || st.Error.Code != "refused" {
		t.Fatalf("job %s step %s, want failed and refused", j.Status, mustJSON(t, st))
	}
	if !strings.Contains(st.Error.Message, reason) {
		t.Errorf("step error %q does not say %q", st.Error.Message, reason)
	}
	if j.Error == nil || j.Error.Code != "refused" || !strings.Contains(j.Error.Message, reason) {
		t.Errorf("job error %s, want refused saying %q", mustJSON(t, j.Error), reason)
	}
	// A refusal is final: retrying cannot change the address.
	if j.Attempts != 1 || st.Attempts != 1 || st.Output != nil {
		t.Errorf("attempts %d, step attempts %d, output %v: want one attempt and no output", j.Attempts, st.Attempts, st.Output)
	}
}

// TestSSRFStepsRefused runs http.request steps against internal addresses with a
// guard that exempts nothing: each is refused before connecting, and the services
// listening there never see a request.
func TestSSRFStepsRefused(t *testing.T) {
	t.Parallel()
	v4 := newTarget(t, "127.0.0.1:0")
	b := setup(t, withAdmin, withEngine(t, nil, nil))
	ten := b.newTenant(t, "ssrf@example.com")

	cases := []struct{ name, url, reason string }{
		{"loopback IP", "http://127.0.0.1:" + v4.port + "/", "127.0.0.1 is a loopback address"},
		{"other loopback IP", "http://127.9.9.9:" + v4.port + "/", "127.9.9.9 is a loopback address"},
		{"unspecified IP (reaches loopback)", "http://0.0.0.0:" + v4.port + "/", "0.0.0.0 is an unspecified"},
		{"IPv4-mapped IPv6 loopback", "http://[::ffff:127.0.0.1]:" + v4.port + "/", "loopback address"},
		{"private IP", "http://10.0.0.1/", "10.0.0.1 is a private address"},
		{"cloud metadata", "http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address (cloud metadata)"},
		{"name resolving to loopback", "http://localhost:" + v4.port + "/", "localhost resolves to a loopback address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkRefused(t, b.callJob(t, ten.key, tc.url), tc.reason)
		})
	}
	t.Run("IPv6 loopback", func(t *testing.T) {
		v6 := newTarget(t, "[::1]:0")
		checkRefused(t, b.callJob(t, ten.key, "http://[::1]:"+v6.port+"/"), "::1 is a loopback address")
		if n := v6.hits.Load(); n != 0 {
			t.Errorf("the [::1] service got %d requests", n)
		}
	})
	if n := v4.hits.Load(); n != 0 {
		t.Errorf("the 127.0.0.1 service got %d requests", n)
	}
}

// TestSSRFRedirectRefused exempts exactly one service (127.0.0.1:PORT, as an
// operator would for an internal host) and has it redirect elsewhere: the guard
// checks every hop, so the redirect to another loopback port, name or the metadata
// address is refused and the service behind it never sees a request.
func TestSSRFRedirectRefused(t *testing.T) {
	t.Parallel()
	hidden := newTarget(t, "127.0.0.1:0")
	var hops atomic.Int32
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hops.Add(1)
		if to := r.URL.Query().Get("to"); to != "" {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(allowed.Close)
	allowedHost := strings.TrimPrefix(allowed.URL, "http://")
	b := setup(t, withAdmin, withEngine(t, []string{allowedHost}, nil))
	ten := b.newTenant(t, "redirect@example.com")

	// The exemption works: the allowed service answers a step.
	j := b.callJob(t, ten.key, allowed.URL+"/ok")
	if j.Status != "succeeded" || !sameJSON(t, j.Result, map[string]any{"status": 200, "headers": map[string]any{"content-type": "application/json", "content-length": "11"}, "json": map[string]any{"ok": true}}) {
		t.Fatalf("call to the allowed service: %s %s", j.Status, mustJSON(t, j))
	}
	// It covers that port only, not the rest of loopback.
	checkRefused(t, b.callJob(t, ten.key, hidden.URL+"/"), "127.0.0.1 is a loopback address")

	cases := []struct{ name, to, reason string }{
		{"to another loopback port", hidden.URL + "/secret", "127.0.0.1 is a loopback address"},
		{"to a name resolving to loopback", "http://localhost:" + hidden.port + "/secret", "localhost resolves to a loopback address"},
		{"to cloud metadata", "http://169.254.169.254/latest/meta-data/iam/", "cloud metadata"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := hops.Load()
			checkRefused(t, b.callJob(t, ten.key, allowed.URL+"/go?to="+url.QueryEscape(tc.to)), tc.reason)
			if n := hops.Load() - before; n != 1 {
				t.Errorf("the allowed service got %d requests, want the 1 it redirected", n)
			}
		})
	}
	if n := hidden.hits.Load(); n != 0 {
		t.Errorf("the service behind the redirects got %d requests", n)
	}
}

// TestSSRFCallbackURLRefusedAtIntake: without an exemption, a callback_url naming
// an internal address is refused when the job is submitted, so no job is stored.
func TestSSRFCallbackURLRefusedAtIntake(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin, withEngine(t, nil, nil))
	ten := b.newTenant(t, "callback-ssrf@example.com")

	cases := []struct{ name, url, reason string }{
		{"loopback IP over https", "https://127.0.0.1/x", "127.0.0.1 is a loopback address"},
		{"loopback IP over http", "http://127.0.0.1:8080/x", "127.0.0.1 is a loopback address"},
		{"IPv6 loopback", "https://[::1]/x", "::1 is a loopback address"},
		{"localhost", "https://localhost/x", "loopback name"},
		{"private", "https://192.168.1.10/hook", "private address"},
		{"numeric host", "https://2130706433/x", "ambiguous numeric host"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := echoJob("cb")
			body["callback_url"] = tc.url
			resp, data := b.intake(t, ten.key, body, "")
			p := problemOf(t, resp, data)
			if resp.StatusCode != http.StatusBadRequest || p.Code != "invalid" || !strings.Contains(deref(p.Detail), tc.reason) {
				t.Fatalf("callback_url %s: %d %s, want 400 saying %q", tc.url, resp.StatusCode, data, tc.reason)
			}
			if p.Errors == nil || len(*p.Errors) != 1 || (*p.Errors)[0].Pointer != "/callback_url" {
				t.Errorf("errors %s, want one at /callback_url", mustJSON(t, p.Errors))
			}
		})
	}
	if ids := b.jobIDs(t, ten.key); len(ids) != 0 {
		t.Errorf("jobs stored by refused intakes: %q", ids)
	}
	// A public https URL is accepted (scheduled, so no delivery is attempted).
	ok := echoJob("cb")
	ok["callback_url"] = "https://hooks.example.com/levqor"
	ok["run_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if acc := b.submit(t, ten.key, ok); acc.Status != "scheduled" {
		t.Errorf("public callback: %+v", acc)
	}
}
