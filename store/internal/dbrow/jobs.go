package dbrow

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store/storejson"
)

// DefaultJobsPage is ListJobs's page size when the filter sets none.
const DefaultJobsPage = 50

// ToJob converts a jobs row.
func ToJob(r Job) (jobs.Job, error) {
	steps, err := storejson.DecodeArray[jobs.StepState]([]byte(r.Steps))
	if err != nil {
		return jobs.Job{}, fmt.Errorf("job %s steps: %w", r.ID, err)
	}
	return withSteps(r, steps)
}

// withSteps converts a jobs row whose steps are already decoded.
func withSteps(r Job, steps []jobs.StepState) (jobs.Job, error) {
	callbacks, err := storejson.DecodeArray[jobs.CallbackAttempt]([]byte(r.Callbacks))
	if err != nil {
		return jobs.Job{}, fmt.Errorf("job %s callbacks: %w", r.ID, err)
	}
	var result json.RawMessage
	if r.Result.Valid {
		result = json.RawMessage(r.Result.String)
	}
	return jobs.Job{
		ID: r.ID, OwnerID: r.OwnerID, Workflow: r.Workflow, Status: r.Status, Priority: int(r.Priority),
		RunAt: r.RunAt.UTC(), Attempts: int(r.Attempts), MaxAttempts: int(r.MaxAttempts), TimeoutS: int(r.TimeoutS),
		Payload: json.RawMessage(r.Payload), Steps: steps, Result: result,
		ErrorCode: r.ErrorCode, ErrorMessage: r.ErrorMessage, Guardrails: json.RawMessage(r.Guardrails),
		CallbackURL: r.CallbackUrl, Callbacks: callbacks, CallbackState: r.CallbackState,
		LeaseToken: r.LeaseToken, LeaseExpiresAt: TimePtr(r.LeaseExpiresAt), CancelRequested: r.CancelRequested != 0,
		IdemScope: r.IdemScope.String, IdemKey: r.IdemKey.String, IdemHash: r.IdemHash.String,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		StartedAt: TimePtr(r.StartedAt), FinishedAt: TimePtr(r.FinishedAt),
		Rescues: int(r.Rescues), StoredBytes: r.InputBytes + r.StepsBytes,
		DryRun: r.DryRun != 0, ReplayOf: r.ReplayOf.String,
	}, nil
}

// ToJobs converts jobs rows of either engine; as turns an engine's row into a Job.
func ToJobs[R any](rows []R, as func(R) Job) ([]jobs.Job, error) {
	out := make([]jobs.Job, len(rows))
	for i, r := range rows {
		j, err := ToJob(as(r))
		if err != nil {
			return nil, err
		}
		out[i] = j
	}
	return out, nil
}

