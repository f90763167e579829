package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/jobs"
)

// A core.wait and a core.wait_for_signal survive SIGKILL of `levqor serve` (SQLite):
// parked jobs are rows, not timers, so a new process on the same data directory
// resumes the wait on time and takes the signal, without rerunning what succeeded.
func TestWaitAndSignalSurviveSIGKILL(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	env := jobsTestEnv()
	first := startServe(t, dataDir, env...)
	api := newAPIClient(first)
	submit := func(body string) string {
		t.Helper()
		id, status, err := api.submit([]byte(body))
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("intake: %d %v", status, err)
		}
		return id
	}
	waited := submit(`{"workflow":"pause","payload":{},"steps":[
		{"id":"a","connector":"core","action":"echo","input":{"x":1}},
		{"id":"w","connector":"core","action":"wait","input":{"for":"4s"}},
		{"id":"b","connector":"core","action":"echo","input":{"w":"{{steps.w.output.waited_until}}"}}]}`)
	signaled := submit(`{"workflow":"ask","payload":{},"steps":[
		{"id":"a","connector":"core","action":"echo","input":{"x":1}},
		{"id":"s","connector":"core","action":"wait_for_signal","input":{"name":"go","timeout":"1h"}},
		{"id":"b","connector":"core","action":"echo","input":{"got":"{{steps.s.output}}"}}]}`)
	await := func(a *apiClient, id, status string, within time.Duration) jobView {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			j, code := a.job(t, id)
			if code == http.StatusOK && j.Status == status {
				return j
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s is %s (HTTP %d), not %s within %v", id, j.Status, code, status, within)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	await(api, waited, jobs.StatusWaiting, 10*time.Second)
	await(api, signaled, jobs.StatusWaiting, 10*time.Second)
	parkedAt := time.Now()

	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.exited

	second := startServe(t, dataDir, env...)
	api = newAPIClient(second)
	req, err := http.NewRequest(http.MethodPost, api.base+"/api/v1/jobs/"+signaled+"/signals/go", strings.NewReader(`{"ok":true}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", jobsTestKey)
	resp, err := api.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signal after the restart: %d", resp.StatusCode)
	}
	for _, id := range []string{signaled, waited} {
		j := await(api, id, jobs.StatusSucceeded, 15*time.Second)
		if a, _ := j.step("a"); a.Attempts != 1 {
			t.Errorf("job %s: step a ran %d times, want once", id, a.Attempts)
		}
	}
	if j, _ := api.job(t, waited); j.FinishedAt == nil || j.FinishedAt.Before(parkedAt.Add(2*time.Second)) {
		t.Errorf("the 4 s wait ended at %v, parked at %v: too early", j.FinishedAt, parkedAt)
	}
}
