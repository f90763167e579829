package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/analytics"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
)

// RunRetention checks retention's deletes: finished jobs older than the cutoff go,
// oldest first and at most the limit per call, with their idempotency keys (which
// are then free again); jobs not finished, finished after the cutoff, or with a
// webhook delivery pending stay; raw analytics events older than the cutoff go while
// the rollups stay whole; the status counters follow the deletes.
func RunRetention(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("PruneOldRows", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		old, cutoff := jobAt, jobAt.Add(30*24*time.Hour)
		recent := cutoff.Add(time.Hour)
		add := func(callback, idem string) jobs.Job {
			j := newJob("usr_retention")
			j.CallbackURL, j.IdemKey, j.IdemScope, j.IdemHash = callback, idem, "", ""
			if idem != "" {
				j.IdemScope, j.IdemHash = "key_retention", "h"
			}
			return insertJob(t, s, j)
		}
		succeed := func(at time.Time, js ...jobs.Job) {
			t.Helper()
			claimed := claimJobs(t, s, "tok_ret", at, at.Add(time.Minute), len(js))
			if len(claimed) != len(js) {
				t.Fatalf("claimed %d of %d", len(claimed), len(js))
			}
			var fs []jobs.Finish
			for _, j := range claimed {
				fs = append(fs, jobs.Finish{ID: j.ID, LeaseToken: "tok_ret", Status: jobs.StatusSucceeded, Steps: j.Steps, RunAt: at, FinishedAt: &at})
			}
			finishJobs(t, s, at, fs...)
		}
		var gone, kept []jobs.Job
		oldDone := []jobs.Job{add("", ""), add("", ""), add("", "idem-ret")}
		pending := add("https://hooks.example.com/r", "")
		succeed(old, append(oldDone, pending)...)
		gone, kept = append(gone, oldDone...), append(kept, pending)
		for range 3 {
			j := add("", "")
			if _, ok, err := s.CancelQueued(ctx, j.ID, old.Add(time.Minute)); err != nil || !ok {
				t.Fatalf("cancel: %v %v", ok, err)
			}
			gone = append(gone, j)
		}
		fresh := []jobs.Job{add("", ""), add("", "")}
		succeed(recent, fresh...)
		waiting := []jobs.Job{add("", ""), add("", "")} // queued since long ago, never finished
		kept = append(append(kept, fresh...), waiting...)

		var total int64
		for calls := 0; ; calls++ {
			n, err := s.PruneFinishedJobs(ctx, cutoff, 2)
			if err != nil {
				t.Fatal(err)
			}
			if n > 2 {
				t.Fatalf("a call pruned %d jobs, over its limit of 2", n)
			}
			total += n
			if n < 2 || calls > 10 {
				break
			}
		}
		if total != int64(len(gone)) {
			t.Errorf("pruned %d jobs, want %d", total, len(gone))
		}
		for _, j := range gone {
			if _, err := s.GetJob(ctx, j.ID); levqor.ErrorCode(err) != levqor.ENotFound {
				t.Errorf("job %s (%s before the cutoff) still there: %v", j.ID, j.Status, err)
			}
		}
		for _, j := range kept {
			if _, err := s.GetJob(ctx, j.ID); err != nil {
				t.Errorf("job %s pruned although it had to stay: %v", j.ID, err)
			}
		}
		// The pruned job's idempotency key is free again.
		again := newJob("usr_retention")
		again.IdemKey, again.IdemScope, again.IdemHash = "idem-ret", "key_retention", "h"
		if _, inserted, err := s.InsertJob(ctx, again); err != nil || !inserted {
			t.Errorf("the idempotency key of a pruned job: inserted=%v err=%v, want a new job", inserted, err)
		}
		qs, err := s.QueueStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if qs.ByStatus[jobs.StatusCanceled] != 0 || qs.ByStatus[jobs.StatusSucceeded] != 3 || qs.ByStatus[jobs.StatusQueued] != 3 {
			t.Errorf("counters after pruning: %v, want succeeded 3, queued 3, no canceled", qs.ByStatus)
		}

		// Analytics: raw events go, rollups stay.
		var events []analytics.Event
		for i, at := range []time.Time{old, old.Add(time.Hour), old.Add(48 * time.Hour), recent, recent.Add(time.Minute)} {
			events = append(events, analytics.Event{ID: fmt.Sprintf("evt_ret%d", i), Type: analytics.PageView, At: at, Path: "/"})
		}
		if err := s.InsertEvents(ctx, events); err != nil {
			t.Fatal(err)
		}
		before, err := s.EventTotals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n1, err := s.PruneAnalyticsEvents(ctx, cutoff, 2)
		if err != nil {
			t.Fatal(err)
		}
		n2, err := s.PruneAnalyticsEvents(ctx, cutoff, 2)
		if err != nil {
			t.Fatal(err)
		}
		if n1 != 2 || n2 != 1 {
			t.Errorf("pruned events %d then %d, want 2 then 1", n1, n2)
		}
		after, err := s.EventTotals(ctx)
		if err != nil || after != before || after.PageView != 5 {
			t.Errorf("totals after pruning %+v (%v), want %+v", after, err, before)
		}
		if n, err := s.PruneAnalyticsEvents(ctx, recent.Add(time.Hour), 0); n != 0 || err != nil {
			t.Errorf("limit 0 pruned %d (%v)", n, err)
		}
	})
}
