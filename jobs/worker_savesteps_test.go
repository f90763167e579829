package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store/storetest"
)

// flakySaveSteps fails the first SaveSteps call with a transient database error.
type flakySaveSteps struct {
	jobs.Store
	failed atomic.Bool
}

func (s *flakySaveSteps) SaveSteps(ctx context.Context, id, token string, steps []jobs.StepState, now time.Time) (bool, error) {
	if s.failed.CompareAndSwap(false, true) {
		return false, errors.New("database is locked")
	}
	return s.Store.SaveSteps(ctx, id, token, steps, now)
}

// A transient error while recording a step's progress must not leave the job
// running for good: the heartbeat keeps extending the lease of a job nobody runs.
func TestSaveStepsErrorDoesNotStrandJob(t *testing.T) {
	st := &flakySaveSteps{Store: storetest.OpenSQLite(t)}
	e := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, core.New()),
		Worker: jobs.WorkerOptions{Lease: 600 * time.Millisecond, Poll: 20 * time.Millisecond}})
	now := time.Now().UTC()
	j := jobs.Job{ID: "job_review1", Workflow: "w", Status: jobs.StatusQueued, RunAt: now, MaxAttempts: 3, TimeoutS: 10,
		Payload: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now, Steps: []jobs.StepState{
			{Step: jobs.Step{ID: "a", Connector: "core", Action: "echo", Input: json.RawMessage(`{"x":1}`)}, Status: jobs.StepPending},
			{Step: jobs.Step{ID: "b", Connector: "core", Action: "echo", Input: json.RawMessage(`{"y":2}`)}, Status: jobs.StepPending},
		}}
	if _, _, err := st.InsertJob(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	runEngine(t, e)

	deadline := time.Now().Add(5 * time.Second)
	var got jobs.Job
	for time.Now().Before(deadline) {
		var err error
		got, err = st.GetJob(t.Context(), j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if jobs.Terminal(got.Status) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got.Status != jobs.StatusSucceeded {
		t.Fatalf("job status after 5 s (lease 600 ms) = %q, want succeeded; a failed SaveSteps stranded it", got.Status)
	}
}
