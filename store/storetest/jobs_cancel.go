package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
)

// runJobsCancel checks canceling queued jobs at once and requesting the cancellation of running ones.
func runJobsCancel(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("CancelQueued", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		now := jobAt.Add(time.Minute)
		add := func(status string, priority int, runAt time.Time, callback string) jobs.Job {
			j := newJob("usr_cancel")
			j.Status, j.Priority, j.RunAt, j.CallbackURL = status, priority, runAt, callback
			return insertJob(t, s, j)
		}
		queued := add(jobs.StatusQueued, jobs.PriorityLow, now, "https://hooks.example.com/q")
		scheduled := add(jobs.StatusScheduled, jobs.PriorityNormal, now.Add(time.Hour), "")
		retrying := add(jobs.StatusRetrying, jobs.PriorityLow, now.Add(time.Minute), "https://hooks.example.com/r")
		running := add(jobs.StatusQueued, jobs.PriorityHigh, now, "")
		succeeded := add(jobs.StatusSucceeded, jobs.PriorityLow, now, "")
		if got := claimJobs(t, s, "tok_a", now, now.Add(time.Minute), 1); !slices.Equal(jobIDs(got), []string{running.ID}) {
			t.Fatalf("ClaimJobs = %q, want [%s]", jobIDs(got), running.ID)
		}
		wantRunning := getJob(t, s, running.ID)

		at := now.Add(5 * time.Second)
		for _, j := range []jobs.Job{queued, scheduled, retrying} {
			got, ok, err := s.CancelQueued(ctx, j.ID, at)
			if err != nil || !ok {
				t.Fatalf("CancelQueued of a %s job: ok=%v err=%v", j.Status, ok, err)
			}
			want := insertJobWant(j)
			want.Status, want.ErrorCode, want.ErrorMessage = jobs.StatusCanceled, "canceled", got.ErrorMessage
			want.FinishedAt, want.UpdatedAt = &at, at
			if got.ErrorMessage == "" {
				t.Errorf("CancelQueued of a %s job: no error message", j.Status)
			}
			if j.CallbackURL != "" {
				want.CallbackState = jobs.CallbackPending
			}
			checkJob(t, "CancelQueued of a "+j.Status+" job", got, want)
			checkJob(t, "GetJob after CancelQueued of a "+j.Status+" job", getJob(t, s, j.ID), want)
		}

		for _, tc := range []struct{ name, id string }{
			{"Running", running.ID}, {"Succeeded", succeeded.ID}, {"AlreadyCanceled", queued.ID}, {"Unknown", levqor.NewID("job")},
		} {
			got, ok, err := s.CancelQueued(ctx, tc.id, at.Add(time.Second))
			if err != nil || ok || got.ID != "" {
				t.Errorf("CancelQueued %s: job %q ok=%v err=%v; want none, false, nil", tc.name, got.ID, ok, err)
			}
		}
		checkJob(t, "a running job after CancelQueued", getJob(t, s, running.ID), wantRunning)
		checkJob(t, "a succeeded job after CancelQueued", getJob(t, s, succeeded.ID), insertJobWant(succeeded))
		checkStatus(t, s, "twice-canceled job", queued.ID, jobs.StatusCanceled)

		hooks := claimCallbacks(t, s, at, at.Add(time.Minute), 10)
		if got, want := sortedJobIDs(hooks), sortedIDs(queued.ID, retrying.ID); !slices.Equal(got, want) {
			t.Errorf("ClaimCallbacks after CancelQueued = %q, want %q", got, want)
		}
		if got := claimJobs(t, s, "tok_b", now.Add(2*time.Hour), now.Add(3*time.Hour), 10); len(got) != 0 {
			t.Errorf("ClaimJobs after CancelQueued = %q, want none", jobIDs(got))
		}
	})

	t.Run("RequestCancel", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		now := jobAt.Add(time.Minute)
		running := newJob("usr_stop")
		running.Priority = jobs.PriorityHigh
		insertJob(t, s, running)
		queued := insertJob(t, s, newJob("usr_stop"))
		done := newJob("usr_stop")
		done.Status = jobs.StatusSucceeded
		insertJob(t, s, done)
		if got := claimJobs(t, s, "tok_a", now, now.Add(time.Minute), 1); !slices.Equal(jobIDs(got), []string{running.ID}) {
			t.Fatalf("ClaimJobs = %q, want [%s]", jobIDs(got), running.ID)
		}
		want := getJob(t, s, running.ID)

		at := now.Add(3 * time.Second).In(zoneHST)
		got, ok, err := s.RequestCancel(ctx, running.ID, at)
		if err != nil || !ok {
			t.Fatalf("RequestCancel of a running job: ok=%v err=%v", ok, err)
		}
		want.CancelRequested, want.UpdatedAt = true, at
		checkJob(t, "RequestCancel", got, want)
		checkJob(t, "GetJob after RequestCancel", getJob(t, s, running.ID), want)

		for _, tc := range []struct{ name, id string }{
			{"Queued", queued.ID}, {"Succeeded", done.ID}, {"Unknown", levqor.NewID("job")},
		} {
			got, ok, err := s.RequestCancel(ctx, tc.id, at)
			if err != nil || ok || got.ID != "" {
				t.Errorf("RequestCancel %s: job %q ok=%v err=%v; want none, false, nil", tc.name, got.ID, ok, err)
			}
		}
		checkJob(t, "a queued job after RequestCancel", getJob(t, s, queued.ID), insertJobWant(queued))
		checkJob(t, "a succeeded job after RequestCancel", getJob(t, s, done.ID), insertJobWant(done))
	})

}
