package postgres_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/postgres"
	"github.com/levqor/levqor/store/storetest"
)

func batchJob(id, callback string, at time.Time) jobs.Job {
	return jobs.Job{ID: id, OwnerID: "usr_batch", Workflow: "w", Status: jobs.StatusQueued, Priority: jobs.PriorityNormal,
		RunAt: at, MaxAttempts: 3, TimeoutS: 30, Payload: json.RawMessage(`{"n":1}`), CallbackURL: callback,
		Steps:     []jobs.StepState{{Step: jobs.Step{ID: "a", Connector: "core", Action: "echo"}, Status: jobs.StepPending}},
		CreatedAt: at, UpdatedAt: at}
}

// TestFinishJobsOneStatement: FinishJobs ends a batch of distinct jobs with one
// UPDATE, and falls back to one UPDATE per job in a transaction when a job repeats.
// Both paths must leave the same rows and counters behind, for every kind of end:
// succeeded with a result and a callback, waiting (the attempt given back),
// retrying without a result, failed, a lost lease and an unknown job.
func TestFinishJobsOneStatement(t *testing.T) {
	s := storetest.OpenPostgres(t)
	ctx := t.Context()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	now, until := at.Add(time.Minute), at.Add(2*time.Minute)
	end := now.Add(5 * time.Second)
	later := end.Add(time.Hour)
	names := []string{"succeeded", "waiting", "retrying", "failed", "lost"}

	// finish claims the five jobs of prefix under token and ends them; repeat adds
	// a second, stale end of the lost job, which no path may apply.
	finish := func(prefix, token string, repeat bool) (int, map[string]jobs.Job) {
		for _, name := range names {
			callback := ""
			if name == "succeeded" || name == "failed" {
				callback = "https://hooks.example.com/" + name
			}
			if _, _, err := s.InsertJob(ctx, batchJob(prefix+name, callback, at)); err != nil {
				t.Fatalf("InsertJob: %v", err)
			}
		}
		if got, err := s.ClaimJobs(ctx, token, now, until, 10); err != nil || len(got) != len(names) {
			t.Fatalf("ClaimJobs = %d jobs, %v; want %d", len(got), err, len(names))
		}
		done := []jobs.StepState{{Step: jobs.Step{ID: "a", Connector: "core", Action: "echo"}, Status: jobs.StepSucceeded, Output: json.RawMessage(`{"x":1}`)}}
		fs := []jobs.Finish{
			{ID: prefix + "succeeded", LeaseToken: token, Status: jobs.StatusSucceeded, Steps: done, Result: json.RawMessage(`{"x":1}`), RunAt: at, FinishedAt: &end},
			{ID: prefix + "waiting", LeaseToken: token, Status: jobs.StatusWaiting, Steps: done, RunAt: later},
			{ID: prefix + "retrying", LeaseToken: token, Status: jobs.StatusRetrying, ErrorCode: "timeout", ErrorMessage: "Step a timed out.", RunAt: later},
			{ID: prefix + "failed", LeaseToken: token, Status: jobs.StatusFailed, ErrorCode: "step_failed", ErrorMessage: "Step a failed.", FinishedAt: &end},
			{ID: prefix + "lost", LeaseToken: "tok_other", Status: jobs.StatusSucceeded, FinishedAt: &end},
			{ID: prefix + "unknown", LeaseToken: token, Status: jobs.StatusSucceeded, FinishedAt: &end},
		}
		if repeat {
			fs = append(fs, fs[4])
		}
		n, err := s.FinishJobs(ctx, end, fs)
		if err != nil {
			t.Fatalf("FinishJobs: %v", err)
		}
		got := map[string]jobs.Job{}
		for _, name := range names {
			j, err := s.GetJob(ctx, prefix+name)
			if err != nil {
				t.Fatalf("GetJob: %v", err)
			}
			j.ID = strings.TrimPrefix(j.ID, prefix)
			j.LeaseToken = strings.TrimPrefix(j.LeaseToken, token) // "" once ended; the lost job keeps its lease
			got[name] = j
		}
		return n, got
	}
	nOne, one := finish("job_one_", "tok_one", false)
	nEach, each := finish("job_each_", "tok_each", true)

	if nOne != 4 || nEach != 4 {
		t.Errorf("FinishJobs applied %d (one statement) and %d (one by one), want 4 and 4", nOne, nEach)
	}
	for _, name := range names {
		a, b := one[name], each[name]
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Errorf("%s job after one statement:\n %s\nafter one UPDATE per job:\n %s", name, ja, jb)
		}
	}
	checks := []struct {
		name   string
		ok     bool
		detail any
	}{
		{"succeeded: status, result, finished_at, callback pending", one["succeeded"].Status == jobs.StatusSucceeded &&
			string(one["succeeded"].Result) == `{"x": 1}` && one["succeeded"].FinishedAt != nil && one["succeeded"].FinishedAt.Equal(end) &&
			one["succeeded"].CallbackState == jobs.CallbackPending, one["succeeded"]},
		{"waiting: the attempt given back, run_at, no finished_at", one["waiting"].Status == jobs.StatusWaiting &&
			one["waiting"].Attempts == 0 && one["waiting"].RunAt.Equal(later) && one["waiting"].FinishedAt == nil, one["waiting"]},
		{"retrying: no result, the error, attempt counted", one["retrying"].Status == jobs.StatusRetrying && one["retrying"].Result == nil &&
			one["retrying"].ErrorCode == "timeout" && one["retrying"].Attempts == 1 && one["retrying"].CallbackState == "", one["retrying"]},
		{"failed: finished, callback pending", one["failed"].Status == jobs.StatusFailed && one["failed"].FinishedAt != nil &&
			one["failed"].CallbackState == jobs.CallbackPending, one["failed"]},
		{"lost: still running under its lease", one["lost"].Status == jobs.StatusRunning && one["lost"].LeaseToken == "", one["lost"]},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: got %+v", c.name, c.detail)
		}
	}
	checkCounters(t, s)
}

