package storetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
)

// jobAt is the base time of job tests: not in UTC and at microsecond precision, for
// the same reason as createdAt. Times derived from it keep its zone, so every time a
// test hands a store is in a zone other than UTC.
var jobAt = time.Date(2025, 9, 1, 12, 0, 0, 250125000, zoneNPT)

// newJob returns a queued job of owner with every field InsertJob takes set, except
// the idempotency key.
func newJob(ownerID string) jobs.Job {
	return jobs.Job{
		ID: levqor.NewID("job"), OwnerID: ownerID, Workflow: "invoice-sync", Status: jobs.StatusQueued,
		Priority: jobs.PriorityNormal, RunAt: jobAt, MaxAttempts: 3, TimeoutS: 90,
		Payload: json.RawMessage(`{"customer": {"id": 42, "name": "Zoë"}, "lines": [1.5, null, "x"], "note": "launch 🚀"}`),
		Steps: []jobs.StepState{
			{Step: jobs.Step{ID: "fetch", Connector: "http", Action: "get",
				Input: json.RawMessage(`{"url": "https://api.example.com/c/{{payload.customer.id}}", "headers": {}}`)}, Status: jobs.StepPending},
			{Step: jobs.Step{ID: "notify", Connector: "slack", Action: "post",
				Input: json.RawMessage(`{"text": "{{steps.fetch.output.body}}"}`)}, Status: jobs.StepPending},
		},
		Guardrails:  json.RawMessage(`{"max_cost_usd": 0.5, "allow_hosts": ["api.example.com"]}`),
		CallbackURL: "https://hooks.example.com/levqor?src=test",
		CreatedAt:   jobAt,
		UpdatedAt:   jobAt,
	}
}

// jobAtOffset returns newJob(ownerID) with id, created at jobAt+d.
func jobAtOffset(ownerID, id string, d time.Duration) jobs.Job {
	j := newJob(ownerID)
	j.ID, j.CreatedAt, j.UpdatedAt = id, jobAt.Add(d), jobAt.Add(d)
	return j
}

// insertJob stores j, fails the test unless it was inserted, and returns what the store returned.
func insertJob(t *testing.T, s store.Store, j jobs.Job) jobs.Job {
	t.Helper()
	got, inserted, err := s.InsertJob(t.Context(), j)
	if err != nil {
		t.Fatalf("InsertJob(%s): %v", j.ID, err)
	}
	if !inserted {
		t.Fatalf("InsertJob(%s): inserted = false, want true", j.ID)
	}
	return got
}

// getJob returns the stored job with the id and fails the test on error.
func getJob(t *testing.T, s store.Store, id string) jobs.Job {
	t.Helper()
	j, err := s.GetJob(t.Context(), id)
	if err != nil {
		t.Fatalf("GetJob(%s): %v", id, err)
	}
	return j
}

// claimJobs claims for token and fails the test on error.
func claimJobs(t *testing.T, s store.Store, token string, now, until time.Time, limit int) []jobs.Job {
	t.Helper()
	got, err := s.ClaimJobs(t.Context(), token, now, until, limit)
	if err != nil {
		t.Fatalf("ClaimJobs(%s): %v", token, err)
	}
	return got
}

// finishJobs applies fs and fails the test on error.
func finishJobs(t *testing.T, s store.Store, now time.Time, fs ...jobs.Finish) int {
	t.Helper()
	n, err := s.FinishJobs(t.Context(), now, fs)
	if err != nil {
		t.Fatalf("FinishJobs: %v", err)
	}
	return n
}

// claimCallbacks claims webhook deliveries and fails the test on error.
func claimCallbacks(t *testing.T, s store.Store, now, until time.Time, limit int) []jobs.Job {
	t.Helper()
	got, err := s.ClaimCallbacks(t.Context(), now, until, limit)
	if err != nil {
		t.Fatalf("ClaimCallbacks: %v", err)
	}
	return got
}

// jobIDs returns the ids of js, in order.
func jobIDs(js []jobs.Job) []string {
	ids := make([]string, len(js))
	for i, j := range js {
		ids[i] = j.ID
	}
	return ids
}

// sortedJobIDs returns the ids of js, sorted.
func sortedJobIDs(js []jobs.Job) []string {
	ids := jobIDs(js)
	slices.Sort(ids)
	return ids
}

