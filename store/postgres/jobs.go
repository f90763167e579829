package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/pgdb"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store/storejson"
)

var _ jobs.Store = (*DB)(nil)

// defaultJobsPage is ListJobs's page size when the filter sets none.
const defaultJobsPage = 50

// emptyAsNull stores "" as NULL, so that jobs without an idempotency key never collide.
func emptyAsNull(s string) pgtype.Text {
	return pgtype.Text{String: s, Valid: s != ""}
}

func toJob(r pgdb.Job) (jobs.Job, error) {
	steps, err := storejson.DecodeArray[jobs.StepState](r.Steps)
	if err != nil {
		return jobs.Job{}, fmt.Errorf("job %s steps: %w", r.ID, err)
	}
	callbacks, err := storejson.DecodeArray[jobs.CallbackAttempt](r.Callbacks)
	if err != nil {
		return jobs.Job{}, fmt.Errorf("job %s callbacks: %w", r.ID, err)
	}
	return jobs.Job{
		ID: r.ID, OwnerID: r.OwnerID, Workflow: r.Workflow, Status: r.Status, Priority: int(r.Priority),
		RunAt: r.RunAt.UTC(), Attempts: int(r.Attempts), MaxAttempts: int(r.MaxAttempts), TimeoutS: int(r.TimeoutS),
		Payload: json.RawMessage(r.Payload), Steps: steps, Result: json.RawMessage(r.Result),
		ErrorCode: r.ErrorCode, ErrorMessage: r.ErrorMessage, Guardrails: json.RawMessage(r.Guardrails),
		CallbackURL: r.CallbackUrl, Callbacks: callbacks, CallbackState: r.CallbackState,
		LeaseToken: r.LeaseToken, LeaseExpiresAt: utcPtr(r.LeaseExpiresAt), CancelRequested: r.CancelRequested != 0,
		IdemScope: r.IdemScope.String, IdemKey: r.IdemKey.String, IdemHash: r.IdemHash.String,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		StartedAt: utcPtr(r.StartedAt), FinishedAt: utcPtr(r.FinishedAt),
		Rescues: int(r.Rescues), StoredBytes: r.InputBytes + r.StepsBytes,
	}, nil
}

func toJobs(rows []pgdb.Job) ([]jobs.Job, error) {
	out := make([]jobs.Job, len(rows))
	for i, r := range rows {
		j, err := toJob(r)
		if err != nil {
			return nil, err
		}
		out[i] = j
	}
	return out, nil
}

// byClaimOrder orders claimed jobs as the claim chose them; RETURNING keeps no order.
func byClaimOrder(a, b jobs.Job) int {
	if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
		return c
	}
	if c := a.RunAt.Compare(b.RunAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

func insertJobParams(j jobs.Job) (pgdb.InsertJobParams, error) {
	payload, err := storejson.EncodeRawObject(j.Payload)
	if err != nil {
		return pgdb.InsertJobParams{}, fmt.Errorf("payload: %w", err)
	}
	guardrails, err := storejson.EncodeRawObject(j.Guardrails)
	if err != nil {
		return pgdb.InsertJobParams{}, fmt.Errorf("guardrails: %w", err)
	}
	steps, err := storejson.EncodeArray(j.Steps)
	if err != nil {
		return pgdb.InsertJobParams{}, fmt.Errorf("steps: %w", err)
	}
	return pgdb.InsertJobParams{
		ID: j.ID, OwnerID: j.OwnerID, Workflow: j.Workflow, Status: j.Status, Priority: int32(j.Priority),
		RunAt: j.RunAt.UTC(), MaxAttempts: int32(j.MaxAttempts), TimeoutS: int32(j.TimeoutS),
		Payload: payload, Steps: steps, Guardrails: guardrails, CallbackUrl: j.CallbackURL,
		IdemScope: emptyAsNull(j.IdemScope), IdemKey: emptyAsNull(j.IdemKey), IdemHash: emptyAsNull(j.IdemHash),
		CreatedAt: j.CreatedAt.UTC(), InputBytes: int64(len(payload) + len(guardrails)), StepsBytes: int64(len(steps)),
	}, nil
}

// listJobsParams fills the open ends of f with times no job has, so that one query
// serves every filter: a cursor at the far end with id "" starts at the newest job.
func listJobsParams(f jobs.ListFilter) pgdb.ListJobsParams {
	farPast := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	farFuture := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	p := pgdb.ListJobsParams{
		AllOwners: f.AllOwners, OwnerID: f.OwnerID, Status: f.Status, Workflow: f.Workflow,
		CreatedAfter: farPast, CreatedBefore: farFuture, CursorCreatedAt: farFuture, PageRows: defaultJobsPage,
		MaxBytes: jobs.MaxListPageBytes,
	}
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
		p.PageRows = int32(f.Limit)
	}
	p.PeekRows = p.PageRows + 1 // one more tells whether a next page exists
	if f.MaxBytes > 0 {
		p.MaxBytes = f.MaxBytes
	}
	return p
}

