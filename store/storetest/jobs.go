package storetest

import (
	"encoding/json"
	"reflect"
	"slices"
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

// jobOf returns newJob(owner) with id, workflow and status, created at jobAt+d.
func jobOf(id, owner, workflow, status string, d time.Duration) jobs.Job {
	j := jobAtOffset(owner, id, d)
	j.Workflow, j.Status = workflow, status
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
		{"ReplayOf", got.ReplayOf, want.ReplayOf},
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
	if got.DryRun != want.DryRun {
		t.Errorf("%s: DryRun = %v, want %v", what, got.DryRun, want.DryRun)
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
	runJobsIntake(t, open)
	runJobsBatch(t, open)
	runJobsList(t, open)
	runJobsClaim(t, open)
	runJobsFinish(t, open)
	runJobsCancel(t, open)
	runJobsWaiting(t, open)
	runJobsWebhooks(t, open)
	runJobsWorkflows(t, open)
	runJobsReplays(t, open)
	runJobsHandover(t, open)
}

// insertJobWant is what the store holds for a job just inserted from j.
func insertJobWant(j jobs.Job) jobs.Job {
	j.UpdatedAt = j.CreatedAt
	return j
}
