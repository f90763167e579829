package jobs_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store/storetest"
)

// failing is a connector whose one action always fails, retryably or not as its
// input says.
type failing struct{}

func (failing) Name() string { return "failing" }
func (failing) Actions() []connectors.Action {
	return []connectors.Action{{Name: "fail", Description: "Fails.",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"retryable":{"type":"boolean"}},"additionalProperties":false}`)}}
}
func (failing) Run(_ context.Context, _ string, input json.RawMessage) (json.RawMessage, error) {
	var in struct{ Retryable bool }
	_ = json.Unmarshal(input, &in)
	return nil, &connectors.StepError{Code: "upstream_error", Message: "the vendor said no", Retryable: in.Retryable}
}

// TestWorkerReportsJobsFailedForGood: JobFailed is called once per job that failed
// for good — after its last attempt, not after an attempt that will be retried — and
// never for a job that succeeded.
func TestWorkerReportsJobsFailedForGood(t *testing.T) {
	st := storetest.OpenSQLite(t)
	type call struct{ id, owner, status, code, message string }
	var mu sync.Mutex
	var calls []call
	e := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, failing{}), Worker: jobs.WorkerOptions{
		Poll: 10 * time.Millisecond, RetryBase: 10 * time.Millisecond,
		JobFailed: func(ctx context.Context, j jobs.Job, code, message string) {
			stored, err := st.GetJob(ctx, j.ID) // the failure is stored before the call
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, call{j.ID, j.OwnerID, stored.Status, code, message})
		}}})
	now := time.Now().UTC()
	insert := func(id string, retryable bool, attempts int) {
		j := jobs.Job{ID: id, OwnerID: "usr_owner", Workflow: "w", Status: jobs.StatusQueued, RunAt: now, MaxAttempts: attempts, TimeoutS: 10,
			Payload: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now, Steps: []jobs.StepState{
				{Step: jobs.Step{ID: "a", Connector: "failing", Action: "fail", Input: json.RawMessage(`{"retryable":` + map[bool]string{true: "true", false: "false"}[retryable] + `}`)}, Status: jobs.StepPending},
			}}
		if _, _, err := st.InsertJob(t.Context(), j); err != nil {
			t.Fatal(err)
		}
	}
	insert("job_final", false, 3)  // not retryable: fails for good at once
	insert("job_retried", true, 2) // retried once, then fails for good
	runEngine(t, e)

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		a, _ := st.GetJob(t.Context(), "job_final")
		b, _ := st.GetJob(t.Context(), "job_retried")
		if jobs.Terminal(a.Status) && jobs.Terminal(b.Status) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a stray call would come now
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 {
		t.Fatalf("JobFailed called %d times, want 2 (once per job): %+v", len(calls), calls)
	}
	seen := map[string]bool{}
	for _, c := range calls {
		seen[c.id] = true
		if c.owner != "usr_owner" || c.status != jobs.StatusFailed || c.code != "upstream_error" || c.message != `Step "a" failed: the vendor said no` {
			t.Errorf("call %+v", c)
		}
	}
	if !seen["job_final"] || !seen["job_retried"] {
		t.Errorf("calls for %v, want job_final and job_retried", seen)
	}
	if j, _ := st.GetJob(t.Context(), "job_retried"); j.Attempts != 2 {
		t.Errorf("job_retried ran %d attempts, want 2 (the call came only after the last)", j.Attempts)
	}
}
