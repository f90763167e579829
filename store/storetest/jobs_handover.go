package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
)

// runJobsHandover checks jobs handed over to a worker at intake (ADR 0023): stored
// running under the lease they carry, through InsertJob and InsertJobs alike, counted
// as running, never claimed, and then theirs to extend and finish like claimed jobs;
// a worker that dies leaves them to the rescuer.
func runJobsHandover(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("HandedOver", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		started := jobAt.Add(time.Millisecond)
		until := started.Add(30 * time.Second)
		handed := func(owner string) jobs.Job {
			j := newJob(owner)
			j.Status, j.Attempts, j.LeaseToken, j.LeaseExpiresAt, j.StartedAt = jobs.StatusRunning, 1, "tok_hand", &until, &started
			return j
		}
		one := handed("usr_hand")
		checkJob(t, "InsertJob (handed over)", insertJob(t, s, one), insertJobWant(one))
		checkJob(t, "GetJob (handed over)", getJob(t, s, one.ID), insertJobWant(one))
		two, queued := handed("usr_hand"), newJob("usr_hand")
		res, err := s.InsertJobs(ctx, []jobs.Job{two, queued})
		if err != nil || len(res) != 2 || !res[0].Inserted || !res[1].Inserted {
			t.Fatalf("InsertJobs: %v, %v", res, err)
		}
		checkJob(t, "InsertJobs (handed over)", res[0].Job, insertJobWant(two))
		checkJob(t, "InsertJobs (queued beside it)", res[1].Job, insertJobWant(queued))

		st, err := s.QueueStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.ByStatus[jobs.StatusRunning] != 2 || st.ByStatus[jobs.StatusQueued] != 1 {
			t.Errorf("QueueStats.ByStatus = %v, want 2 running and 1 queued", st.ByStatus)
		}
		now := jobAt.Add(time.Second)
		if got := claimJobs(t, s, "tok_other", now, now.Add(time.Minute), 10); !slices.Equal(jobIDs(got), []string{queued.ID}) {
			t.Errorf("ClaimJobs = %q, want only the queued job [%s]", jobIDs(got), queued.ID)
		}
		later := until.Add(time.Minute)
		if _, err := s.ExtendLeases(ctx, "tok_hand", later); err != nil {
			t.Fatal(err)
		}
		checkTime(t, "handed-over job after ExtendLeases", "LeaseExpiresAt", getJob(t, s, one.ID).LeaseExpiresAt, &later)
		done := now.Add(time.Second)
		if n := finishJobs(t, s, done, jobs.Finish{ID: one.ID, LeaseToken: "tok_hand", Status: jobs.StatusSucceeded,
			Steps: one.Steps, RunAt: one.RunAt, FinishedAt: &done}); n != 1 {
			t.Errorf("FinishJobs of the handed-over job stored %d ends, want 1", n)
		}
		if got := getJob(t, s, one.ID); got.Status != jobs.StatusSucceeded || got.Attempts != 1 {
			t.Errorf("handed-over job after FinishJobs: %s after %d attempts, want succeeded after 1", got.Status, got.Attempts)
		}
		// The worker holding two died (and the one that claimed queued): their leases
		// expire and the rescuer requeues both.
		if n, err := s.RescueExpired(ctx, later.Add(time.Second), later.Add(time.Second)); err != nil || n != 2 {
			t.Fatalf("RescueExpired = %d, %v; want the two jobs left running", n, err)
		}
		if got := getJob(t, s, two.ID); got.Status != jobs.StatusRetrying || got.LeaseToken != "" || got.Rescues != 1 {
			t.Errorf("rescued handed-over job: %s, lease %q, rescues %d; want retrying, no lease, 1 rescue", got.Status, got.LeaseToken, got.Rescues)
		}
	})
}