func finishJobParams(f jobs.Finish, now time.Time) (pgdb.FinishJobParams, error) {
	steps, err := storejson.EncodeArray(f.Steps)
	if err != nil {
		return pgdb.FinishJobParams{}, fmt.Errorf("job %s steps: %w", f.ID, err)
	}
	result, err := storejson.EncodeRaw(f.Result)
	if err != nil {
		return pgdb.FinishJobParams{}, fmt.Errorf("job %s result: %w", f.ID, err)
	}
	runAt := f.RunAt
	if runAt.IsZero() { // a terminal status needs no next run
		runAt = now
	}
	return pgdb.FinishJobParams{
		Status: f.Status, Steps: steps, Result: result,
		ErrorCode: f.ErrorCode, ErrorMessage: f.ErrorMessage, RunAt: runAt.UTC(), Now: now.UTC(),
		FinishedAt: utcPtr(f.FinishedAt), ID: f.ID, LeaseToken: f.LeaseToken, StepsBytes: int64(len(steps) + len(result)),
	}, nil
}

// InsertJob implements jobs.Store.
func (db *DB) InsertJob(ctx context.Context, j jobs.Job) (jobs.Job, bool, error) {
	p, err := insertJobParams(j)
	if err != nil {
		return jobs.Job{}, false, fmt.Errorf("insert job: %w", err)
	}
	row, err := db.q.InsertJob(ctx, p)
	if errors.Is(err, pgx.ErrNoRows) {
		// The idempotency key is taken; read the winner.
		row, err = db.q.GetJobByIdempotencyKey(ctx, pgdb.GetJobByIdempotencyKeyParams{IdemScope: p.IdemScope, IdemKey: p.IdemKey})
		if err != nil {
			return jobs.Job{}, false, fmt.Errorf("get job by idempotency key: %w", err)
		}
		got, err := toJob(row)
		return got, false, err
	}
	if err != nil {
		return jobs.Job{}, false, fmt.Errorf("insert job: %w", err)
	}
	got, err := toJob(row)
	if err != nil {
		return jobs.Job{}, false, err
	}
	return got, true, nil
}

// GetJob implements jobs.Store.
func (db *DB) GetJob(ctx context.Context, id string) (jobs.Job, error) {
	row, err := db.q.GetJob(ctx, id)
	if err != nil {
		return jobs.Job{}, notFound(err, "Job")
	}
	return toJob(row)
}

// ListJobs implements jobs.Store. Only the rows of the page are read whole: the
// query sums the candidates' stored sizes first.
func (db *DB) ListJobs(ctx context.Context, f jobs.ListFilter) ([]jobs.Job, bool, error) {
	rows, err := db.q.ListJobs(ctx, listJobsParams(f))
	if err != nil {
		return nil, false, fmt.Errorf("list jobs: %w", err)
	}
	out := make([]jobs.Job, len(rows))
	for i, r := range rows {
		if out[i], err = toJob(r.Job); err != nil {
			return nil, false, err
		}
	}
	return out, len(rows) > 0 && rows[0].Matched > int64(len(rows)), nil
}

