package retention_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/retention"
	"github.com/levqor/levqor/store/storetest"
)

// TestPruneInBatches: a pass over a real SQLite store removes every finished job
// older than Keep in batches of Batch (the last one short), and nothing newer;
// Keep 0 removes nothing.
func TestPruneInBatches(t *testing.T) {
	s, ctx := storetest.OpenSQLite(t), t.Context()
	now := time.Now().UTC()
	finish := func(n int, at time.Time) {
		for range n {
			j := jobs.Job{ID: levqor.NewID("job"), OwnerID: "usr_r", Workflow: "w", Status: jobs.StatusQueued, RunAt: at,
				MaxAttempts: 1, TimeoutS: 10, Payload: json.RawMessage(`{}`), CreatedAt: at, UpdatedAt: at,
				Steps: []jobs.StepState{{Step: jobs.Step{ID: "a", Connector: "core", Action: "echo", Input: json.RawMessage(`{}`)}, Status: jobs.StepPending}}}
			if _, _, err := s.InsertJob(ctx, j); err != nil {
				t.Fatal(err)
			}
		}
		claimed, err := s.ClaimJobs(ctx, "tok", at, at.Add(time.Minute), n)
		if err != nil || len(claimed) != n {
			t.Fatalf("claim: %d %v", len(claimed), err)
		}
		var fs []jobs.Finish
		for _, j := range claimed {
			fs = append(fs, jobs.Finish{ID: j.ID, LeaseToken: "tok", Status: jobs.StatusSucceeded, Steps: j.Steps, RunAt: at, FinishedAt: &at})
		}
		if _, err := s.FinishJobs(ctx, at, fs); err != nil {
			t.Fatal(err)
		}
	}
	finish(12, now.Add(-40*24*time.Hour))
	finish(3, now.Add(-time.Hour))

	o := retention.Options{Store: s, Keep: 0, Batch: 5, Pause: time.Millisecond}
	if p, err := retention.Prune(ctx, o); err != nil || p.Jobs != 0 {
		t.Fatalf("Keep 0 pruned %+v (%v)", p, err)
	}
	o.Keep = 30 * 24 * time.Hour
	p, err := retention.Prune(ctx, o)
	if err != nil || p.Jobs != 12 {
		t.Fatalf("pruned %+v (%v), want 12 jobs", p, err)
	}
	qs, err := s.QueueStats(ctx)
	if err != nil || qs.ByStatus[jobs.StatusSucceeded] != 3 {
		t.Errorf("left %v (%v), want the 3 recent jobs", qs.ByStatus, err)
	}
}
