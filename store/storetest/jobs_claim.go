package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
)

// runJobsClaim checks claiming due jobs (order, concurrent claimers), extending leases and saving step progress under a lease.
func runJobsClaim(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("ClaimJobsOrder", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		now := jobAt.Add(time.Hour)
		at := func(priority int, status string, runAt time.Duration) jobs.Job {
			j := newJob("usr_claim")
			j.Priority, j.Status, j.RunAt = priority, status, now.Add(runAt)
			return insertJob(t, s, j)
		}
		low := at(jobs.PriorityLow, jobs.StatusQueued, -30*time.Minute)
		normLater := at(jobs.PriorityNormal, jobs.StatusQueued, -2*time.Minute)
		normEarlier := at(jobs.PriorityNormal, jobs.StatusRetrying, -4*time.Minute)
		high := at(jobs.PriorityHigh, jobs.StatusScheduled, -time.Second)
		future := at(jobs.PriorityHigh, jobs.StatusScheduled, time.Minute)
		var ended []jobs.Job
		for _, status := range []string{jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled} {
			ended = append(ended, at(jobs.PriorityHigh, status, -time.Hour))
		}

		if got := claimJobs(t, s, "tok_0", now, now.Add(time.Minute), 0); len(got) != 0 {
			t.Errorf("ClaimJobs with limit 0 = %q, want none", jobIDs(got))
		}

		until := now.Add(45 * time.Second).In(zoneHST)
		for _, step := range []struct {
			token string
			now   time.Time
			limit int
			want  []jobs.Job
		}{
			{"tok_1", now, 2, []jobs.Job{high, normEarlier}},
			{"tok_2", now, 10, []jobs.Job{normLater, low}},
			{"tok_3", now, 10, nil}, // future is not due, the rest have ended
			{"tok_4", now.Add(time.Minute), 10, []jobs.Job{future}},
		} {
			got := claimJobs(t, s, step.token, step.now, until, step.limit)
			if !slices.Equal(jobIDs(got), jobIDs(step.want)) {
				t.Fatalf("ClaimJobs(%s, limit %d) = %q, want %q", step.token, step.limit, jobIDs(got), jobIDs(step.want))
			}
			for i, j := range step.want {
				want := j
				want.Status, want.Attempts, want.LeaseToken, want.LeaseExpiresAt = jobs.StatusRunning, 1, step.token, &until
				want.StartedAt, want.UpdatedAt = ptr(step.now), step.now
				checkJob(t, "ClaimJobs("+step.token+")", got[i], want)
				checkJob(t, "GetJob after ClaimJobs("+step.token+")", getJob(t, s, j.ID), want)
			}
		}
		for _, j := range ended {
			checkJob(t, "a job that had ended, after ClaimJobs", getJob(t, s, j.ID), j)
		}
	})

	t.Run("ClaimJobsConcurrent", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		const total, claimers, limit = 40, 2, 5
		for range total {
			insertJob(t, s, newJob("usr_busy"))
		}
		now := jobAt.Add(time.Minute)
		claimed := make([][]jobs.Job, claimers)
		errs := make([]error, claimers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for c := range claimers {
			wg.Go(func() {
				<-start
				for {
					got, err := s.ClaimJobs(ctx, fmt.Sprintf("tok_%d", c), now, now.Add(time.Minute), limit)
					if err != nil {
						errs[c] = err
						return
					}
					if len(got) > limit {
						errs[c] = fmt.Errorf("claimed %d jobs with limit %d", len(got), limit)
						return
					}
					if len(got) == 0 {
						return
					}
					claimed[c] = append(claimed[c], got...)
				}
			})
		}
		close(start)
		wg.Wait()

		by := map[string]string{} // job id → token of the claimer that got it
		for c, got := range claimed {
			if errs[c] != nil {
				t.Fatalf("claimer %d: %v", c, errs[c])
			}
			token := fmt.Sprintf("tok_%d", c)
			for _, j := range got {
				if other, dup := by[j.ID]; dup {
					t.Errorf("job %s claimed by both %s and %s", j.ID, other, token)
				}
				by[j.ID] = token
			}
		}
		if len(by) != total {
			t.Errorf("claimed %d distinct jobs, want %d", len(by), total)
		}
		for id, token := range by {
			j := getJob(t, s, id)
			if j.LeaseToken != token || j.Attempts != 1 || j.Status != jobs.StatusRunning {
				t.Errorf("job %s: lease %q, attempts %d, status %q; want %q, 1, running", id, j.LeaseToken, j.Attempts, j.Status, token)
			}
		}
	})

	t.Run("ExtendLeases", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		for range 3 {
			insertJob(t, s, newJob("usr_beat"))
		}
		now := jobAt.Add(time.Minute)
		first := now.Add(30 * time.Second)
		mine := claimJobs(t, s, "tok_a", now, first, 2)
		theirs := claimJobs(t, s, "tok_b", now, first, 2)
		if len(mine) != 2 || len(theirs) != 1 {
			t.Fatalf("claimed %d and %d jobs, want 2 and 1", len(mine), len(theirs))
		}

		later := now.Add(90 * time.Second).In(zoneIST)
		cancel, err := s.ExtendLeases(ctx, "tok_a", later)
		if err != nil {
			t.Fatalf("ExtendLeases: %v", err)
		}
		if len(cancel) != 0 {
			t.Errorf("ExtendLeases before any cancel request = %q, want none", cancel)
		}
		for _, j := range mine {
			checkTime(t, "lease after ExtendLeases", "LeaseExpiresAt", getJob(t, s, j.ID).LeaseExpiresAt, &later)
		}
		checkTime(t, "another worker's lease after ExtendLeases", "LeaseExpiresAt", getJob(t, s, theirs[0].ID).LeaseExpiresAt, &first)

		if _, ok, err := s.RequestCancel(ctx, mine[1].ID, now.Add(time.Second)); err != nil || !ok {
			t.Fatalf("RequestCancel: ok=%v err=%v", ok, err)
		}
		if _, ok, err := s.RequestCancel(ctx, theirs[0].ID, now.Add(time.Second)); err != nil || !ok {
			t.Fatalf("RequestCancel: ok=%v err=%v", ok, err)
		}
		latest := later.Add(time.Minute)
		cancel, err = s.ExtendLeases(ctx, "tok_a", latest)
		if err != nil {
			t.Fatalf("ExtendLeases: %v", err)
		}
		if !slices.Equal(cancel, []string{mine[1].ID}) {
			t.Errorf("ExtendLeases after a cancel request = %q, want [%s]", cancel, mine[1].ID)
		}
		for _, j := range mine {
			checkTime(t, "lease after the second ExtendLeases", "LeaseExpiresAt", getJob(t, s, j.ID).LeaseExpiresAt, &latest)
		}

		// A finished job's lease is no longer held: it is neither extended nor reported.
		if n := finishJobs(t, s, now.Add(2*time.Second), jobs.Finish{ID: mine[1].ID, LeaseToken: "tok_a", Status: jobs.StatusCanceled, FinishedAt: ptr(now.Add(2 * time.Second))}); n != 1 {
			t.Fatalf("FinishJobs applied %d, want 1", n)
		}
		cancel, err = s.ExtendLeases(ctx, "tok_a", latest.Add(time.Minute))
		if err != nil || len(cancel) != 0 {
			t.Errorf("ExtendLeases after the canceled job ended = %q, err %v; want none", cancel, err)
		}
		checkTime(t, "an ended job's lease after ExtendLeases", "LeaseExpiresAt", getJob(t, s, mine[1].ID).LeaseExpiresAt, nil)
		cancel, err = s.ExtendLeases(ctx, "tok_nobody", latest)
		if err != nil || len(cancel) != 0 {
			t.Errorf("ExtendLeases of a token holding nothing = %q, err %v; want none", cancel, err)
		}
		checkTime(t, "another worker's lease at the end", "LeaseExpiresAt", getJob(t, s, theirs[0].ID).LeaseExpiresAt, &first)
	})

	t.Run("SaveSteps", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		queued := insertJob(t, s, jobAtOffset("usr_steps", "job_b_queued", 0))
		j := newJob("usr_steps")
		j.Priority = jobs.PriorityHigh
		insertJob(t, s, j)
		now := jobAt.Add(time.Minute)
		if got := claimJobs(t, s, "tok_a", now, now.Add(time.Minute), 1); !slices.Equal(jobIDs(got), []string{j.ID}) {
			t.Fatalf("ClaimJobs = %q, want [%s]", jobIDs(got), j.ID)
		}
		want := getJob(t, s, j.ID)

		steps := slices.Clone(j.Steps)
		steps[0].Status, steps[0].Attempts = jobs.StepRunning, 1
		for _, tc := range []struct{ name, id, token string }{
			{"WrongToken", j.ID, "tok_b"},
			{"EmptyToken", j.ID, ""},
			{"UnknownJob", levqor.NewID("job"), "tok_a"},
			{"NotRunning", queued.ID, ""},
		} {
			ok, err := s.SaveSteps(ctx, tc.id, tc.token, steps, now.Add(time.Second))
			if err != nil || ok {
				t.Errorf("SaveSteps %s: ok=%v err=%v, want false", tc.name, ok, err)
			}
		}
		checkJob(t, "GetJob after SaveSteps without the lease", getJob(t, s, j.ID), want)
		checkJob(t, "a queued job after SaveSteps", getJob(t, s, queued.ID), insertJobWant(queued))

		ok, err := s.SaveSteps(ctx, j.ID, "tok_a", steps, now.Add(2*time.Second))
		if err != nil || !ok {
			t.Fatalf("SaveSteps with the lease: ok=%v err=%v", ok, err)
		}
		want.Steps, want.UpdatedAt = steps, now.Add(2*time.Second)
		checkJob(t, "GetJob after SaveSteps", getJob(t, s, j.ID), want)

		final := slices.Clone(steps)
		final[0].Status, final[1].Status = jobs.StepSucceeded, jobs.StepSucceeded
		if n := finishJobs(t, s, now.Add(3*time.Second), jobs.Finish{ID: j.ID, LeaseToken: "tok_a", Status: jobs.StatusSucceeded, Steps: final, Result: json.RawMessage(`1`), FinishedAt: ptr(now.Add(3 * time.Second))}); n != 1 {
			t.Fatalf("FinishJobs applied %d, want 1", n)
		}
		ok, err = s.SaveSteps(ctx, j.ID, "tok_a", steps, now.Add(4*time.Second))
		if err != nil || ok {
			t.Errorf("SaveSteps after the job ended: ok=%v err=%v, want false", ok, err)
		}
		checkArray(t, "GetJob after SaveSteps on an ended job", "Steps", getJob(t, s, j.ID).Steps, final)
	})

}
