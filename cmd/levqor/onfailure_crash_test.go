package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store/storetest"
)

// A workflow's on_failure step runs, once, when the process running the job is
// SIGKILLed on the job's last attempt: the instance that rescues the job (the
// restarted process on SQLite, another one on PostgreSQL once the lease expired)
// runs the step before it fails the job lease_expired. The step calls a counter,
// which must see exactly one call.
func TestOnFailureAfterSIGKILL(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			env := jobsTestEnv("LEVQOR_OUTBOUND_ALLOW_HOSTS=127.0.0.1", "LEVQOR_JOB_LEASE=2s")
			dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
			if engine == "postgres" {
				env = append(env, "LEVQOR_DATABASE_URL="+storetest.PostgresURL(t))
			} else {
				dirB = dirA // the same data directory, restarted
			}
			counter := &stepCounter{calls: map[string]map[string]int{}}
			fake := httptest.NewServer(counter)
			t.Cleanup(fake.Close)

			a := startServe(t, dirA, env...)
			api := newAPIClient(a)
			body, _ := json.Marshal(map[string]any{
				"workflow": "dies", "payload": map[string]any{"n": "order-17"}, "max_attempts": 1,
				"steps": []any{map[string]any{"id": "nap", "connector": "core", "action": "sleep", "input": map[string]any{"ms": 60000}}},
				"on_failure": map[string]any{"id": "tell", "connector": "http", "action": "request",
					"input": map[string]any{"method": "POST", "url": fake.URL + "/tell", "json": map[string]any{"job": "{{payload.n}}"}}},
			})
			id, status, err := api.submit(body)
			if err != nil || status != http.StatusAccepted {
				t.Fatalf("intake: %d, %v", status, err)
			}
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if j, _ := api.job(t, id); j.Status == jobs.StatusRunning {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("job %s not running within 10 s:\n%s", id, a.output())
				}
			}
			if err := a.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			<-a.exited

			b := startServe(t, dirB, env...)
			api = newAPIClient(b)
			var j struct {
				Status   string     `json:"status"`
				Attempts int        `json:"attempts"`
				Steps    []stepView `json:"steps"`
				Error    *struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				if code := api.getJSON(t, "/api/v1/jobs/"+id, &j); code != http.StatusOK {
					t.Fatalf("GET job: %d", code)
				}
				if jobs.Terminal(j.Status) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("job %s still %s 20 s after the kill:\n%s", id, j.Status, b.output())
				}
			}
			if j.Status != jobs.StatusFailed || j.Error == nil || j.Error.Code != jobs.CodeLeaseExpired || j.Attempts != 1 || len(j.Steps) != 2 {
				t.Fatalf("job ended %s (%+v) after %d attempts, steps %+v; want failed %s after 1", j.Status, j.Error, j.Attempts, j.Steps, jobs.CodeLeaseExpired)
			}
			if tell := j.Steps[1]; tell.ID != "tell" || tell.Status != jobs.StepSucceeded || tell.Attempts != 1 {
				t.Errorf("on_failure step %+v, want succeeded after one attempt", tell)
			}
			time.Sleep(500 * time.Millisecond) // a second run would have called by now
			if n := counter.snapshot()["order-17"]["tell"]; n != 1 {
				t.Errorf("the on_failure step called %d times, want once", n)
			}
		})
	}
}
