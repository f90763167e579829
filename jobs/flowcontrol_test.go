package jobs_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
)

// Intake's flow control (WorkerOptions.MaxBacklog): while as many due jobs as the
// limit wait for the worker, intake of more due jobs waits for a claim to take
// some, and past BacklogWait is refused as unavailable; scheduled jobs are not held.

// backlogged returns a running engine whose one slot is busy for busyFor with a
// handed-over job, behind which limit queued jobs wait.
func backlogged(t *testing.T, open func(testing.TB) store.Store, limit int, wait, busyFor time.Duration) (*jobs.Engine, jobs.Store) {
	t.Helper()
	st := open(t)
	e := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, newScript()),
		Worker: jobs.WorkerOptions{Concurrency: 1, Poll: 20 * time.Millisecond, MaxBacklog: limit, BacklogWait: wait}})
	runEngine(t, e)
	waitCaughtUp(t, e, 1)
	busy, _, err := e.Service.Submit(t.Context(), handoverOwner, scriptIntake(`{"sleep_ms":`+strconv.FormatInt(busyFor.Milliseconds(), 10)+`}`))
	if err != nil || busy.Status != jobs.StatusRunning {
		t.Fatalf("the job that takes the slot: %s, %v; want it handed over", busy.Status, err)
	}
	for range limit {
		j, _, err := e.Service.Submit(t.Context(), handoverOwner, scriptIntake(`{}`))
		if err != nil || j.Status != jobs.StatusQueued {
			t.Fatalf("a job behind it: %s, %v; want queued at once", j.Status, err)
		}
	}
	return e, st
}

func TestIntakeWaitsForABackloggedWorker(t *testing.T) {
	for _, engine := range bothEngines {
		t.Run(engine.name, func(t *testing.T) {
			const busyFor = 700 * time.Millisecond
			e, st := backlogged(t, engine.open, 3, 10*time.Second, busyFor)
			start := time.Now()

			// Held: a caller that gives up first gets its context's error, and nothing is stored.
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			if j, _, err := e.Service.Submit(ctx, handoverOwner, scriptIntake(`{}`)); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("intake behind a full backlog: %s, %v; want it held until its deadline", j.ID, err)
			}
			// A scheduled job is not held.
			later := time.Now().Add(time.Hour)
			in := scriptIntake(`{}`)
			in.RunAt = &later
			if j, _, err := e.Service.Submit(t.Context(), handoverOwner, in); err != nil || j.Status != jobs.StatusScheduled {
				t.Fatalf("scheduled job behind a full backlog: %s, %v; want scheduled at once", j.Status, err)
			}
			// Admitted once the slot frees and a claim takes a waiting job.
			j, _, err := e.Service.Submit(t.Context(), handoverOwner, scriptIntake(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			if waited := time.Since(start); waited < busyFor/2 {
				t.Errorf("admitted after %s, before the busy job could end (%s)", waited, busyFor)
			}
			if got := waitFor(t, st, j.ID, 10*time.Second, "job", terminal); got.Status != jobs.StatusSucceeded {
				t.Errorf("the held job ended %s, want succeeded", got.Status)
			}
			st2, err := st.QueueStats(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if n := st2.ByStatus[jobs.StatusSucceeded]; n != 5 { // the busy one, 3 queued, the held one
				t.Errorf("%d jobs succeeded, want 5 (the one given up on was never stored)", n)
			}
		})
	}
}

func TestIntakeRefusedAfterBacklogWait(t *testing.T) {
	e, st := backlogged(t, storetest.OpenSQLite, 2, 50*time.Millisecond, 2*time.Second)
	before, err := st.QueueStats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = e.Service.SubmitBatch(t.Context(), handoverOwner, []jobs.Intake{scriptIntake(`{}`), scriptIntake(`{}`)})
	if code := levqor.ErrorCode(err); code != levqor.EUnavailable {
		t.Fatalf("batch behind a full backlog past BacklogWait: %v (code %q), want unavailable", err, code)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond || waited > 1500*time.Millisecond {
		t.Errorf("refused after %s, want after BacklogWait (50ms)", waited)
	}
	after, err := st.QueueStats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if after.ByStatus[jobs.StatusQueued] != before.ByStatus[jobs.StatusQueued] {
		t.Errorf("queued %d → %d: the refused batch stored jobs", before.ByStatus[jobs.StatusQueued], after.ByStatus[jobs.StatusQueued])
	}
}

// TestIntakeHeldOnlyWhileJobsWait: on PostgreSQL other instances take jobs this
// one queued; its claims never see that while its only slot is busy, so held
// intake checks the database and goes on once the jobs are gone.
func TestIntakeHeldOnlyWhileJobsWait(t *testing.T) {
	for _, engine := range bothEngines {
		t.Run(engine.name, func(t *testing.T) {
			e, st := backlogged(t, engine.open, 2, 10*time.Second, 5*time.Second)
			// Another instance takes the two queued jobs.
			now := time.Now().UTC()
			if got, err := st.ClaimJobs(t.Context(), "tok_other_instance", now, now.Add(time.Minute), 10); err != nil || len(got) != 2 {
				t.Fatalf("the other instance claimed %d jobs, %v; want the 2 queued", len(got), err)
			}
			start := time.Now()
			j, _, err := e.Service.Submit(t.Context(), handoverOwner, scriptIntake(`{}`))
			if err != nil || j.Status != jobs.StatusQueued {
				t.Fatalf("intake after the backlog was taken elsewhere: %s, %v; want queued", j.Status, err)
			}
			if waited := time.Since(start); waited > 3*time.Second {
				t.Errorf("held %s for jobs that no longer waited; want about the recount period", waited)
			}
		})
	}
}