// sortedIDs returns ids sorted, for comparing sets.
func sortedIDs(ids ...string) []string {
	return slices.Sorted(slices.Values(ids))
}

// jsonEqual reports whether a and b are the same JSON value (PostgreSQL's JSONB keeps
// neither spacing nor key order).
func jsonEqual(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// checkJSON reports got unless it is the same JSON value as want.
func checkJSON(t *testing.T, what, name string, got, want []byte) {
	t.Helper()
	if !jsonEqual(got, want) {
		t.Errorf("%s: %s = %s, want %s", what, name, got, want)
	}
}

// checkArray reports got unless it encodes to the same JSON as want; nil and empty are alike.
func checkArray[T any](t *testing.T, what, name string, got, want []T) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	gb, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("%s: encode %s: %v", what, name, err)
	}
	wb, err := json.Marshal(want)
	if err != nil {
		t.Fatalf("%s: encode wanted %s: %v", what, name, err)
	}
	checkJSON(t, what, name, gb, wb)
}

// checkJob reports every field of got that differs from want. Times must be the same
// instant and in UTC; JSON must be the same value.
func checkJob(t *testing.T, what string, got, want jobs.Job) {
	t.Helper()
	for _, f := range []struct {
		name      string
		got, want string
	}{
		{"ID", got.ID, want.ID},
		{"OwnerID", got.OwnerID, want.OwnerID},
		{"Workflow", got.Workflow, want.Workflow},
		{"Status", got.Status, want.Status},
		{"ErrorCode", got.ErrorCode, want.ErrorCode},
		{"ErrorMessage", got.ErrorMessage, want.ErrorMessage},
		{"CallbackURL", got.CallbackURL, want.CallbackURL},
		{"CallbackState", got.CallbackState, want.CallbackState},
		{"LeaseToken", got.LeaseToken, want.LeaseToken},
		{"IdemScope", got.IdemScope, want.IdemScope},
		{"IdemKey", got.IdemKey, want.IdemKey},
		{"IdemHash", got.IdemHash, want.IdemHash},
	} {
		if f.got != f.want {
			t.Errorf("%s: %s = %q, want %q", what, f.name, f.got, f.want)
		}
	}
	for _, f := range []struct {
		name      string
		got, want int
	}{
		{"Priority", got.Priority, want.Priority},
		{"Attempts", got.Attempts, want.Attempts},
		{"MaxAttempts", got.MaxAttempts, want.MaxAttempts},
		{"TimeoutS", got.TimeoutS, want.TimeoutS},
		{"Rescues", got.Rescues, want.Rescues},
	} {
		if f.got != f.want {
			t.Errorf("%s: %s = %d, want %d", what, f.name, f.got, f.want)
		}
	}
	if got.CancelRequested != want.CancelRequested {
		t.Errorf("%s: CancelRequested = %v, want %v", what, got.CancelRequested, want.CancelRequested)
	}
	checkJSON(t, what, "Payload", got.Payload, want.Payload)
	checkJSON(t, what, "Guardrails", got.Guardrails, want.Guardrails)
	switch {
	case want.Result == nil && got.Result != nil:
		t.Errorf("%s: Result = %s, want nil", what, got.Result)
	case want.Result != nil:
		checkJSON(t, what, "Result", got.Result, want.Result)
	}
	checkArray(t, what, "Steps", got.Steps, want.Steps)
	checkArray(t, what, "Callbacks", got.Callbacks, want.Callbacks)
	checkTime(t, what, "RunAt", &got.RunAt, &want.RunAt)
	checkTime(t, what, "CreatedAt", &got.CreatedAt, &want.CreatedAt)
	checkTime(t, what, "UpdatedAt", &got.UpdatedAt, &want.UpdatedAt)
	checkTime(t, what, "LeaseExpiresAt", got.LeaseExpiresAt, want.LeaseExpiresAt)
	checkTime(t, what, "StartedAt", got.StartedAt, want.StartedAt)
	checkTime(t, what, "FinishedAt", got.FinishedAt, want.FinishedAt)
}

// checkStatus fails the test unless the stored job with the id has the status.
func checkStatus(t *testing.T, s store.Store, what, id, status string) {
	t.Helper()
	if got := getJob(t, s, id).Status; got != status {
		t.Errorf("%s: job %s status = %q, want %q", what, id, got, status)
	}
}

