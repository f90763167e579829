package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// jobState reads a job's status and steps over the API.
func (b *bundle) jobState(t *testing.T, key, id string) (status string, steps []map[string]any) {
	t.Helper()
	resp, data := b.do(t, "GET", "/api/v1/jobs/"+id, hdr(key, ""), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("get job: %d %s", resp.StatusCode, data)
	}
	var j struct {
		Status string           `json:"status"`
		Steps  []map[string]any `json:"steps"`
	}
	if err := json.Unmarshal(data, &j); err != nil {
		t.Fatal(err)
	}
	return j.Status, j.Steps
}

// awaitStatus polls a job over the API until it has status, for up to 10 s.
func (b *bundle) awaitStatus(t *testing.T, key, id, status string) []map[string]any {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		if got, steps := b.jobState(t, key, id); got == status {
			return steps
		}
	}
	t.Fatalf("job %s not %s within 10 s", id, status)
	return nil
}

// POST /api/v1/jobs/{id}/signals/{name}: the owner's signal wakes the job and is
// its step's output, applied once when posted ten times at once; another owner's
// job is 404, a signal the job does not wait for 409, a body over the bound 413.
func TestSignalRoute(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "signals@example.com")
	other := b.newTenant(t, "other-signals@example.com")
	job := b.submit(t, ten.key, map[string]any{"workflow": "approve", "payload": map[string]any{},
		"steps": []any{
			step("ask", "core", "wait_for_signal", map[string]any{"name": "approved", "timeout": "1h"}),
			step("send", "core", "echo", map[string]any{"by": "{{steps.ask.output.by}}"}),
		}}).JobId
	steps := b.awaitStatus(t, ten.key, job, "waiting")
	if steps[0]["status"] != "waiting" || steps[0]["wait_until"] == nil {
		t.Fatalf("waiting step %v", steps[0])
	}
	path := "/api/v1/jobs/" + job + "/signals/approved"
	if resp, data := b.do(t, "POST", path, hdr(other.key, "application/json"), strings.NewReader(`{}`)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another owner's signal: %d %s, want 404", resp.StatusCode, data)
	}
	if resp, data := b.do(t, "POST", "/api/v1/jobs/"+job+"/signals/rejected", hdr(ten.key, "application/json"), strings.NewReader(`{}`)); resp.StatusCode != http.StatusConflict {
		t.Errorf("a signal the job does not wait for: %d %s, want 409", resp.StatusCode, data)
	}
	big := `{"by":"` + strings.Repeat("x", 70<<10) + `"}`
	if resp, data := b.do(t, "POST", path, hdr(ten.key, "application/json"), strings.NewReader(big)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a signal over 64 KiB: %d %.200s, want 413", resp.StatusCode, data)
	}

	codes := make([]int, 10)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := b.do(t, "POST", path, hdr(ten.key, "application/json"), bytes.NewReader(fmt.Appendf(nil, `{"by":"person %d"}`, i)))
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	winner := -1
	for i, c := range codes {
		switch {
		case c == http.StatusOK && winner >= 0:
			t.Fatalf("signals %d and %d both applied: %v", winner, i, codes)
		case c == http.StatusOK:
			winner = i
		case c != http.StatusConflict:
			t.Fatalf("signal %d: %d, want 200 or 409 (%v)", i, c, codes)
		}
	}
	if winner < 0 {
		t.Fatalf("no signal applied: %v", codes)
	}
	steps = b.awaitStatus(t, ten.key, job, "succeeded")
	out, _ := json.Marshal(steps[1]["output"])
	if want := fmt.Sprintf(`{"by":"person %d"}`, winner); string(out) != want {
		t.Errorf("the next step read %s, want %s", out, want)
	}
}