// checkCounters compares the maintained job counters with a count of the table.
func checkCounters(t *testing.T, s store.Store) {
	t.Helper()
	st, err := s.QueueStats(t.Context())
	if err != nil {
		t.Fatalf("QueueStats: %v", err)
	}
	scan, err := s.(*postgres.DB).CountJobsScan(t.Context())
	if err != nil {
		t.Fatalf("CountJobsScan: %v", err)
	}
	if !maps.Equal(st.ByStatus, scan) {
		t.Errorf("job counters %v, the table %v", st.ByStatus, scan)
	}
}

// TestInsertGroupFailure: intakes that arrive together share one INSERT; when
// one of them makes it fail (here a job id that is taken, which ON CONFLICT does
// not cover), the others are still inserted and only that one gets the error.
func TestInsertGroupFailure(t *testing.T) {
	s := storetest.OpenPostgres(t)
	ctx := t.Context()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	if _, _, err := s.InsertJob(ctx, batchJob("job_taken", "", at)); err != nil {
		t.Fatalf("InsertJob: %v", err)
	}
	const n = 64
	errs := make([]error, n)
	inserted := make([]bool, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		id := "job_taken"
		if i%8 != 0 {
			id = fmt.Sprintf("job_new_%02d", i)
		}
		wg.Go(func() {
			<-start
			_, inserted[i], errs[i] = s.InsertJob(ctx, batchJob(id, "", at))
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		switch {
		case i%8 == 0 && errs[i] == nil:
			t.Errorf("intake %d of the taken id: no error, want one", i)
		case i%8 != 0 && (errs[i] != nil || !inserted[i]):
			t.Errorf("intake %d of a new id: inserted %v, %v; want inserted", i, inserted[i], errs[i])
		}
	}
	checkCounters(t, s)
}
