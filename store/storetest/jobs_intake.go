package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
)

// runJobsIntake checks inserting and reading single jobs: every field round-trips, defaults, idempotency keys (also under concurrent submissions) and not found.
func runJobsIntake(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		want := newJob("usr_round")
		want.Priority = jobs.PriorityHigh
		want.IdemScope, want.IdemKey, want.IdemHash = "key_round", "order-7781", strings.Repeat("ab", 32)
		// Fields InsertJob does not take: the store must ignore them. (Attempts and the
		// lease it takes, for jobs handed over at intake: runJobsHandover.)
		in := want
		in.CancelRequested, in.CallbackState = true, jobs.CallbackDelivered
		in.Result, in.ErrorCode = json.RawMessage(`{"forged": true}`), "forged"
		in.UpdatedAt = jobAt.Add(time.Hour)

		got, inserted, err := s.InsertJob(ctx, in)
		if err != nil || !inserted {
			t.Fatalf("InsertJob: inserted=%v err=%v", inserted, err)
		}
		checkJob(t, "InsertJob", got, want)
		checkJob(t, "GetJob after InsertJob", getJob(t, s, want.ID), want)

		// Not yet due when the job is claimed: it must come through untouched.
		bystander := newJob("usr_other")
		bystander.Status, bystander.RunAt = jobs.StatusScheduled, jobAt.Add(24*time.Hour)
		insertJob(t, s, bystander)

		// First attempt: claimed, progress saved, then retried after an error.
		now := jobAt.Add(time.Minute)
		until := now.Add(30 * time.Second)
		claimed := claimJobs(t, s, "tok_first", now, until, 10)
		if !slices.Equal(jobIDs(claimed), []string{want.ID}) {
			t.Fatalf("ClaimJobs = %q, want [%s]", jobIDs(claimed), want.ID)
		}
		want.Status, want.Attempts, want.LeaseToken, want.LeaseExpiresAt = jobs.StatusRunning, 1, "tok_first", &until
		want.StartedAt, want.UpdatedAt = ptr(now), now
		checkJob(t, "ClaimJobs", claimed[0], want)
		checkJob(t, "GetJob after ClaimJobs", getJob(t, s, want.ID), want)

		steps := slices.Clone(want.Steps)
		started, ended := now.Add(time.Second), now.Add(2*time.Second+345*time.Microsecond)
		steps[0].Status, steps[0].Attempts, steps[0].StartedAt, steps[0].FinishedAt = jobs.StepSucceeded, 1, &started, &ended
		steps[0].Output = json.RawMessage(`{"status": 200, "body": {"total": 99.95, "items": []}}`)
		steps[1].Status, steps[1].Attempts, steps[1].StartedAt = jobs.StepRunning, 1, &ended
		saved := now.Add(3 * time.Second)
		if ok, err := s.SaveSteps(ctx, want.ID, "tok_first", steps, saved); err != nil || !ok {
			t.Fatalf("SaveSteps: ok=%v err=%v", ok, err)
		}
		want.Steps, want.UpdatedAt = steps, saved
		checkJob(t, "GetJob after SaveSteps", getJob(t, s, want.ID), want)

		steps = slices.Clone(steps)
		steps[1].Status, steps[1].FinishedAt = jobs.StepFailed, &saved
		steps[1].Error = &jobs.StepError{Code: "upstream_timeout", Message: "slack did not answer in 10 s"}
		retryAt := now.Add(5 * time.Minute)
		failedAt := now.Add(4 * time.Second)
		if n := finishJobs(t, s, failedAt, jobs.Finish{
			ID: want.ID, LeaseToken: "tok_first", Status: jobs.StatusRetrying, Steps: steps,
			ErrorCode: "upstream_timeout", ErrorMessage: "Step notify: slack did not answer in 10 s", RunAt: retryAt,
		}); n != 1 {
			t.Fatalf("FinishJobs (retrying) applied %d, want 1", n)
		}
		want.Status, want.Steps, want.ErrorCode, want.ErrorMessage = jobs.StatusRetrying, steps, "upstream_timeout", "Step notify: slack did not answer in 10 s"
		want.RunAt, want.LeaseToken, want.LeaseExpiresAt, want.UpdatedAt = retryAt, "", nil, failedAt
		checkJob(t, "GetJob after FinishJobs (retrying)", getJob(t, s, want.ID), want)

		// Second attempt: claimed when due, cancellation requested, then succeeded.
		if early := claimJobs(t, s, "tok_second", retryAt.Add(-time.Microsecond), retryAt, 10); len(early) != 0 {
			t.Fatalf("ClaimJobs a microsecond before run_at = %q, want none", jobIDs(early))
		}
		until = retryAt.Add(time.Minute)
		claimed = claimJobs(t, s, "tok_second", retryAt, until, 10)
		if !slices.Equal(jobIDs(claimed), []string{want.ID}) {
			t.Fatalf("ClaimJobs at run_at = %q, want [%s]", jobIDs(claimed), want.ID)
		}
		// started_at stays the first attempt's.
		want.Status, want.Attempts, want.LeaseToken, want.LeaseExpiresAt, want.UpdatedAt = jobs.StatusRunning, 2, "tok_second", &until, retryAt
		checkJob(t, "ClaimJobs of the retry", claimed[0], want)

		asked := retryAt.Add(time.Second)
		got, ok, err := s.RequestCancel(ctx, want.ID, asked)
		if err != nil || !ok {
			t.Fatalf("RequestCancel: ok=%v err=%v", ok, err)
		}
		want.CancelRequested, want.UpdatedAt = true, asked
		checkJob(t, "RequestCancel", got, want)
		checkJob(t, "GetJob after RequestCancel", getJob(t, s, want.ID), want)

		steps = slices.Clone(steps)
		steps[1].Status, steps[1].Attempts, steps[1].Error = jobs.StepSucceeded, 2, nil
		steps[1].Output = json.RawMessage(`{"ts": "1725192000.000100"}`)
		done := retryAt.Add(2 * time.Second)
		if n := finishJobs(t, s, done, jobs.Finish{
			ID: want.ID, LeaseToken: "tok_second", Status: jobs.StatusSucceeded, Steps: steps,
			Result: json.RawMessage(`{"ts": "1725192000.000100", "n": [1, 2.5, "три"]}`), RunAt: retryAt, FinishedAt: &done,
		}); n != 1 {
			t.Fatalf("FinishJobs (succeeded) applied %d, want 1", n)
		}
		want.Status, want.Steps, want.Result = jobs.StatusSucceeded, steps, json.RawMessage(`{"n": [1, 2.5, "три"], "ts": "1725192000.000100"}`)
		want.ErrorCode, want.ErrorMessage, want.LeaseToken, want.LeaseExpiresAt = "", "", "", nil
		want.UpdatedAt, want.FinishedAt, want.CallbackState = done, &done, jobs.CallbackPending
		checkJob(t, "GetJob after FinishJobs (succeeded)", getJob(t, s, want.ID), want)

		// The completion webhook: due at once, delivered on the second attempt.
		hooks := claimCallbacks(t, s, done, done.Add(30*time.Second), 10)
		if !slices.Equal(jobIDs(hooks), []string{want.ID}) {
			t.Fatalf("ClaimCallbacks = %q, want [%s]", jobIDs(hooks), want.ID)
		}
		checkJob(t, "ClaimCallbacks", hooks[0], want)
		attempts := []jobs.CallbackAttempt{
			{Attempt: 1, At: done.Add(time.Second).UTC(), StatusCode: 503, Error: "Service Unavailable"},
			{Attempt: 2, At: done.Add(31 * time.Second).UTC(), StatusCode: 204},
		}
		recorded := done.Add(32 * time.Second)
		if err := s.RecordCallback(ctx, want.ID, attempts, jobs.CallbackDelivered, nil, recorded); err != nil {
			t.Fatalf("RecordCallback: %v", err)
		}
		want.Callbacks, want.CallbackState, want.UpdatedAt = attempts, jobs.CallbackDelivered, recorded
		checkJob(t, "GetJob after RecordCallback", getJob(t, s, want.ID), want)

		checkJob(t, "another job after all that", getJob(t, s, bystander.ID), bystander)
	})

	t.Run("InsertJobDefaults", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		// No idempotency key, no payload, guardrails, steps or callback: two such jobs
		// never collide.
		for range 2 {
			j := newJob("")
			j.Payload, j.Guardrails, j.Steps, j.CallbackURL = nil, nil, nil, ""
			got := insertJob(t, s, j)
			want := j
			want.Payload, want.Guardrails = json.RawMessage(`{}`), json.RawMessage(`{}`)
			checkJob(t, "InsertJob with defaults", got, want)
			checkJob(t, "GetJob after InsertJob with defaults", getJob(t, s, j.ID), want)
		}

		bad := newJob("usr_bad")
		bad.Payload = json.RawMessage(`{"unterminated": `)
		if _, _, err := s.InsertJob(ctx, bad); err == nil {
			t.Errorf("InsertJob with a payload that is not JSON: no error, want one")
		}
		_, err := s.GetJob(ctx, bad.ID)
		checkNotFound(t, "GetJob of the job with the bad payload", err)
	})

	t.Run("InsertJobIdempotent", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		first := newJob("usr_idem")
		first.IdemScope, first.IdemKey, first.IdemHash = "key_1", "order-1", "hash-1"
		insertJob(t, s, first)

		// Every field but the scope and key differs, so any field taken from it shows.
		again := jobAtOffset("usr_idem", levqor.NewID("job"), time.Hour)
		again.Workflow, again.Priority, again.Status, again.Payload = "other", jobs.PriorityLow, jobs.StatusScheduled, json.RawMessage(`{"again": 1}`)
		again.IdemScope, again.IdemKey, again.IdemHash = first.IdemScope, first.IdemKey, "hash-2"
		got, inserted, err := s.InsertJob(ctx, again)
		if err != nil {
			t.Fatalf("InsertJob with a used key: %v", err)
		}
		if inserted {
			t.Errorf("InsertJob with a used key: inserted = true, want false")
		}
		checkJob(t, "InsertJob with a used key", got, first)
		_, err = s.GetJob(ctx, again.ID)
		checkNotFound(t, "GetJob of the job with the used key", err)
		checkJob(t, "GetJob of the first job", getJob(t, s, first.ID), first)

		// The same key in another scope, and another key in the same scope, are new jobs.
		otherScope := newJob("usr_idem")
		otherScope.IdemScope, otherScope.IdemKey, otherScope.IdemHash = "key_2", first.IdemKey, "hash-3"
		otherKey := newJob("usr_idem")
		otherKey.IdemScope, otherKey.IdemKey, otherKey.IdemHash = first.IdemScope, "order-2", "hash-1"
		for _, j := range []jobs.Job{otherScope, otherKey} {
			checkJob(t, "InsertJob of a new scope and key", insertJob(t, s, j), j)
		}

		all, _, err := s.ListJobs(ctx, jobs.ListFilter{AllOwners: true})
		if err != nil {
			t.Fatalf("ListJobs: %v", err)
		}
		if got, want := sortedJobIDs(all), sortedIDs(first.ID, otherScope.ID, otherKey.ID); !slices.Equal(got, want) {
			t.Errorf("jobs stored = %q, want %q", got, want)
		}
	})

	t.Run("InsertJobIdempotentConcurrent", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		const callers = 20
		tries := make([]jobs.Job, callers)
		for i := range tries {
			tries[i] = newJob("usr_race")
			tries[i].IdemScope, tries[i].IdemKey, tries[i].IdemHash = "key_race", "once", fmt.Sprintf("hash-%d", i)
		}
		type result struct {
			j        jobs.Job
			inserted bool
			err      error
		}
		results := make([]result, callers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				<-start
				j, inserted, err := s.InsertJob(ctx, tries[i])
				results[i] = result{j, inserted, err}
			})
		}
		close(start)
		wg.Wait()

		winner := -1
		for i, r := range results {
			if r.err != nil {
				t.Errorf("caller %d: %v", i, r.err)
				continue
			}
			if r.inserted {
				if winner >= 0 {
					t.Errorf("callers %d and %d both report inserted = true", winner, i)
				}
				winner = i
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		if winner < 0 {
			t.Fatalf("no caller reports inserted = true")
		}
		for i, r := range results {
			checkJob(t, fmt.Sprintf("caller %d", i), r.j, tries[winner])
		}
		all, _, err := s.ListJobs(ctx, jobs.ListFilter{AllOwners: true})
		if err != nil {
			t.Fatalf("ListJobs: %v", err)
		}
		if !slices.Equal(jobIDs(all), []string{tries[winner].ID}) {
			t.Errorf("jobs stored after the race = %q, want [%s]", jobIDs(all), tries[winner].ID)
		}
	})

	t.Run("GetJobNotFound", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		// One job exists, so a store that returns any row it finds fails.
		insertJob(t, s, newJob("usr_present"))
		for _, id := range []string{levqor.NewID("job"), ""} {
			j, err := s.GetJob(ctx, id)
			checkNotFound(t, fmt.Sprintf("GetJob(%q)", id), err)
			if j.ID != "" {
				t.Errorf("GetJob(%q): returned job %q along with the error", id, j.ID)
			}
		}
	})

}
