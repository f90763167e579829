package storetest

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
)

// runJobsWaiting checks parked jobs (issue #22): finishing an attempt as waiting
// gives its attempt back and makes it due at its wake time, claimed like a
// scheduled job; signals are stored once and wake a waiting job; a waiting job
// can be canceled.
func runJobsWaiting(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("WaitingAndSignals", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		now := jobAt.Add(time.Minute)
		j := newJob("usr_wait")
		j.RunAt = now
		j = insertJob(t, s, j)
		if got := claimJobs(t, s, "tok_w", now, now.Add(time.Minute), 1); len(got) != 1 {
			t.Fatalf("ClaimJobs = %d jobs, want 1", len(got))
		}
		wake := now.Add(time.Hour)
		if n, err := s.FinishJobs(ctx, now, []jobs.Finish{{ID: j.ID, LeaseToken: "tok_w", Status: jobs.StatusWaiting, Steps: j.Steps, RunAt: wake}}); err != nil || n != 1 {
			t.Fatalf("FinishJobs waiting: %d, %v", n, err)
		}
		got := getJob(t, s, j.ID)
		if got.Status != jobs.StatusWaiting || got.Attempts != 0 || got.LeaseToken != "" || !got.RunAt.Equal(wake) || got.FinishedAt != nil {
			t.Fatalf("parked job: status %s attempts %d lease %q run_at %v finished %v", got.Status, got.Attempts, got.LeaseToken, got.RunAt, got.FinishedAt)
		}
		if got := claimJobs(t, s, "tok_w", now.Add(time.Minute), now.Add(2*time.Minute), 10); len(got) != 0 {
			t.Fatalf("a waiting job was claimed before its wake time")
		}
		if ok, err := s.WakeJob(ctx, "job_nope", now); err != nil || ok {
			t.Fatalf("WakeJob of no job: %v %v", ok, err)
		}

		// Ten deliveries of one signal at once: one stored, and it wakes the job.
		at := now.Add(2 * time.Minute)
		var wg sync.WaitGroup
		stored := make([]bool, 10)
		for i := range stored {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := s.DeliverSignal(ctx, j.ID, "go", json.RawMessage(`{"i":`+string(rune('0'+i))+`}`), at)
				if err != nil {
					t.Errorf("DeliverSignal %d: %v", i, err)
				}
				stored[i] = ok
			}()
		}
		wg.Wait()
		first := -1
		for i, ok := range stored {
			if ok && first >= 0 {
				t.Fatalf("deliveries %d and %d both stored", first, i)
			}
			if ok {
				first = i
			}
		}
		if first < 0 {
			t.Fatal("no delivery stored")
		}
		data, ok, err := s.Signal(ctx, j.ID, "go")
		var v struct{ I int }
		if err != nil || !ok || json.Unmarshal(data, &v) != nil || v.I != first {
			t.Fatalf("Signal = %s, %v, %v; want the delivery %d", data, ok, err, first)
		}
		if _, ok, err := s.Signal(ctx, j.ID, "other"); err != nil || ok {
			t.Fatalf("Signal of a name never delivered: %v, %v", ok, err)
		}
		if got := getJob(t, s, j.ID); !got.RunAt.Equal(at) || got.Status != jobs.StatusWaiting {
			t.Fatalf("after the signal: %s run_at %v, want waiting at %v", got.Status, got.RunAt, at)
		}
		if ok, err := s.WakeJob(ctx, j.ID, at); err != nil || ok {
			t.Fatalf("WakeJob of a job due already: %v %v", ok, err)
		}
		claimed := claimJobs(t, s, "tok_w2", at, at.Add(time.Minute), 10)
		if len(claimed) != 1 || claimed[0].ID != j.ID || claimed[0].Attempts != 1 {
			t.Fatalf("ClaimJobs after the wake = %+v, want the job on its first attempt", jobIDs(claimed))
		}

		// A waiting job is canceled at once.
		w := newJob("usr_wait")
		w.RunAt = now
		w = insertJob(t, s, w)
		claimJobs(t, s, "tok_w3", at, at.Add(time.Minute), 10)
		waiting := slices.Clone(w.Steps)
		waiting[0].Status, waiting[0].Output = jobs.StepSucceeded, json.RawMessage(`{"ok":true}`)
		waiting[1].Status = jobs.StepWaiting
		if n, err := s.FinishJobs(ctx, at, []jobs.Finish{{ID: w.ID, LeaseToken: "tok_w3", Status: jobs.StatusWaiting, Steps: waiting, RunAt: wake}}); err != nil || n != 1 {
			t.Fatalf("FinishJobs waiting: %d, %v", n, err)
		}
		canceledAt := at.Add(time.Second)
		canceled, ok, err := s.CancelQueued(ctx, w.ID, canceledAt)
		if err != nil || !ok || canceled.Status != jobs.StatusCanceled {
			t.Fatalf("CancelQueued of a waiting job: %s %v %v", canceled.Status, ok, err)
		}
		// Its waiting step is canceled with it, in the answer and in the store; the
		// step that succeeded stays so.
		for _, j := range []jobs.Job{canceled, getJob(t, s, w.ID)} {
			st := j.Steps[1]
			if st.Status != jobs.StepCanceled || st.Error == nil || st.Error.Code != "canceled" || st.FinishedAt == nil ||
				!st.FinishedAt.Equal(canceledAt) || j.Steps[0].Status != jobs.StepSucceeded {
				t.Fatalf("the waiting step of a canceled job: %+v (first step %s)", st, j.Steps[0].Status)
			}
		}
		if st := getJob(t, s, w.ID); st.StoredBytes < int64(len(`"canceled"`)) {
			t.Errorf("StoredBytes %d after the cancel", st.StoredBytes)
		}
	})
}