// ClaimJobs implements jobs.Store. FOR UPDATE SKIP LOCKED lets several instances claim
// at once without taking one job twice or waiting on each other.
func (db *DB) ClaimJobs(ctx context.Context, token string, now, leaseUntil time.Time, limit int) ([]jobs.Job, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := db.q.ClaimJobs(ctx, pgdb.ClaimJobsParams{
		LeaseToken: token, LeaseExpiresAt: utcPtr(&leaseUntil), Now: now.UTC(), MaxRows: int32(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("claim jobs: %w", err)
	}
	out, err := toJobs(rows)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, byClaimOrder)
	return out, nil
}

// ExtendLeases implements jobs.Store.
func (db *DB) ExtendLeases(ctx context.Context, token string, until time.Time) ([]string, error) {
	rows, err := db.q.ExtendLeases(ctx, pgdb.ExtendLeasesParams{LeaseExpiresAt: utcPtr(&until), LeaseToken: token})
	if err != nil {
		return nil, fmt.Errorf("extend leases: %w", err)
	}
	var cancel []string
	for _, r := range rows {
		if r.CancelRequested != 0 {
			cancel = append(cancel, r.ID)
		}
	}
	return cancel, nil
}

// SaveSteps implements jobs.Store.
func (db *DB) SaveSteps(ctx context.Context, id, token string, steps []jobs.StepState, now time.Time) (bool, error) {
	b, err := storejson.EncodeArray(steps)
	if err != nil {
		return false, fmt.Errorf("job %s steps: %w", id, err)
	}
	n, err := db.q.SaveSteps(ctx, pgdb.SaveStepsParams{Steps: b, StepsBytes: int64(len(b)), Now: now.UTC(), ID: id, LeaseToken: token})
	if err != nil {
		return false, fmt.Errorf("save steps: %w", err)
	}
	return n > 0, nil
}

// FinishJobs implements jobs.Store.
func (db *DB) FinishJobs(ctx context.Context, now time.Time, fs []jobs.Finish) (int, error) {
	if len(fs) == 0 {
		return 0, nil
	}
	// Encode first, so the transaction holds its row locks only for the updates.
	params := make([]pgdb.FinishJobParams, len(fs))
	for i, f := range fs {
		p, err := finishJobParams(f, now)
		if err != nil {
			return 0, fmt.Errorf("finish jobs: %w", err)
		}
		params[i] = p
	}
	applied := 0
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		q := db.q.WithTx(tx)
		for _, p := range params {
			n, err := q.FinishJob(ctx, p)
			if err != nil {
				return fmt.Errorf("finish job %s: %w", p.ID, err)
			}
			applied += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return applied, nil
}

// RescueExpired implements jobs.Store.
func (db *DB) RescueExpired(ctx context.Context, cutoff, now time.Time) (int, error) {
	rows, err := db.q.RescueExpired(ctx, pgdb.RescueExpiredParams{Cutoff: utcPtr(&cutoff), Now: now.UTC(), MaxRescues: jobs.MaxRescues})
	if err != nil {
		return 0, fmt.Errorf("rescue expired leases: %w", err)
	}
	return len(rows), nil
}

// CancelQueued implements jobs.Store.
func (db *DB) CancelQueued(ctx context.Context, id string, now time.Time) (jobs.Job, bool, error) {
	row, err := db.q.CancelQueuedJob(ctx, pgdb.CancelQueuedJobParams{Now: utcPtr(&now), ID: id})
	if errors.Is(err, pgx.ErrNoRows) {
		return jobs.Job{}, false, nil
	}
	if err != nil {
		return jobs.Job{}, false, fmt.Errorf("cancel job: %w", err)
	}
	got, err := toJob(row)
	if err != nil {
		return jobs.Job{}, false, err
	}
	return got, true, nil
}

// RequestCancel implements jobs.Store.
func (db *DB) RequestCancel(ctx context.Context, id string, now time.Time) (jobs.Job, bool, error) {
	row, err := db.q.RequestCancel(ctx, pgdb.RequestCancelParams{Now: now.UTC(), ID: id})
	if errors.Is(err, pgx.ErrNoRows) {
		return jobs.Job{}, false, nil
	}
	if err != nil {
		return jobs.Job{}, false, fmt.Errorf("request cancel: %w", err)
	}
	got, err := toJob(row)
	if err != nil {
		return jobs.Job{}, false, err
	}
	return got, true, nil
}

// QueueStats implements jobs.Store.
func (db *DB) QueueStats(ctx context.Context) (jobs.QueueStats, error) {
	rows, err := db.q.CountJobsByStatus(ctx)
	if err != nil {
		return jobs.QueueStats{}, fmt.Errorf("count jobs: %w", err)
	}
	st := jobs.QueueStats{ByStatus: make(map[string]int64, len(rows))}
	for _, r := range rows {
		st.ByStatus[r.Status] = r.N
	}
	oldest, err := db.q.OldestQueuedJob(ctx)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return jobs.QueueStats{}, fmt.Errorf("oldest queued job: %w", err)
	default:
		oldest = oldest.UTC()
		st.OldestQueuedAt = &oldest
	}
	return st, nil
}

// ClaimCallbacks implements jobs.Store.
func (db *DB) ClaimCallbacks(ctx context.Context, now, leaseUntil time.Time, limit int) ([]jobs.Job, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := db.q.ClaimCallbacks(ctx, pgdb.ClaimCallbacksParams{
		LeaseUntil: utcPtr(&leaseUntil), Now: utcPtr(&now), MaxRows: int32(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("claim callbacks: %w", err)
	}
	return toJobs(rows)
}

// RecordCallback implements jobs.Store.
func (db *DB) RecordCallback(ctx context.Context, id string, attempts []jobs.CallbackAttempt, state string, next *time.Time, now time.Time) error {
	b, err := storejson.EncodeArray(attempts)
	if err != nil {
		return fmt.Errorf("job %s callbacks: %w", id, err)
	}
	err = db.q.RecordCallback(ctx, pgdb.RecordCallbackParams{
		Callbacks: b, CallbackState: state, NextAt: utcPtr(next), Now: now.UTC(), ID: id,
	})
	if err != nil {
		return fmt.Errorf("record callback: %w", err)
	}
	return nil
}

func toWorkflow(r pgdb.Workflow) (jobs.Workflow, error) {
	steps, err := storejson.DecodeArray[jobs.Step](r.Steps)
	if err != nil {
		return jobs.Workflow{}, fmt.Errorf("workflow %s steps: %w", r.Name, err)
	}
	return jobs.Workflow{
		OwnerID: r.OwnerID, Name: r.Name, Description: r.Description, Steps: steps,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}, nil
}

// PutWorkflow implements jobs.Store. A new workflow is created at w.UpdatedAt; a
// replaced one keeps its creation time.
func (db *DB) PutWorkflow(ctx context.Context, w jobs.Workflow) (jobs.Workflow, error) {
	steps, err := storejson.EncodeArray(w.Steps)
	if err != nil {
		return jobs.Workflow{}, fmt.Errorf("workflow %s steps: %w", w.Name, err)
	}
	row, err := db.q.PutWorkflow(ctx, pgdb.PutWorkflowParams{
		OwnerID: w.OwnerID, Name: w.Name, Description: w.Description, Steps: steps, Now: w.UpdatedAt.UTC(),
	})
	if err != nil {
		return jobs.Workflow{}, fmt.Errorf("put workflow: %w", err)
	}
	return toWorkflow(row)
}

// GetWorkflow implements jobs.Store.
func (db *DB) GetWorkflow(ctx context.Context, ownerID, name string) (jobs.Workflow, error) {
	row, err := db.q.GetWorkflow(ctx, pgdb.GetWorkflowParams{OwnerID: ownerID, Name: name})
	if err != nil {
		return jobs.Workflow{}, notFound(err, "Workflow")
	}
	return toWorkflow(row)
}

// ListWorkflows implements jobs.Store.
func (db *DB) ListWorkflows(ctx context.Context, ownerID string) ([]jobs.Workflow, error) {
	rows, err := db.q.ListWorkflows(ctx, ownerID)
	if err != nil {
		return nil, fmt.Errorf("list workflows: %w", err)
	}
	out := make([]jobs.Workflow, len(rows))
	for i, r := range rows {
		w, err := toWorkflow(r)
		if err != nil {
			return nil, err
		}
		out[i] = w
	}
	return out, nil
}

// DeleteWorkflow implements jobs.Store.
func (db *DB) DeleteWorkflow(ctx context.Context, ownerID, name string) error {
	n, err := db.q.DeleteWorkflow(ctx, pgdb.DeleteWorkflowParams{OwnerID: ownerID, Name: name})
	if err != nil {
		return fmt.Errorf("delete workflow: %w", err)
	}
	if n == 0 {
		return levqor.Errorf(levqor.ENotFound, "Workflow not found.")
	}
	return nil
}

func toWebhookSecret(r pgdb.WebhookSecret) jobs.WebhookSecret {
	return jobs.WebhookSecret{OwnerID: r.OwnerID, Secret: r.Secret, Sealed: r.Sealed, CreatedAt: r.CreatedAt.UTC()}
}

// WebhookSecret implements jobs.Store. It reads first: the secret exists on all but
// the first call.
func (db *DB) WebhookSecret(ctx context.Context, ownerID string, fresh jobs.WebhookSecret) (jobs.WebhookSecret, error) {
	row, err := db.q.GetWebhookSecret(ctx, ownerID)
	if err == nil {
		return toWebhookSecret(row), nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return jobs.WebhookSecret{}, fmt.Errorf("get webhook secret: %w", err)
	}
	row, err = db.q.InsertWebhookSecretIfAbsent(ctx, pgdb.InsertWebhookSecretIfAbsentParams{
		OwnerID: ownerID, Secret: fresh.Secret, Sealed: fresh.Sealed, CreatedAt: fresh.CreatedAt.UTC(),
	})
	if errors.Is(err, pgx.ErrNoRows) {
		// Another caller created it since the read.
		row, err = db.q.GetWebhookSecret(ctx, ownerID)
	}
	if err != nil {
		return jobs.WebhookSecret{}, fmt.Errorf("create webhook secret: %w", err)
	}
	return toWebhookSecret(row), nil
}

// PutWebhookSecret implements jobs.Store.
func (db *DB) PutWebhookSecret(ctx context.Context, s jobs.WebhookSecret) (jobs.WebhookSecret, error) {
	row, err := db.q.PutWebhookSecret(ctx, pgdb.PutWebhookSecretParams{
		OwnerID: s.OwnerID, Secret: s.Secret, Sealed: s.Sealed, CreatedAt: s.CreatedAt.UTC(),
	})
	if err != nil {
		return jobs.WebhookSecret{}, fmt.Errorf("put webhook secret: %w", err)
	}
	return toWebhookSecret(row), nil
}

// ClearWebhookSecrets implements jobs.Store.
func (db *DB) ClearWebhookSecrets(ctx context.Context, limit int) ([]jobs.WebhookSecret, error) {
	rows, err := db.q.ListClearWebhookSecrets(ctx, int32(limit))
	if err != nil {
		return nil, fmt.Errorf("list clear webhook secrets: %w", err)
	}
	out := make([]jobs.WebhookSecret, len(rows))
	for i, r := range rows {
		out[i] = toWebhookSecret(r)
	}
	return out, nil
}

// SealWebhookSecret implements jobs.Store.
func (db *DB) SealWebhookSecret(ctx context.Context, ownerID, clear string, sealed []byte) (bool, error) {
	n, err := db.q.SealWebhookSecret(ctx, pgdb.SealWebhookSecretParams{OwnerID: ownerID, Secret: clear, Sealed: sealed})
	if err != nil {
		return false, fmt.Errorf("seal webhook secret: %w", err)
	}
	return n == 1, nil
}
