package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
)

// RunJobLimits checks what bounds a job's cost to the server: the rescue count that
// fails a job whose workers keep dying, and list pages bounded by stored bytes.
func RunJobLimits(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("RescueLimit", func(t *testing.T) {
		// A job whose worker dies every time it runs is failed "crashed" at its
		// MaxRescues-th rescue, whatever attempts it has left; the expired-lease path
		// and the start-up path (a far-future cutoff) both count.
		t.Parallel()
		s, ctx := open(t), t.Context()
		poison := newJob("usr_poison")
		poison.MaxAttempts = jobs.MaxRescues + 10
		insertJob(t, s, poison)
		short := newJob("usr_poison") // runs out of attempts before rescues
		short.MaxAttempts = jobs.MaxRescues - 1
		short.CallbackURL = ""
		insertJob(t, s, short)

		at := jobAt.Add(time.Minute)
		for round := 1; round <= jobs.MaxRescues; round++ {
			lease := at.Add(30 * time.Second)
			claimed := claimJobs(t, s, fmt.Sprintf("tok_%d", round), at, lease, 10)
			wantClaimed := []string{poison.ID}
			if round < jobs.MaxRescues {
				wantClaimed = sortedIDs(poison.ID, short.ID)
			}
			if got := sortedJobIDs(claimed); !slices.Equal(got, wantClaimed) {
				t.Fatalf("round %d: ClaimJobs = %q, want %q", round, got, wantClaimed)
			}
			rescue, cutoff := lease.Add(time.Second), lease.Add(time.Second)
			if round%2 == 0 {
				rescue, cutoff = at.Add(time.Second), at.Add(100*365*24*time.Hour) // a restart, before the lease expired
			}
			if n, err := s.RescueExpired(ctx, cutoff, rescue); err != nil || n != len(claimed) {
				t.Fatalf("round %d: RescueExpired = %d, %v; want %d", round, n, err, len(claimed))
			}
			got := getJob(t, s, poison.ID)
			if got.Rescues != round {
				t.Errorf("round %d: Rescues = %d, want %d", round, got.Rescues, round)
			}
			if round < jobs.MaxRescues {
				if got.Status != jobs.StatusRetrying || got.ErrorCode != "" || got.FinishedAt != nil {
					t.Fatalf("round %d: rescued job %s, error %q, finished %v; want retrying", round, got.Status, got.ErrorCode, got.FinishedAt)
				}
			} else {
				if got.Status != jobs.StatusFailed || got.ErrorCode != jobs.CodeCrashed || got.FinishedAt == nil || !got.FinishedAt.Equal(rescue) ||
					!strings.Contains(got.ErrorMessage, fmt.Sprintf("stopped %d times", jobs.MaxRescues)) {
					t.Fatalf("after %d rescues: %s %q %q finished %v; want failed %s, saying it stopped %d times, finished at %v",
						round, got.Status, got.ErrorCode, got.ErrorMessage, got.FinishedAt, jobs.CodeCrashed, jobs.MaxRescues, rescue)
				}
				if got.Attempts >= got.MaxAttempts || got.CallbackState != jobs.CallbackPending {
					t.Errorf("crashed job: attempts %d of %d, callback %q; want attempts left and its webhook pending", got.Attempts, got.MaxAttempts, got.CallbackState)
				}
				hooks := claimCallbacks(t, s, rescue, rescue.Add(time.Minute), 10)
				if !slices.Equal(jobIDs(hooks), []string{poison.ID}) {
					t.Errorf("ClaimCallbacks after the crash = %q, want [%s]", jobIDs(hooks), poison.ID)
				}
			}
			at = rescue.Add(time.Second)
		}
		if got := claimJobs(t, s, "tok_after", at, at.Add(time.Minute), 10); len(got) != 0 {
			t.Errorf("ClaimJobs after the crash = %q, want none: neither job runs again", jobIDs(got))
		}
		got := getJob(t, s, short.ID)
		if got.Status != jobs.StatusFailed || got.ErrorCode != "lease_expired" || got.Rescues != jobs.MaxRescues-1 {
			t.Errorf("job without attempts left: %s %q after %d rescues; want failed lease_expired after %d", got.Status, got.ErrorCode, got.Rescues, jobs.MaxRescues-1)
		}
	})

	t.Run("RescueToOnFailure", func(t *testing.T) {
		// A job RescueExpired would fail but whose on_failure step (its last) is still
		// pending goes back to the queue instead, counting the rescue, with no error
		// yet; the claim that follows takes it past its attempts (or at MaxRescues),
		// which is how the worker knows to run only that step, and its finish gives
		// the attempt back. Once that step began (recorded running), or at MaxRescues
		// already, the job fails as before: the step never runs twice.
		t.Parallel()
		s, ctx := open(t), t.Context()
		withOnFailure := func(maxAttempts int, onFailureStatus string) jobs.Job {
			j := newJob("usr_onfail")
			j.MaxAttempts, j.CallbackURL = maxAttempts, ""
			j.Steps = append(j.Steps, jobs.StepState{Step: jobs.Step{ID: "tell", Connector: "core", Action: "echo", OnFailure: true,
				Input: json.RawMessage(`{"failed":"{{payload.note}}"}`)}, Status: onFailureStatus})
			return insertJob(t, s, j)
		}
		exhausted := withOnFailure(1, jobs.StepPending)
		begun := withOnFailure(1, jobs.StepRunning)     // its worker died while running the on_failure step
		looping := withOnFailure(100, jobs.StepPending) // its workers keep dying
		plain := newJob("usr_onfail")                   // no on_failure step: fails as it always did
		plain.MaxAttempts, plain.CallbackURL = 1, ""
		insertJob(t, s, plain)

		at := jobAt.Add(time.Minute)
		rescue := func(wantN int) {
			t.Helper()
			claimed := claimJobs(t, s, "tok_dead", at, at.Add(time.Second), 10)
			at = at.Add(2 * time.Second)
			if n, err := s.RescueExpired(ctx, at, at); err != nil || n != len(claimed) || n != wantN {
				t.Fatalf("RescueExpired = %d, %v; claimed %d, want %d", n, err, len(claimed), wantN)
			}
			at = at.Add(time.Second)
		}
		rescue(4)
		got := getJob(t, s, exhausted.ID)
		if got.Status != jobs.StatusRetrying || got.Rescues != 1 || got.Attempts != 1 || got.ErrorCode != "" || got.FinishedAt != nil || !got.RunAt.Before(at) {
			t.Fatalf("exhausted job with a pending on_failure step: %s rescues %d attempts %d error %q; want retrying, due",
				got.Status, got.Rescues, got.Attempts, got.ErrorCode)
		}
		for _, id := range []string{begun.ID, plain.ID} {
			if got := getJob(t, s, id); got.Status != jobs.StatusFailed || got.ErrorCode != jobs.CodeLeaseExpired {
				t.Errorf("job %s: %s %q, want failed %s", id, got.Status, got.ErrorCode, jobs.CodeLeaseExpired)
			}
		}
		// The finalizing claim: past the attempts; its finish gives the attempt back.
		claimed := claimJobs(t, s, "tok_final", at, at.Add(time.Minute), 10)
		var final jobs.Job
		for _, j := range claimed {
			if j.ID == exhausted.ID {
				final = j
			}
		}
		if final.ID == "" || final.Attempts != 2 || final.Attempts <= final.MaxAttempts {
			t.Fatalf("the finalizing claim: %+v, want the job at attempt 2 of 1", jobIDs(claimed))
		}
		final.Steps[2].Status = jobs.StepSucceeded
		if n, err := s.FinishJobs(ctx, at, []jobs.Finish{{ID: final.ID, LeaseToken: "tok_final", Status: jobs.StatusFailed, Steps: final.Steps,
			ErrorCode: jobs.CodeLeaseExpired, ErrorMessage: "stopped", FinishedAt: &at, GiveBackAttempt: true}}); err != nil || n != 1 {
			t.Fatalf("FinishJobs: %d, %v", n, err)
		}
		if got := getJob(t, s, exhausted.ID); got.Status != jobs.StatusFailed || got.Attempts != 1 || got.Steps[2].Status != jobs.StepSucceeded {
			t.Errorf("finalized job: %s attempts %d, on_failure %s; want failed after 1 attempt", got.Status, got.Attempts, got.Steps[2].Status)
		}
		// The looping job (claimed by tok_final too): rescued until MaxRescues, the last
		// time for its on_failure step; if that worker dies too, it fails crashed.
		at = at.Add(time.Minute + time.Second)
		if n, err := s.RescueExpired(ctx, at, at); err != nil || n != 1 {
			t.Fatalf("RescueExpired of the looping job: %d, %v", n, err)
		}
		at = at.Add(time.Second)
		for got := getJob(t, s, looping.ID); got.Rescues < jobs.MaxRescues; got = getJob(t, s, looping.ID) {
			if got.Status != jobs.StatusRetrying {
				t.Fatalf("looping job after %d rescues: %s, want retrying", got.Rescues, got.Status)
			}
			rescue(1)
		}
		if got := getJob(t, s, looping.ID); got.Status != jobs.StatusRetrying || got.Rescues != jobs.MaxRescues || got.ErrorCode != "" {
			t.Fatalf("looping job at MaxRescues: %s %q, want retrying to run its on_failure step", got.Status, got.ErrorCode)
		}
		rescue(1) // the finalizing worker died before the step began
		if got := getJob(t, s, looping.ID); got.Status != jobs.StatusFailed || got.ErrorCode != jobs.CodeCrashed || got.Rescues != jobs.MaxRescues+1 {
			t.Errorf("looping job after its finalizing worker died: %s %q rescues %d, want failed %s", got.Status, got.ErrorCode, got.Rescues, jobs.CodeCrashed)
		}
	})

	t.Run("StoredBytes", func(t *testing.T) {
		// StoredBytes follows a job's JSON as it grows: intake, saved steps, completion.
		t.Parallel()
		s, ctx := open(t), t.Context()
		j := newJob("usr_size")
		j.Payload = json.RawMessage(`{"text": "` + strings.Repeat("p", 10000) + `"}`)
		got := insertJob(t, s, j)
		if got.StoredBytes < 10000 || got.StoredBytes > 12000 {
			t.Errorf("StoredBytes after intake = %d, want about 10 kB (the payload)", got.StoredBytes)
		}
		now := jobAt.Add(time.Minute)
		claimJobs(t, s, "tok_size", now, now.Add(time.Minute), 1)
		steps := slices.Clone(got.Steps)
		steps[0].Status, steps[0].Output = jobs.StepSucceeded, json.RawMessage(`"`+strings.Repeat("o", 50000)+`"`)
		if ok, err := s.SaveSteps(ctx, j.ID, "tok_size", steps, now); err != nil || !ok {
			t.Fatalf("SaveSteps: %v, %v", ok, err)
		}
		saved := getJob(t, s, j.ID).StoredBytes
		if saved < 60000 || saved > 63000 {
			t.Errorf("StoredBytes after SaveSteps = %d, want about 60 kB (payload and output)", saved)
		}
		steps[1].Status, steps[1].Output = jobs.StepSucceeded, json.RawMessage(`"`+strings.Repeat("r", 100000)+`"`)
		end := now.Add(time.Second)
		finishJobs(t, s, end, jobs.Finish{ID: j.ID, LeaseToken: "tok_size", Status: jobs.StatusSucceeded, Steps: steps, Result: steps[1].Output, RunAt: now, FinishedAt: &end})
		finished := getJob(t, s, j.ID).StoredBytes
		if finished < 260000 || finished > 264000 {
			t.Errorf("StoredBytes after FinishJobs = %d, want about 260 kB (payload, outputs and result)", finished)
		}
		page, _, err := s.ListJobs(ctx, jobs.ListFilter{OwnerID: "usr_size"})
		if err != nil || len(page) != 1 || page[0].StoredBytes != finished {
			t.Errorf("ListJobs: %d jobs, err %v; want the job with StoredBytes %d", len(page), err, finished)
		}
	})

	t.Run("ListJobsByteBudget", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		const owner = "usr_big"
		// Newest first: b11 … b00, sizes varying so that pages end at different counts.
		var want []string
		for i := range 12 {
			j := jobAtOffset(owner, fmt.Sprintf("job_b%02d", i), time.Duration(i/3)*time.Second) // ties inside pages
			j.Payload = json.RawMessage(`{"blob": "` + strings.Repeat("x", 10000*(1+i%4)) + `"}`)
			insertJob(t, s, j)
			want = append(want, j.ID)
		}
		slices.Reverse(want)
		insertJob(t, s, jobAtOffset("usr_small", "job_small", time.Second))

		for _, tc := range []struct {
			name     string
			maxBytes int64
			limit    int
		}{
			{"budget of two or three jobs", 45000, 50},
			{"budget below one job", 5000, 50},
			{"count before bytes", 1 << 30, 5},
			{"default budget", 0, 50},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var seen []string
				f := jobs.ListFilter{OwnerID: owner, Limit: tc.limit, MaxBytes: tc.maxBytes}
				budget := tc.maxBytes
				if budget == 0 {
					budget = jobs.MaxListPageBytes
				}
				for page := 0; ; page++ {
					if page > len(want) {
						t.Fatalf("still walking after %d pages: %q", page, seen)
					}
					got, more, err := s.ListJobs(ctx, f)
					if err != nil {
						t.Fatalf("ListJobs page %d: %v", page, err)
					}
					if len(got) == 0 || len(got) > tc.limit {
						t.Fatalf("page %d has %d jobs, want 1 to %d", page, len(got), tc.limit)
					}
					var sum int64
					for _, j := range got {
						if j.StoredBytes < int64(len(j.Payload)) {
							t.Errorf("job %s: StoredBytes %d is less than its payload (%d bytes)", j.ID, j.StoredBytes, len(j.Payload))
						}
						sum += j.StoredBytes
					}
					if len(got) > 1 && sum > budget {
						t.Errorf("page %d holds %d jobs of %d bytes, over the budget of %d", page, len(got), sum, budget)
					}
					// The page ended for a reason: the limit, the budget, or the last job.
					next := len(seen) + len(got)
					switch {
					case !more && next != len(want):
						t.Fatalf("page %d: more = false after %d of %d jobs", page, next, len(want))
					case more && len(got) < tc.limit && next < len(want) && sum+storedBytesOf(t, s, want[next]) <= budget:
						t.Errorf("page %d ends after %d bytes though the next job fits the budget of %d", page, sum, budget)
					}
					seen = append(seen, jobIDs(got)...)
					if !more {
						break
					}
					last := got[len(got)-1]
					f.CursorCreatedAt, f.CursorID = last.CreatedAt, last.ID
				}
				if !slices.Equal(seen, want) {
					t.Errorf("walk = %q, want each job once, newest first: %q", seen, want)
				}
			})
		}
	})

	t.Run("ListJobsDefaultByteBudget", func(t *testing.T) {
		// Jobs of 1.5 MiB: the default budget holds two of them a page, whatever the limit.
		t.Parallel()
		s, ctx := open(t), t.Context()
		blob := strings.Repeat("z", 3<<19)
		for i := range 5 {
			j := jobAtOffset("usr_huge", fmt.Sprintf("job_h%d", i), time.Duration(i)*time.Second)
			j.Payload = json.RawMessage(`{"blob": "` + blob + `"}`)
			insertJob(t, s, j)
		}
		var sizes []int
		f := jobs.ListFilter{OwnerID: "usr_huge", Limit: 200}
		for {
			got, more, err := s.ListJobs(ctx, f)
			if err != nil || len(got) == 0 {
				t.Fatalf("ListJobs: %d jobs, %v", len(got), err)
			}
			sizes = append(sizes, len(got))
			if !more || len(sizes) > 5 {
				break
			}
			f.CursorCreatedAt, f.CursorID = got[len(got)-1].CreatedAt, got[len(got)-1].ID
		}
		if !slices.Equal(sizes, []int{2, 2, 1}) {
			t.Errorf("pages of %v jobs, want [2 2 1] under a budget of %d bytes", sizes, jobs.MaxListPageBytes)
		}
	})
}

// storedBytesOf is the StoredBytes of the stored job with the id.
func storedBytesOf(t *testing.T, s store.Store, id string) int64 {
	t.Helper()
	return getJob(t, s, id).StoredBytes
}
