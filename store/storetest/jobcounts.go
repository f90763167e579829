package storetest

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
)

// RunJobCounts checks that QueueStats' counts per status, read from the counters the
// store maintains (migration 0013), equal a real COUNT(*) GROUP BY status after a
// mixed workload: intake (with an idempotent repeat), claims, completions of every
// kind, cancellations, rescues of expired leases and concurrent writers.
func RunJobCounts(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("MatchTheTable", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		scan, ok := s.(interface {
			CountJobsScan(ctx context.Context) (map[string]int64, error)
		})
		if !ok {
			t.Fatalf("%s store has no CountJobsScan", s.Engine())
		}
		check := func(when string) {
			t.Helper()
			qs, err := s.QueueStats(ctx)
			if err != nil {
				t.Fatalf("%s: QueueStats: %v", when, err)
			}
			want, err := scan.CountJobsScan(ctx)
			if err != nil {
				t.Fatalf("%s: CountJobsScan: %v", when, err)
			}
			if !maps.Equal(qs.ByStatus, want) {
				t.Fatalf("%s: counters %v, table %v", when, qs.ByStatus, want)
			}
		}
		check("empty")
		now := jobAt.Add(time.Minute)
		var queued []jobs.Job
		for i := range 40 {
			j := newJob("usr_counts")
			switch i % 4 {
			case 3:
				j.Status, j.RunAt = jobs.StatusScheduled, now.Add(time.Hour)
			case 2:
				j.IdemKey, j.IdemScope, j.IdemHash = fmt.Sprintf("idem-%d", i), "key_counts", "h"
			}
			got := insertJob(t, s, j)
			if j.Status == jobs.StatusQueued {
				queued = append(queued, got)
			}
			if j.IdemKey != "" { // a repeat inserts nothing and must count nothing
				again := newJob("usr_counts")
				again.IdemKey, again.IdemScope, again.IdemHash = j.IdemKey, j.IdemScope, j.IdemHash
				if _, inserted, err := s.InsertJob(ctx, again); err != nil || inserted {
					t.Fatalf("repeat InsertJob: inserted=%v err=%v", inserted, err)
				}
			}
		}
		check("after intake")
		claimed := claimJobs(t, s, "tok_counts", now, now.Add(time.Minute), 20)
		if len(claimed) != 20 {
			t.Fatalf("claimed %d, want 20", len(claimed))
		}
		check("after claims")
		at := now.Add(time.Second)
		var fs []jobs.Finish
		for i, j := range claimed[:15] {
			f := jobs.Finish{ID: j.ID, LeaseToken: "tok_counts", Steps: j.Steps, RunAt: at}
			switch i % 3 {
			case 0:
				f.Status, f.FinishedAt = jobs.StatusSucceeded, &at
			case 1:
				f.Status, f.FinishedAt, f.ErrorCode, f.ErrorMessage = jobs.StatusFailed, &at, "x", "x"
			case 2:
				f.Status, f.RunAt = jobs.StatusRetrying, at.Add(time.Minute)
			}
			fs = append(fs, f)
		}
		fs = append(fs, jobs.Finish{ID: claimed[16].ID, LeaseToken: "not_the_holder", Status: jobs.StatusSucceeded, FinishedAt: &at, RunAt: at})
		finishJobs(t, s, at, fs...)
		check("after completions (one with a lost lease)")
		for _, j := range queued {
			_, _, _ = s.CancelQueued(ctx, j.ID, at) // queued ones cancel, claimed ones do not
		}
		if _, _, err := s.RequestCancel(ctx, claimed[17].ID, at); err != nil {
			t.Fatal(err)
		}
		check("after cancellations")
		if _, err := s.RescueExpired(ctx, at.Add(time.Hour), at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		check("after rescues")

		// Writers at once (several connections on PostgreSQL, the one writer on SQLite).
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 15 {
					j := newJob("usr_counts")
					j.ID = levqor.NewID("job")
					if _, _, err := s.InsertJob(ctx, j); err != nil {
						errs <- err
						return
					}
				}
				list, err := s.ClaimJobs(ctx, fmt.Sprintf("tok_w%d", w), at.Add(2*time.Hour), at.Add(3*time.Hour), 10)
				if err != nil {
					errs <- err
					return
				}
				done := at.Add(2 * time.Hour)
				var fs []jobs.Finish
				for _, j := range list {
					fs = append(fs, jobs.Finish{ID: j.ID, LeaseToken: fmt.Sprintf("tok_w%d", w), Status: jobs.StatusSucceeded, Steps: j.Steps, RunAt: done, FinishedAt: &done})
				}
				if _, err := s.FinishJobs(ctx, done, fs); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		check("after concurrent writers")
	})
}