// ByClaimOrder orders claimed jobs as the claim chose them; RETURNING keeps no order.
func ByClaimOrder(a, b jobs.Job) int {
	if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
		return c
	}
	if c := a.RunAt.Compare(b.RunAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// InsertJob is the InsertJob parameters of j.
func InsertJob(j jobs.Job) (InsertJobParams, error) {
	payload, err := storejson.EncodeRawObject(j.Payload)
	if err != nil {
		return InsertJobParams{}, fmt.Errorf("payload: %w", err)
	}
	guardrails, err := storejson.EncodeRawObject(j.Guardrails)
	if err != nil {
		return InsertJobParams{}, fmt.Errorf("guardrails: %w", err)
	}
	steps, err := storejson.EncodeArray(j.Steps)
	if err != nil {
		return InsertJobParams{}, fmt.Errorf("steps: %w", err)
	}
	// A job is stored to run, without a result or times, except a dry run: it is
	// stored finished (jobs.Job.DryRun).
	var result []byte
	var dryRun int64
	var started, finished *time.Time
	if j.DryRun {
		if result, err = storejson.EncodeRaw(j.Result); err != nil {
			return InsertJobParams{}, fmt.Errorf("result: %w", err)
		}
		dryRun, started, finished = 1, j.StartedAt, j.FinishedAt
	}
	if j.LeaseToken != "" { // handed over to a worker at intake: stored running under its lease
		started = j.StartedAt
	}
	return InsertJobParams{
		ID: j.ID, OwnerID: j.OwnerID, Workflow: j.Workflow, Status: j.Status, Priority: int64(j.Priority),
		RunAt: j.RunAt.UTC(), MaxAttempts: int64(j.MaxAttempts), TimeoutS: int64(j.TimeoutS),
		Payload: string(payload), Steps: string(steps), Guardrails: string(guardrails), CallbackUrl: j.CallbackURL,
		IdemScope: EmptyAsNull(j.IdemScope), IdemKey: EmptyAsNull(j.IdemKey), IdemHash: EmptyAsNull(j.IdemHash),
		CreatedAt: j.CreatedAt.UTC(), InputBytes: int64(len(payload) + len(guardrails)), StepsBytes: int64(len(steps) + len(result)),
		Result: NullJSON(result), StartedAt: NullTime(started), FinishedAt: NullTime(finished),
		DryRun: dryRun, ReplayOf: EmptyAsNull(j.ReplayOf),
		Attempts: int64(j.Attempts), LeaseToken: j.LeaseToken, LeaseExpiresAt: NullTime(j.LeaseExpiresAt),
	}, nil
}

// InsertedAs is the job that InsertJob (sql/shared/queries/jobs.sql) stores from
// p = InsertJob(j), converted with j's steps (a copy of the slice) instead of
// decoding the JSON that InsertJob just encoded from them. It is what reading the
// row back returns on SQLite, which keeps text and times (at nanoseconds) as bound,
// but for the JSON within the steps: as given, rather than compacted and
// HTML-escaped. The conformance suite compares it with GetJob.
func InsertedAs(j jobs.Job, p InsertJobParams) (jobs.Job, error) {
	return withSteps(insertedRow(p), slices.Clone(j.Steps))
}

// insertedRow is the row InsertJob stores from p: its parameters, updated_at as
// created_at, and the defaults of the columns it does not set (sql/sqlite/migrations).
func insertedRow(p InsertJobParams) Job {
	return Job{
		ID: p.ID, OwnerID: p.OwnerID, Workflow: p.Workflow, Status: p.Status, Priority: p.Priority, RunAt: p.RunAt,
		Attempts: p.Attempts, MaxAttempts: p.MaxAttempts, TimeoutS: p.TimeoutS, Payload: p.Payload, Steps: p.Steps,
		Result: p.Result, Guardrails: p.Guardrails, CallbackUrl: p.CallbackUrl, Callbacks: "[]",
		LeaseToken: p.LeaseToken, LeaseExpiresAt: p.LeaseExpiresAt,
		IdemScope: p.IdemScope, IdemKey: p.IdemKey, IdemHash: p.IdemHash,
		CreatedAt: p.CreatedAt, UpdatedAt: p.CreatedAt, StartedAt: p.StartedAt, FinishedAt: p.FinishedAt,
		InputBytes: p.InputBytes, StepsBytes: p.StepsBytes, DryRun: p.DryRun, ReplayOf: p.ReplayOf,
	}
}

// OldestDue is QueueStats' OldestDueAt: the earliest run_at among the heads of
// the priorities' due jobs, each read by head (OldestDueJob, one index seek);
// noRows tells the engine's "no row" error. Nil when no job is due.
func OldestDue(head func(priority int64) (time.Time, error), noRows func(error) bool) (*time.Time, error) {
	var oldest *time.Time
	for _, prio := range []int64{jobs.PriorityHigh, jobs.PriorityNormal, jobs.PriorityLow} {
		at, err := head(prio)
		switch {
		case noRows(err):
		case err != nil:
			return nil, fmt.Errorf("oldest due job: %w", err)
		case oldest == nil || at.Before(*oldest):
			at = at.UTC()
			oldest = &at
		}
	}
	return oldest, nil
}

// ListJobs fills the open ends of f with times no job has, so that one query
// serves every filter: a cursor at the far end with id "" starts at the newest job.
func ListJobs(f jobs.ListFilter) ListJobsParams {
	farPast := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	farFuture := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	p := ListJobsParams{
		AllOwners: f.AllOwners, OwnerID: f.OwnerID, Status: f.Status, Workflow: f.Workflow,
		CreatedAfter: farPast, CreatedBefore: farFuture, CursorCreatedAt: farFuture, PageRows: DefaultJobsPage,
		MaxBytes: jobs.MaxListPageBytes,
	}
	// Times are compared as text on SQLite: every bound must be in UTC like the column.
	if !f.CreatedAfter.IsZero() {
		p.CreatedAfter = f.CreatedAfter.UTC()
	}
	if !f.CreatedBefore.IsZero() {
		p.CreatedBefore = f.CreatedBefore.UTC()
	}
	if !f.CursorCreatedAt.IsZero() {
		p.CursorCreatedAt, p.CursorID = f.CursorCreatedAt.UTC(), f.CursorID
	}
	if f.Limit > 0 {
		p.PageRows = int64(f.Limit)
	}
	p.PeekRows = p.PageRows + 1 // one more tells whether a next page exists
	if f.MaxBytes > 0 {
		p.MaxBytes = f.MaxBytes
	}
	return p
}

// ListReplayCandidates is the ListReplayCandidates parameters of f (its bounds as ListJobs fills them).
func ListReplayCandidates(f jobs.ListFilter) ListReplayCandidatesParams {
	p := ListJobs(f)
	return ListReplayCandidatesParams{AllOwners: p.AllOwners, OwnerID: p.OwnerID, Status: p.Status, Workflow: p.Workflow,
		CreatedAfter: p.CreatedAfter, CreatedBefore: p.CreatedBefore, MaxRows: p.PageRows}
}

// FinishJob is the FinishJob parameters of f, finished at now.
func FinishJob(f jobs.Finish, now time.Time) (FinishJobParams, error) {
	steps, err := storejson.EncodeArray(f.Steps)
	if err != nil {
		return FinishJobParams{}, fmt.Errorf("job %s steps: %w", f.ID, err)
	}
	result, err := storejson.EncodeRaw(f.Result)
	if err != nil {
		return FinishJobParams{}, fmt.Errorf("job %s result: %w", f.ID, err)
	}
	runAt := f.RunAt
	if runAt.IsZero() { // a terminal status needs no next run
		runAt = now
	}
	var back int64
	if f.Status == jobs.StatusWaiting || f.GiveBackAttempt {
		back = 1
	}
	return FinishJobParams{
		Status: f.Status, AttemptBack: back, Steps: string(steps), Result: NullJSON(result),
		ErrorCode: f.ErrorCode, ErrorMessage: f.ErrorMessage, RunAt: runAt.UTC(), Now: now.UTC(),
		FinishedAt: NullTime(f.FinishedAt), ID: f.ID, LeaseToken: f.LeaseToken, StepsBytes: int64(len(steps) + len(result)),
	}, nil
}

// ToWorkflow converts a workflows row.
func ToWorkflow(r Workflow) (jobs.Workflow, error) {
	steps, err := storejson.DecodeArray[jobs.Step]([]byte(r.Steps))
	if err != nil {
		return jobs.Workflow{}, fmt.Errorf("workflow %s steps: %w", r.Name, err)
	}
	return jobs.Workflow{
		OwnerID: r.OwnerID, Name: r.Name, Description: r.Description, Steps: steps,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}, nil
}

// PutWorkflow is the PutWorkflow parameters of w: a new workflow is created at
// w.UpdatedAt; a replaced one keeps its creation time.
func PutWorkflow(w jobs.Workflow) (PutWorkflowParams, error) {
	steps, err := storejson.EncodeArray(w.Steps)
	if err != nil {
		return PutWorkflowParams{}, fmt.Errorf("workflow %s steps: %w", w.Name, err)
	}
	return PutWorkflowParams{
		OwnerID: w.OwnerID, Name: w.Name, Description: w.Description, Steps: string(steps), Now: w.UpdatedAt.UTC(),
	}, nil
}

// ToWebhookSecret converts a webhook_secrets row.
func ToWebhookSecret(r WebhookSecret) jobs.WebhookSecret {
	return jobs.WebhookSecret{OwnerID: r.OwnerID, Secret: r.Secret, Sealed: r.Sealed, CreatedAt: r.CreatedAt.UTC()}
}

// CanceledSteps returns the steps of a job CancelQueued canceled, encoded, when it
// had waiting steps (now canceled, jobs.EndWaits); ok is false when none waited.
func CanceledSteps(j jobs.Job, now time.Time) (steps string, ok bool, err error) {
	if !jobs.EndWaits(j.Steps, now, jobs.StepError{Code: "canceled", Message: "Canceled by request."}) {
		return "", false, nil
	}
	b, err := storejson.EncodeArray(j.Steps)
	if err != nil {
		return "", false, fmt.Errorf("job %s steps: %w", j.ID, err)
	}
	return string(b), true, nil
}