// RunJobs checks an engine's jobs.Store; open returns a fresh, migrated store.
func RunJobs(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		want := newJob("usr_round")
		want.Priority = jobs.PriorityHigh
		want.IdemScope, want.IdemKey, want.IdemHash = "key_round", "order-7781", strings.Repeat("ab", 32)
		// Fields InsertJob does not take: the store must ignore them.
		in := want
		in.Attempts, in.LeaseToken, in.CancelRequested, in.CallbackState = 7, "tok_forged", true, jobs.CallbackDelivered
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

	t.Run("ListJobs", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		const ann, bob = "usr_ann", "usr_bob"
		at := func(id, owner, workflow, status string, d time.Duration) jobs.Job {
			j := jobAtOffset(owner, id, d)
			j.Workflow, j.Status = workflow, status
			return j
		}
		// Newest first: j7, j6, j5, j4 and j3 (the same instant, so by id), j2, j1, j0.
		// j7 is a microsecond newer than j6; j0 belongs to no owner (a bootstrap admin's).
		j0 := at("job_00", "", "w1", jobs.StatusQueued, 0)
		j1 := at("job_01", ann, "w1", jobs.StatusQueued, time.Second)
		j2 := at("job_02", ann, "w2", jobs.StatusQueued, 2*time.Second)
		j3 := at("job_03", ann, "w1", jobs.StatusQueued, 3*time.Second)
		j4 := at("job_04", bob, "w1", jobs.StatusQueued, 3*time.Second)
		j5 := at("job_05", ann, "w1", jobs.StatusScheduled, 4*time.Second)
		j6 := at("job_06", bob, "w2", jobs.StatusQueued, 5*time.Second)
		j7 := at("job_07", ann, "w1", jobs.StatusQueued, 5*time.Second+time.Microsecond)
		// Inserted neither in list order nor its reverse.
		for _, j := range []jobs.Job{j3, j1, j6, j4, j0, j7, j2, j5} {
			insertJob(t, s, j)
		}
		ids := func(js ...jobs.Job) []string { return jobIDs(js) }

		for _, tc := range []struct {
			name string
			f    jobs.ListFilter
			want []string
		}{
			{"AllOwners", jobs.ListFilter{AllOwners: true}, ids(j7, j6, j5, j4, j3, j2, j1, j0)},
			{"AllOwnersIgnoresOwnerID", jobs.ListFilter{AllOwners: true, OwnerID: bob}, ids(j7, j6, j5, j4, j3, j2, j1, j0)},
			{"Owner", jobs.ListFilter{OwnerID: ann}, ids(j7, j5, j3, j2, j1)},
			{"OtherOwner", jobs.ListFilter{OwnerID: bob}, ids(j6, j4)},
			{"NoOwner", jobs.ListFilter{}, ids(j0)},
			{"UnknownOwner", jobs.ListFilter{OwnerID: "usr_nobody"}, nil},
			{"Status", jobs.ListFilter{AllOwners: true, Status: jobs.StatusScheduled}, ids(j5)},
			{"OwnerStatus", jobs.ListFilter{OwnerID: ann, Status: jobs.StatusQueued}, ids(j7, j3, j2, j1)},
			{"Workflow", jobs.ListFilter{AllOwners: true, Workflow: "w2"}, ids(j6, j2)},
			{"OwnerWorkflow", jobs.ListFilter{OwnerID: bob, Workflow: "w1"}, ids(j4)},
			{"UnknownWorkflow", jobs.ListFilter{AllOwners: true, Workflow: "nope"}, nil},
			// Bounds in zones other than UTC: the same instants must select the same jobs.
			{"CreatedAfterInclusive", jobs.ListFilter{AllOwners: true, CreatedAfter: jobAt.Add(3 * time.Second).In(zoneHST)}, ids(j7, j6, j5, j4, j3)},
			{"CreatedAfterMicrosecond", jobs.ListFilter{AllOwners: true, CreatedAfter: jobAt.Add(5*time.Second + time.Microsecond).In(zoneIST)}, ids(j7)},
			{"CreatedBeforeExclusive", jobs.ListFilter{AllOwners: true, CreatedBefore: jobAt.Add(3 * time.Second).In(zoneIST)}, ids(j2, j1, j0)},
			{"CreatedBetween", jobs.ListFilter{AllOwners: true, CreatedAfter: jobAt.Add(2 * time.Second).In(zoneHST), CreatedBefore: jobAt.Add(5 * time.Second).UTC()}, ids(j5, j4, j3, j2)},
			{"Everything", jobs.ListFilter{OwnerID: ann, Status: jobs.StatusQueued, Workflow: "w1", CreatedAfter: jobAt.Add(time.Second), CreatedBefore: jobAt.Add(5 * time.Second)}, ids(j3, j1)},
			{"Limit", jobs.ListFilter{AllOwners: true, Limit: 3}, ids(j7, j6, j5)},
			{"LimitOne", jobs.ListFilter{OwnerID: bob, Limit: 1}, ids(j6)},
			// The cursor is the last job of a page, here given in another zone.
			{"CursorInTie", jobs.ListFilter{AllOwners: true, CursorCreatedAt: j4.CreatedAt.In(zoneHST), CursorID: j4.ID}, ids(j3, j2, j1, j0)},
			{"CursorBeforeTie", jobs.ListFilter{AllOwners: true, CursorCreatedAt: j5.CreatedAt, CursorID: j5.ID, Limit: 2}, ids(j4, j3)},
			{"CursorOwner", jobs.ListFilter{OwnerID: ann, CursorCreatedAt: j7.CreatedAt.UTC(), CursorID: j7.ID}, ids(j5, j3, j2, j1)},
			{"CursorLast", jobs.ListFilter{AllOwners: true, CursorCreatedAt: j0.CreatedAt, CursorID: j0.ID}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, _, err := s.ListJobs(ctx, tc.f)
				if err != nil {
					t.Fatalf("ListJobs: %v", err)
				}
				if !slices.Equal(jobIDs(got), tc.want) {
					t.Fatalf("ListJobs(%+v) = %q, want %q", tc.f, jobIDs(got), tc.want)
				}
			})
		}

		got, _, err := s.ListJobs(ctx, jobs.ListFilter{OwnerID: ann, Status: jobs.StatusScheduled})
		if err != nil || len(got) != 1 {
			t.Fatalf("ListJobs of j5: %d jobs, err %v; want 1", len(got), err)
		}
		checkJob(t, "ListJobs", got[0], j5)
	})

	t.Run("ListJobsDefaultLimit", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		var want []string
		for i := range 51 {
			j := insertJob(t, s, jobAtOffset("usr_many", fmt.Sprintf("job_%03d", i), time.Duration(i)*time.Millisecond))
			want = append(want, j.ID)
		}
		slices.Reverse(want)
		got, more, err := s.ListJobs(ctx, jobs.ListFilter{OwnerID: "usr_many"})
		if err != nil {
			t.Fatalf("ListJobs: %v", err)
		}
		if !more {
			t.Errorf("ListJobs of 50 of 51 jobs: more = false, want true")
		}
		if !slices.Equal(jobIDs(got), want[:50]) {
			t.Errorf("ListJobs without a limit = %q, want the newest 50 %q", jobIDs(got), want[:50])
		}
	})

	t.Run("ListJobsCursorWalk", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		const owner = "usr_walk"
		// Pairs share an instant, so that pages end inside ties: newest first, the
		// order is c09, c08, …, c00.
		var want []string
		var originals []jobs.Job
		for i := range 10 {
			j := jobAtOffset(owner, fmt.Sprintf("job_c%02d", i), time.Duration(i/2)*time.Second)
			originals = append(originals, j)
			want = append(want, j.ID)
		}
		slices.Reverse(want)
		for _, i := range []int{4, 9, 0, 6, 2, 7, 1, 5, 8, 3} {
			insertJob(t, s, originals[i])
		}
		// Another owner's jobs in between must not show.
		insertJob(t, s, jobAtOffset("usr_else", "job_c05x", 2*time.Second))

		var seen []string
		f := jobs.ListFilter{OwnerID: owner, Limit: 3}
		for page := 0; ; page++ {
			if page > 10 {
				t.Fatalf("still walking after %d pages: %q", page, seen)
			}
			got, more, err := s.ListJobs(ctx, f)
			if err != nil {
				t.Fatalf("ListJobs page %d: %v", page, err)
			}
			if len(got) > 3 || more != (len(got) == 3 && page < 3) {
				t.Fatalf("ListJobs page %d has %d jobs, more = %v; want 3 and more on pages 0-2, 1 and no more on page 3", page, len(got), more)
			}
			seen = append(seen, jobIDs(got)...)
			if !more {
				break
			}
			last := got[len(got)-1]
			// Jobs that arrive while the client pages are newer than its cursor:
			// one at the cursor's instant with a higher id, and one later.
			insertJob(t, s, jobAtOffset(owner, fmt.Sprintf("job_z%02d", page), last.CreatedAt.Sub(jobAt)))
			insertJob(t, s, jobAtOffset(owner, levqor.NewID("job"), time.Hour+time.Duration(page)*time.Second))
			f.CursorCreatedAt, f.CursorID = last.CreatedAt.In(zoneIST), last.ID
		}
		if !slices.Equal(seen, want) {
			t.Errorf("walk with page size 3 = %q, want each original once, in order: %q", seen, want)
		}
	})

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

	t.Run("QueueStats", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		st, err := s.QueueStats(ctx)
		if err != nil {
			t.Fatalf("QueueStats of an empty store: %v", err)
		}
		if len(st.ByStatus) != 0 || st.OldestQueuedAt != nil {
			t.Errorf("QueueStats of an empty store = %v, oldest %v; want no counts, nil", st.ByStatus, st.OldestQueuedAt)
		}

		now := jobAt.Add(time.Hour)
		add := func(status string, priority int, created time.Duration) jobs.Job {
			j := jobAtOffset("usr_stats", levqor.NewID("job"), created)
			j.Status, j.Priority, j.RunAt = status, priority, now.Add(time.Hour)
			return insertJob(t, s, j)
		}
		// Older jobs that are not waiting: they must not count as the oldest queued.
		add(jobs.StatusSucceeded, jobs.PriorityNormal, -time.Hour)
		add(jobs.StatusFailed, jobs.PriorityNormal, -time.Hour)
		add(jobs.StatusCanceled, jobs.PriorityNormal, -30*time.Minute)
		running := add(jobs.StatusQueued, jobs.PriorityHigh, -10*time.Minute)
		oldest := add(jobs.StatusQueued, jobs.PriorityNormal, 2*time.Second)
		add(jobs.StatusQueued, jobs.PriorityNormal, 3*time.Second)
		add(jobs.StatusRetrying, jobs.PriorityNormal, 4*time.Second)
		add(jobs.StatusScheduled, jobs.PriorityNormal, 5*time.Second)
		add(jobs.StatusScheduled, jobs.PriorityNormal, 6*time.Second)
		if got := claimJobs(t, s, "tok_a", now.Add(time.Hour), now.Add(2*time.Hour), 1); !slices.Equal(jobIDs(got), []string{running.ID}) {
			t.Fatalf("ClaimJobs = %q, want [%s]", jobIDs(got), running.ID)
		}

		st, err = s.QueueStats(ctx)
		if err != nil {
			t.Fatalf("QueueStats: %v", err)
		}
		want := map[string]int64{
			jobs.StatusQueued: 2, jobs.StatusRetrying: 1, jobs.StatusScheduled: 2, jobs.StatusRunning: 1,
			jobs.StatusSucceeded: 1, jobs.StatusFailed: 1, jobs.StatusCanceled: 1,
		}
		if !reflect.DeepEqual(st.ByStatus, want) {
			t.Errorf("QueueStats.ByStatus = %v, want %v", st.ByStatus, want)
		}
		checkTime(t, "QueueStats", "OldestQueuedAt", st.OldestQueuedAt, &oldest.CreatedAt)
	})

	t.Run("Callbacks", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		now := jobAt.Add(time.Minute)
		var ids []string
		for i := range 3 {
			j := jobAtOffset("usr_hooks", fmt.Sprintf("job_h%d", i), 0)
			j.CallbackURL = fmt.Sprintf("https://hooks.example.com/%d", i)
			insertJob(t, s, j)
			ids = append(ids, j.ID)
		}
		silent := jobAtOffset("usr_hooks", "job_silent", 0)
		silent.CallbackURL = ""
		insertJob(t, s, silent)
		if got := claimJobs(t, s, "tok_a", now, now.Add(time.Minute), 10); len(got) != 4 {
			t.Fatalf("ClaimJobs = %q, want 4 jobs", jobIDs(got))
		}
		end := now.Add(time.Second)
		var fs []jobs.Finish
		for _, id := range append(slices.Clone(ids), silent.ID) {
			fs = append(fs, jobs.Finish{ID: id, LeaseToken: "tok_a", Status: jobs.StatusSucceeded, Result: json.RawMessage(`{}`), FinishedAt: &end})
		}
		if n := finishJobs(t, s, end, fs...); n != 4 {
			t.Fatalf("FinishJobs applied %d, want 4", n)
		}

		if got := claimCallbacks(t, s, end.Add(-time.Microsecond), end.Add(time.Minute), 10); len(got) != 0 {
			t.Errorf("ClaimCallbacks before they are due = %q, want none", jobIDs(got))
		}
		if got := claimCallbacks(t, s, end, end.Add(time.Minute), 0); len(got) != 0 {
			t.Errorf("ClaimCallbacks with limit 0 = %q, want none", jobIDs(got))
		}
		lease1 := end.Add(30 * time.Second)
		first := claimCallbacks(t, s, end, lease1, 2)
		if len(first) != 2 {
			t.Fatalf("ClaimCallbacks with limit 2 = %q, want 2 jobs", jobIDs(first))
		}
		// The claimed two are leased: a second dispatcher gets only the third.
		rest := claimCallbacks(t, s, end.Add(time.Second), end.Add(90*time.Second), 10)
		if got, want := sortedJobIDs(append(slices.Clone(first), rest...)), sortedIDs(ids...); len(rest) != 1 || !slices.Equal(got, want) {
			t.Fatalf("ClaimCallbacks while two are leased = %q (first %q), want the third of %q", jobIDs(rest), jobIDs(first), ids)
		}
		// A dispatcher that died: its lease runs out and the deliveries are due again.
		again := claimCallbacks(t, s, lease1, lease1.Add(time.Minute), 10)
		if got, want := sortedJobIDs(again), sortedJobIDs(first); !slices.Equal(got, want) {
			t.Errorf("ClaimCallbacks after the lease ran out = %q, want %q", got, want)
		}

		retryAt := end.Add(10 * time.Minute).In(zoneHST)
		tries := []jobs.CallbackAttempt{{Attempt: 1, At: end.Add(2 * time.Second).UTC(), Error: "connection refused"}}
		if err := s.RecordCallback(ctx, ids[0], tries, jobs.CallbackPending, &retryAt, end.Add(3*time.Second)); err != nil {
			t.Fatalf("RecordCallback (pending): %v", err)
		}
		delivered := []jobs.CallbackAttempt{{Attempt: 1, At: end.Add(2 * time.Second).UTC(), StatusCode: 200}}
		if err := s.RecordCallback(ctx, ids[1], delivered, jobs.CallbackDelivered, nil, end.Add(3*time.Second)); err != nil {
			t.Fatalf("RecordCallback (delivered): %v", err)
		}
		gaveUp := []jobs.CallbackAttempt{
			{Attempt: 1, At: end.Add(2 * time.Second).UTC(), StatusCode: 500},
			{Attempt: 2, At: end.Add(4 * time.Second).UTC(), StatusCode: 410, Error: "Gone"},
		}
		if err := s.RecordCallback(ctx, ids[2], gaveUp, jobs.CallbackFailed, nil, end.Add(5*time.Second)); err != nil {
			t.Fatalf("RecordCallback (failed): %v", err)
		}
		for _, tc := range []struct {
			id    string
			state string
			tries []jobs.CallbackAttempt
		}{
			{ids[0], jobs.CallbackPending, tries}, {ids[1], jobs.CallbackDelivered, delivered}, {ids[2], jobs.CallbackFailed, gaveUp},
		} {
			j := getJob(t, s, tc.id)
			if j.CallbackState != tc.state {
				t.Errorf("job %s: CallbackState = %q, want %q", tc.id, j.CallbackState, tc.state)
			}
			checkArray(t, "job "+tc.id, "Callbacks", j.Callbacks, tc.tries)
		}

		if got := claimCallbacks(t, s, retryAt.Add(-time.Second), retryAt.Add(time.Hour), 10); len(got) != 0 {
			t.Errorf("ClaimCallbacks before the retry is due = %q, want none", jobIDs(got))
		}
		if got := claimCallbacks(t, s, retryAt.Add(time.Hour), retryAt.Add(2*time.Hour), 10); !slices.Equal(jobIDs(got), []string{ids[0]}) {
			t.Errorf("ClaimCallbacks when the retry is due = %q, want [%s]", jobIDs(got), ids[0])
		}
	})

	t.Run("Workflows", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		const ann, bob = "usr_ann", "usr_bob"
		created := jobAt
		put := func(w jobs.Workflow) jobs.Workflow {
			t.Helper()
			got, err := s.PutWorkflow(ctx, w)
			if err != nil {
				t.Fatalf("PutWorkflow(%s, %s): %v", w.OwnerID, w.Name, err)
			}
			return got
		}
		check := func(what string, got, want jobs.Workflow) {
			t.Helper()
			if got.OwnerID != want.OwnerID || got.Name != want.Name || got.Description != want.Description {
				t.Errorf("%s: %s/%s %q, want %s/%s %q", what, got.OwnerID, got.Name, got.Description, want.OwnerID, want.Name, want.Description)
			}
			checkArray(t, what, "Steps", got.Steps, want.Steps)
			checkTime(t, what, "CreatedAt", &got.CreatedAt, &want.CreatedAt)
			checkTime(t, what, "UpdatedAt", &got.UpdatedAt, &want.UpdatedAt)
		}
		steps := []jobs.Step{
			{ID: "fetch", Connector: "http", Action: "get", Input: json.RawMessage(`{"url": "{{payload.url}}"}`)},
			{ID: "log", Connector: "log", Action: "write"},
		}
		sync1 := jobs.Workflow{OwnerID: ann, Name: "sync", Description: "Nightly sync — v1", Steps: steps, CreatedAt: created, UpdatedAt: created}
		check("PutWorkflow", put(sync1), sync1)
		got, err := s.GetWorkflow(ctx, ann, "sync")
		if err != nil {
			t.Fatalf("GetWorkflow: %v", err)
		}
		check("GetWorkflow", got, sync1)

		// Replacing keeps the creation time.
		replaced := created.Add(time.Hour + time.Microsecond)
		sync2 := jobs.Workflow{OwnerID: ann, Name: "sync", Description: "v2", Steps: steps[:1], CreatedAt: replaced, UpdatedAt: replaced}
		want2 := sync2
		want2.CreatedAt = created
		check("PutWorkflow replacing", put(sync2), want2)
		got, err = s.GetWorkflow(ctx, ann, "sync")
		if err != nil {
			t.Fatalf("GetWorkflow after replacing: %v", err)
		}
		check("GetWorkflow after replacing", got, want2)

		zeta := jobs.Workflow{OwnerID: ann, Name: "zeta", Steps: steps, CreatedAt: created, UpdatedAt: created}
		alpha := jobs.Workflow{OwnerID: ann, Name: "alpha", Steps: steps[1:], CreatedAt: created, UpdatedAt: created}
		bobs := jobs.Workflow{OwnerID: bob, Name: "sync", Description: "Bob's", Steps: steps[1:], CreatedAt: created, UpdatedAt: created}
		for _, w := range []jobs.Workflow{zeta, alpha, bobs} {
			put(w)
		}
		for _, tc := range []struct {
			owner string
			want  []jobs.Workflow
		}{
			{ann, []jobs.Workflow{alpha, want2, zeta}},
			{bob, []jobs.Workflow{bobs}},
			{"usr_nobody", nil},
		} {
			list, err := s.ListWorkflows(ctx, tc.owner)
			if err != nil {
				t.Fatalf("ListWorkflows(%s): %v", tc.owner, err)
			}
			if len(list) != len(tc.want) {
				t.Errorf("ListWorkflows(%s) has %d workflows, want %d", tc.owner, len(list), len(tc.want))
				continue
			}
			for i := range list {
				check("ListWorkflows("+tc.owner+")", list[i], tc.want[i])
			}
		}

		if err := s.DeleteWorkflow(ctx, ann, "sync"); err != nil {
			t.Fatalf("DeleteWorkflow: %v", err)
		}
		_, err = s.GetWorkflow(ctx, ann, "sync")
		checkNotFound(t, "GetWorkflow after DeleteWorkflow", err)
		checkNotFound(t, "DeleteWorkflow again", s.DeleteWorkflow(ctx, ann, "sync"))
		checkNotFound(t, "DeleteWorkflow of an unknown owner", s.DeleteWorkflow(ctx, "usr_nobody", "zeta"))
		_, err = s.GetWorkflow(ctx, "usr_nobody", "zeta")
		checkNotFound(t, "GetWorkflow of another owner's name", err)
		got, err = s.GetWorkflow(ctx, bob, "sync")
		if err != nil {
			t.Fatalf("GetWorkflow of another owner's workflow of the deleted name: %v", err)
		}
		check("another owner's workflow after DeleteWorkflow", got, bobs)
	})

	t.Run("WebhookSecret", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		get := func(owner, fresh string, at time.Time) jobs.WebhookSecret {
			t.Helper()
			got, err := s.WebhookSecret(ctx, owner, jobs.WebhookSecret{OwnerID: owner, Secret: fresh, CreatedAt: at})
			if err != nil {
				t.Fatalf("WebhookSecret(%s): %v", owner, err)
			}
			return got
		}
		check := func(what string, got jobs.WebhookSecret, owner, secret string, at time.Time) {
			t.Helper()
			if got.OwnerID != owner || got.Secret != secret {
				t.Errorf("%s: %s %q, want %s %q", what, got.OwnerID, got.Secret, owner, secret)
			}
			checkTime(t, what, "CreatedAt", &got.CreatedAt, &at)
		}
		t0 := jobAt
		check("WebhookSecret creating", get("usr_ann", "whsec_1", t0), "usr_ann", "whsec_1", t0)
		check("WebhookSecret again", get("usr_ann", "whsec_2", t0.Add(time.Hour)), "usr_ann", "whsec_1", t0)
		check("WebhookSecret of another owner", get("usr_bob", "whsec_b", t0.Add(time.Minute)), "usr_bob", "whsec_b", t0.Add(time.Minute))

		t1 := t0.Add(24*time.Hour + time.Microsecond)
		put, err := s.PutWebhookSecret(ctx, jobs.WebhookSecret{OwnerID: "usr_ann", Secret: "whsec_3", CreatedAt: t1})
		if err != nil {
			t.Fatalf("PutWebhookSecret: %v", err)
		}
		check("PutWebhookSecret", put, "usr_ann", "whsec_3", t1)
		check("WebhookSecret after PutWebhookSecret", get("usr_ann", "whsec_4", t1.Add(time.Hour)), "usr_ann", "whsec_3", t1)
		check("another owner's after PutWebhookSecret", get("usr_bob", "whsec_5", t1), "usr_bob", "whsec_b", t0.Add(time.Minute))
		put, err = s.PutWebhookSecret(ctx, jobs.WebhookSecret{OwnerID: "usr_carol", Secret: "whsec_c", CreatedAt: t1})
		if err != nil {
			t.Fatalf("PutWebhookSecret of a new owner: %v", err)
		}
		check("PutWebhookSecret of a new owner", put, "usr_carol", "whsec_c", t1)
		check("WebhookSecret after PutWebhookSecret of a new owner", get("usr_carol", "whsec_6", t0), "usr_carol", "whsec_c", t1)

		// Concurrent first calls agree on one secret, for several owners at once so
		// that some calls find the row missing when they read but present when they insert.
		const owners, callers = 10, 20
		got := make([]jobs.WebhookSecret, owners*callers)
		errs := make([]error, owners*callers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range owners * callers {
			owner := fmt.Sprintf("usr_race%d", i%owners)
			wg.Go(func() {
				<-start
				got[i], errs[i] = s.WebhookSecret(ctx, owner, jobs.WebhookSecret{OwnerID: owner, Secret: fmt.Sprintf("whsec_r%d", i), CreatedAt: t0})
			})
		}
		close(start)
		wg.Wait()
		for i := range owners * callers {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			first := got[i%owners] // the first caller of the same owner
			if got[i].OwnerID != first.OwnerID || got[i].Secret != first.Secret || !strings.HasPrefix(got[i].Secret, "whsec_r") {
				t.Errorf("caller %d got %s %q, the first caller of its owner %s %q: want one of the fresh ones, the same for all", i, got[i].OwnerID, got[i].Secret, first.OwnerID, first.Secret)
			}
		}
		check("WebhookSecret after the race", get("usr_race0", "whsec_late", t1), "usr_race0", got[0].Secret, t0)
	})
}

// insertJobWant is what the store holds for a job just inserted from j.
func insertJobWant(j jobs.Job) jobs.Job {
	j.UpdatedAt = j.CreatedAt
	return j
}
