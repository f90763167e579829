package server_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestHTTPStepIdempotencyKey: execution is at-least-once, so the http connector
// sends Idempotency-Key "<job_id>:<step_id>" — the same on the retry after an
// upstream 503 — unless the step's input sets its own, which is sent unchanged.
func TestHTTPStepIdempotencyKey(t *testing.T) {
	var mu sync.Mutex
	seen := map[string][]string{} // path → Idempotency-Key of each attempt
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path] = append(seen[r.URL.Path], r.Header.Get("Idempotency-Key"))
		first := len(seen[r.URL.Path]) == 1
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusServiceUnavailable) // retryable: the step runs again
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(upstream.Close)
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "idem@example.com")

	run := func(path string, headers map[string]string) string {
		in := map[string]any{"url": upstream.URL + path, "method": "POST", "json": map[string]any{"n": 1}, "timeout_ms": 3000}
		if headers != nil {
			in["headers"] = headers
		}
		acc := b.submit(t, ten.key, map[string]any{"workflow": "idem.v1", "payload": map[string]any{},
			"steps": []any{step("call", "http", "request", in)}})
		j := b.waitStatus(t, ten.key, string(acc.JobId), "succeeded", 15*time.Second)
		return string(j.Id)
	}

	id := run("/derived", nil)
	mu.Lock()
	got := seen["/derived"]
	mu.Unlock()
	if want := id + ":call"; len(got) != 2 || got[0] != want || got[1] != want {
		t.Errorf("Idempotency-Key per attempt %q, want twice %q", got, want)
	}

	run("/own", map[string]string{"Idempotency-Key": "mine-1"})
	mu.Lock()
	got = seen["/own"]
	mu.Unlock()
	if len(got) != 2 || got[0] != "mine-1" || got[1] != "mine-1" {
		t.Errorf("Idempotency-Key per attempt %q, want the input's own twice", got)
	}
}
