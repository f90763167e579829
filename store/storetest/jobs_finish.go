package storetest

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
)

// runJobsFinish checks storing attempt ends in batches, and the rescue of running jobs whose lease expired (or of every running job at start-up).
func runJobsFinish(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("FinishJobs", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		now := jobAt.Add(time.Minute)
		until := now.Add(time.Minute)
		add := func(id string, callback string) jobs.Job {
			j := jobAtOffset("usr_finish", id, 0)
			j.CallbackURL = callback
			return insertJob(t, s, j)
		}
		succeeded := add("job_a", "https://hooks.example.com/a")
		lost := add("job_b", "https://hooks.example.com/b")
		retried := add("job_c", "https://hooks.example.com/c")
		failed := add("job_d", "")
		canceled := add("job_e", "https://hooks.example.com/e")
		if got := claimJobs(t, s, "tok_a", now, until, 10); len(got) != 5 {
			t.Fatalf("ClaimJobs = %q, want 5 jobs", jobIDs(got))
		}
		running := map[string]jobs.Job{}
		for _, j := range []jobs.Job{succeeded, lost, retried, failed, canceled} {
			running[j.ID] = getJob(t, s, j.ID)
		}

		// Lost its lease to a rescue and a new claim by another worker.
		if n, err := s.RescueExpired(ctx, until.Add(time.Second), until.Add(time.Second)); err != nil || n != 5 {
			t.Fatalf("RescueExpired = %d, %v; want 5", n, err)
		}
		later := until.Add(2 * time.Second)
		reclaimed := claimJobs(t, s, "tok_b", later, later.Add(time.Minute), 10)
		if len(reclaimed) != 5 {
			t.Fatalf("ClaimJobs after the rescue = %q, want 5 jobs", jobIDs(reclaimed))
		}
		for _, j := range reclaimed {
			running[j.ID] = getJob(t, s, j.ID)
		}

		end := later.Add(10 * time.Second)
		retryAt := end.Add(5 * time.Minute)
		steps := slices.Clone(succeeded.Steps)
		steps[0].Status, steps[1].Status = jobs.StepSucceeded, jobs.StepSucceeded
		n := finishJobs(t, s, end,
			jobs.Finish{ID: succeeded.ID, LeaseToken: "tok_b", Status: jobs.StatusSucceeded, Steps: steps, Result: json.RawMessage(`{"ok": true}`), RunAt: later, FinishedAt: &end},
			jobs.Finish{ID: lost.ID, LeaseToken: "tok_a", Status: jobs.StatusSucceeded, Steps: steps, Result: json.RawMessage(`{"stale": true}`), FinishedAt: &end},
			jobs.Finish{ID: retried.ID, LeaseToken: "tok_b", Status: jobs.StatusRetrying, Steps: retried.Steps, ErrorCode: "timeout", ErrorMessage: "Step fetch timed out.", RunAt: retryAt},
			jobs.Finish{ID: failed.ID, LeaseToken: "tok_b", Status: jobs.StatusFailed, Steps: failed.Steps, ErrorCode: "step_failed", ErrorMessage: "Step notify failed.", FinishedAt: &end},
			jobs.Finish{ID: canceled.ID, LeaseToken: "tok_b", Status: jobs.StatusCanceled, Steps: canceled.Steps, ErrorCode: "canceled", ErrorMessage: "Canceled by request.", FinishedAt: &end},
			jobs.Finish{ID: succeeded.ID, LeaseToken: "tok_b", Status: jobs.StatusFailed, ErrorCode: "twice", FinishedAt: &end}, // ended above
			jobs.Finish{ID: levqor.NewID("job"), LeaseToken: "tok_b", Status: jobs.StatusSucceeded, FinishedAt: &end},
		)
		if n != 4 {
			t.Errorf("FinishJobs applied %d, want 4", n)
		}

		ended := func(j jobs.Job, status string) jobs.Job {
			j.Status, j.LeaseToken, j.LeaseExpiresAt, j.UpdatedAt = status, "", nil, end
			return j
		}
		wantSucceeded := ended(running[succeeded.ID], jobs.StatusSucceeded)
		wantSucceeded.Steps, wantSucceeded.Result, wantSucceeded.RunAt, wantSucceeded.FinishedAt = steps, json.RawMessage(`{"ok": true}`), later, &end
		wantSucceeded.CallbackState = jobs.CallbackPending
		wantRetried := ended(running[retried.ID], jobs.StatusRetrying)
		wantRetried.ErrorCode, wantRetried.ErrorMessage, wantRetried.RunAt = "timeout", "Step fetch timed out.", retryAt
		// These two were given no RunAt, which means nothing once a job has ended.
		gotFailed, gotCanceled := getJob(t, s, failed.ID), getJob(t, s, canceled.ID)
		wantFailed := ended(running[failed.ID], jobs.StatusFailed)
		wantFailed.ErrorCode, wantFailed.ErrorMessage, wantFailed.FinishedAt = "step_failed", "Step notify failed.", &end
		wantFailed.RunAt = gotFailed.RunAt
		wantCanceled := ended(running[canceled.ID], jobs.StatusCanceled)
		wantCanceled.ErrorCode, wantCanceled.ErrorMessage, wantCanceled.FinishedAt = "canceled", "Canceled by request.", &end
		wantCanceled.CallbackState, wantCanceled.RunAt = jobs.CallbackPending, gotCanceled.RunAt
		checkJob(t, "a succeeded job", getJob(t, s, succeeded.ID), wantSucceeded)
		checkJob(t, "a job finished with a lost lease", getJob(t, s, lost.ID), running[lost.ID])
		checkJob(t, "a retried job", getJob(t, s, retried.ID), wantRetried)
		checkJob(t, "a failed job without a callback URL", gotFailed, wantFailed)
		checkJob(t, "a canceled job", gotCanceled, wantCanceled)

		// Terminal jobs with a callback URL are due for their webhook at once; the
		// retried job and the one without a URL are not.
		hooks := claimCallbacks(t, s, end, end.Add(30*time.Second), 10)
		if got, want := sortedJobIDs(hooks), sortedIDs(succeeded.ID, canceled.ID); !slices.Equal(got, want) {
			t.Errorf("ClaimCallbacks after FinishJobs = %q, want %q", got, want)
		}

		if n := finishJobs(t, s, end); n != 0 {
			t.Errorf("FinishJobs of nothing applied %d", n)
		}
		// A result that is not JSON is refused, and nothing of the batch is applied.
		_, err := s.FinishJobs(ctx, end, []jobs.Finish{
			{ID: lost.ID, LeaseToken: "tok_b", Status: jobs.StatusSucceeded, FinishedAt: &end},
			{ID: lost.ID, LeaseToken: "tok_b", Status: jobs.StatusSucceeded, Result: json.RawMessage(`{"a":`), FinishedAt: &end},
		})
		if err == nil {
			t.Errorf("FinishJobs with a result that is not JSON: no error, want one")
		}
		checkJob(t, "a running job after a refused FinishJobs", getJob(t, s, lost.ID), running[lost.ID])
	})

	t.Run("RescueEveryRunningJob", func(t *testing.T) {
		// What a single-process engine does at start-up: every running job belongs to
		// a dead process, whatever its lease says; rescued jobs are due now, not at the cut-off.
		t.Parallel()
		s, ctx := open(t), t.Context()
		now := jobAt.Add(time.Minute)
		j := newJob("usr_restart")
		insertJob(t, s, j)
		if got := claimJobs(t, s, "tok_gone", now, now.Add(time.Hour), 10); len(got) != 1 {
			t.Fatalf("ClaimJobs = %q, want 1 job", jobIDs(got))
		}
		restart := now.Add(time.Second)
		if n, err := s.RescueExpired(ctx, restart.Add(100*365*24*time.Hour), restart); err != nil || n != 1 {
			t.Fatalf("RescueExpired = %d, %v; want 1", n, err)
		}
		got := getJob(t, s, j.ID)
		if got.Status != jobs.StatusRetrying || !got.RunAt.Equal(restart) || got.LeaseToken != "" {
			t.Fatalf("rescued job: status %s, run_at %v, lease %q; want retrying, due at %v, no lease", got.Status, got.RunAt, got.LeaseToken, restart)
		}
		if due := claimJobs(t, s, "tok_new", restart, restart.Add(time.Minute), 10); len(due) != 1 {
			t.Fatalf("the rescued job is not due at the restart: ClaimJobs = %q", jobIDs(due))
		}
	})

	t.Run("RescueExpired", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		now := jobAt.Add(time.Minute)
		retry := newJob("usr_rescue")
		last := newJob("usr_rescue")
		last.MaxAttempts = 1
		insertJob(t, s, retry)
		insertJob(t, s, last)
		lease := now.Add(30 * time.Second)
		if got := claimJobs(t, s, "tok_dead", now, lease, 10); len(got) != 2 {
			t.Fatalf("ClaimJobs = %q, want 2 jobs", jobIDs(got))
		}
		alive := newJob("usr_rescue")
		insertJob(t, s, alive)
		if got := claimJobs(t, s, "tok_alive", now, now.Add(10*time.Minute), 10); len(got) != 1 {
			t.Fatalf("ClaimJobs = %q, want 1 job", jobIDs(got))
		}
		queued := insertJob(t, s, jobAtOffset("usr_rescue", levqor.NewID("job"), 0))
		wantRetry, wantLast, wantAlive := getJob(t, s, retry.ID), getJob(t, s, last.ID), getJob(t, s, alive.ID)

		if n, err := s.RescueExpired(ctx, lease.Add(-time.Second), lease.Add(-time.Second)); err != nil || n != 0 {
			t.Fatalf("RescueExpired before any lease expired = %d, %v; want 0", n, err)
		}
		rescue := lease.Add(time.Second)
		n, err := s.RescueExpired(ctx, rescue, rescue)
		if err != nil || n != 2 {
			t.Fatalf("RescueExpired = %d, %v; want 2", n, err)
		}
		wantRetry.Status, wantRetry.RunAt, wantRetry.LeaseToken, wantRetry.LeaseExpiresAt, wantRetry.UpdatedAt = jobs.StatusRetrying, rescue, "", nil, rescue
		wantRetry.Rescues, wantLast.Rescues = 1, 1
		checkJob(t, "a rescued job with attempts left", getJob(t, s, retry.ID), wantRetry)
		wantLast.Status, wantLast.RunAt, wantLast.LeaseToken, wantLast.LeaseExpiresAt, wantLast.UpdatedAt = jobs.StatusFailed, rescue, "", nil, rescue
		wantLast.ErrorCode, wantLast.FinishedAt, wantLast.CallbackState = "lease_expired", &rescue, jobs.CallbackPending
		got := getJob(t, s, last.ID)
		if got.ErrorMessage == "" {
			t.Errorf("a rescued job without attempts left has no error message")
		}
		wantLast.ErrorMessage = got.ErrorMessage
		checkJob(t, "a rescued job without attempts left", got, wantLast)
		checkJob(t, "a job whose lease holds", getJob(t, s, alive.ID), wantAlive)
		checkJob(t, "a queued job", getJob(t, s, queued.ID), insertJobWant(queued))

		if n, err := s.RescueExpired(ctx, rescue, rescue); err != nil || n != 0 {
			t.Errorf("RescueExpired again = %d, %v; want 0", n, err)
		}
		hooks := claimCallbacks(t, s, rescue, rescue.Add(time.Minute), 10)
		if !slices.Equal(jobIDs(hooks), []string{last.ID}) {
			t.Errorf("ClaimCallbacks after RescueExpired = %q, want [%s]", jobIDs(hooks), last.ID)
		}

		// The rescued job runs again: a second attempt, started_at kept.
		again := claimJobs(t, s, "tok_next", rescue, rescue.Add(time.Minute), 10)
		if got, want := sortedJobIDs(again), sortedIDs(retry.ID, queued.ID); !slices.Equal(got, want) {
			t.Fatalf("ClaimJobs after RescueExpired = %q, want %q", got, want)
		}
		j := getJob(t, s, retry.ID)
		if j.Attempts != 2 || j.StartedAt == nil || !j.StartedAt.Equal(now) {
			t.Errorf("rescued job claimed again: attempts %d, started %v; want 2, %s", j.Attempts, j.StartedAt, now.Format(time.RFC3339Nano))
		}
	})

}
