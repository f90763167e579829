package postgres_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store/storetest"
)

// TestListenForJobs: an insert through one connection pool wakes a listener on
// another (as two instances would be), through the migration's trigger.
func TestListenForJobs(t *testing.T) {
	url := storetest.PostgresURL(t)
	a, b := open(t, url), open(t, url)
	if err := a.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	woke := make(chan struct{}, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.ListenForJobs(ctx, func() { woke <- struct{}{} }) }()
	defer func() { cancel(); <-done }()
	time.Sleep(200 * time.Millisecond) // let LISTEN take effect

	now := time.Now().UTC()
	_, _, err := a.InsertJob(t.Context(), jobs.Job{ID: "job_0notify", Workflow: "w", Status: jobs.StatusQueued, Priority: 1,
		RunAt: now, MaxAttempts: 1, TimeoutS: 1, Payload: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now,
		Steps: []jobs.StepState{{Step: jobs.Step{ID: "s", Connector: "core", Action: "echo"}, Status: jobs.StepPending}}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-woke:
	case <-time.After(5 * time.Second):
		t.Fatal("no wake-up within 5 s of an insert")
	}
}
