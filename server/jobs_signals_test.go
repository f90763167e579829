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

// A core.wait_for_signal step's `if` refuses (422, nothing stored) a signal whose
// data does not meet it; the step keeps waiting and takes one that does. A bad
// `if`, a for_each on a wait, and a wait beyond 30 days are refused at intake (422).
func TestSignalCondition(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "signal-if@example.com")
	job := b.submit(t, ten.key, map[string]any{"workflow": "review", "payload": map[string]any{},
		"steps": []any{step("ask", "core", "wait_for_signal", map[string]any{"name": "review", "if": "signal.decision in ['approve', 'reject']"})}}).JobId
	b.awaitStatus(t, ten.key, job, "waiting")
	path := "/api/v1/jobs/" + job + "/signals/review"
	for _, body := range []string{`{"decision":"maybe"}`, `{"other":1}`} {
		if resp, data := b.do(t, "POST", path, hdr(ten.key, "application/json"), strings.NewReader(body)); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("signal %s: %d %s, want 422", body, resp.StatusCode, data)
		}
	}
	if resp, data := b.do(t, "POST", path, hdr(ten.key, "application/json"), strings.NewReader(`{"decision":"approve"}`)); resp.StatusCode != http.StatusOK {
		t.Fatalf("matching signal: %d %s", resp.StatusCode, data)
	}
	steps := b.awaitStatus(t, ten.key, job, "succeeded")
	if out, _ := json.Marshal(steps[0]["output"]); string(out) != `{"decision":"approve"}` {
		t.Errorf("output %s", out)
	}

	for name, st := range map[string]map[string]any{
		"bad if":     step("ask", "core", "wait_for_signal", map[string]any{"name": "x", "if": "signal.("}),
		"for_each":   {"id": "w", "connector": "core", "action": "wait", "input": map[string]any{"for": "1s"}, "for_each": "[1, 2]"},
		"too long":   step("w", "core", "wait", map[string]any{"for": "721h"}),
		"both":       step("w", "core", "wait", map[string]any{"for": "1s", "until": "2030-01-01T00:00:00Z"}),
		"bad until":  step("w", "core", "wait", map[string]any{"until": "tomorrow"}),
		"no timeout": step("w", "core", "wait_for_signal", map[string]any{"name": "x", "timeout": "forever"}),
	} {
		resp, data := b.intake(t, ten.key, map[string]any{"workflow": "bad", "payload": map[string]any{}, "steps": []any{st}}, "")
		if resp.StatusCode != http.StatusUnprocessableEntity && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 422", name, resp.StatusCode, data)
		}
	}
}

// The event stream shows a job parking (status and step `waiting`) and resuming on
// its signal; reconnecting with the waiting event's id sends only what changed since.
func TestSignalEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "signal-events@example.com")
	job := b.submit(t, ten.key, map[string]any{"workflow": "ev", "payload": map[string]any{},
		"steps": []any{step("s", "core", "wait_for_signal", map[string]any{"name": "go"})}}).JobId
	s := b.openEvents(t, ten.key, job, "")
	var waitingID string
	for waitingID == "" {
		ev := s.next(t)
		if ev.event == "status" && strings.Contains(ev.data, `"waiting"`) {
			waitingID = ev.id
		}
		if ev.event == "end" {
			t.Fatalf("the stream ended before the job waited: %+v", ev)
		}
	}
	s.close()
	again := b.openEvents(t, ten.key, job, waitingID)
	if resp, data := b.do(t, "POST", "/api/v1/jobs/"+job+"/signals/go", hdr(ten.key, "application/json"), strings.NewReader(`{"n":1}`)); resp.StatusCode != http.StatusOK {
		t.Fatalf("signal: %d %s", resp.StatusCode, data)
	}
	for {
		ev := again.next(t)
		if ev.event == "status" && strings.Contains(ev.data, `"waiting"`) {
			t.Errorf("the waiting status sent again after reconnecting with its id: %+v", ev)
		}
		if ev.event == "end" {
			if !strings.Contains(ev.data, `"succeeded"`) {
				t.Errorf("end %s", ev.data)
			}
			break
		}
	}
}
