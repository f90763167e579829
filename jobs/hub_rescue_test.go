package jobs_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store/storetest"
)

// TestRescueSignalsWatchers: a job whose worker died is failed by the rescuer
// (lease_expired, no attempt left); nothing else will change it, so the hub must
// tell its event streams, which read the job only when signalled.
func TestRescueSignalsWatchers(t *testing.T) {
	st := storetest.OpenSQLite(t)
	now := time.Now().UTC()
	j := jobs.Job{ID: "job_rescued1", Workflow: "w", Status: jobs.StatusQueued, RunAt: now, MaxAttempts: 1, TimeoutS: 10,
		Payload: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now, Steps: []jobs.StepState{
			{Step: jobs.Step{ID: "a", Connector: "core", Action: "echo", Input: json.RawMessage(`{"x":1}`)}, Status: jobs.StepPending}}}
	if _, _, err := st.InsertJob(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	// A worker that claimed it and died: its lease runs out at once.
	if got, err := st.ClaimJobs(t.Context(), "dead-worker", now, now.Add(50*time.Millisecond), 1); err != nil || len(got) != 1 {
		t.Fatalf("claim: %d jobs, %v", len(got), err)
	}

	e := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, core.New()),
		Worker: jobs.WorkerOptions{Lease: time.Second, Poll: 20 * time.Millisecond}})
	signal, stop := e.Hub.Watch(j.ID)
	defer stop()
	runEngine(t, e)

	select {
	case <-signal:
	case <-time.After(5 * time.Second):
		t.Fatal("no signal within 5 s of the lease's expiry (the rescuer runs every second)")
	}
	if got, err := st.GetJob(t.Context(), j.ID); err != nil || got.Status != jobs.StatusFailed {
		t.Errorf("after the signal: %q, %v; want failed", got.Status, err)
	}
}
