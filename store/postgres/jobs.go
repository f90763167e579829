package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/pgdb"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store/internal/dbrow"
	"github.com/levqor/levqor/store/storejson"
)

var _ jobs.Store = (*DB)(nil)

// asJob converts a jobs row to the shared row type, which has the same fields.
func asJob(r pgdb.Job) dbrow.Job { return dbrow.Job(r) }

// InsertJob implements jobs.Store: the row goes to the group committer
// (groupcommit.go), which inserts it together with concurrent intakes.
func (db *DB) InsertJob(ctx context.Context, j jobs.Job) (jobs.Job, bool, error) {
	p, err := dbrow.InsertJob(j)
	if err != nil {
		return jobs.Job{}, false, fmt.Errorf("insert job: %w", err)
	}
	rows, err := db.enqueueInsert(ctx, []dbrow.InsertJobParams{p})
	if err != nil {
		return jobs.Job{}, false, fmt.Errorf("insert job: %w", err)
	}
	got, err := dbrow.ToJob(dbrow.Job(rows[0].row))
	if err != nil {
		return jobs.Job{}, false, err
	}
	return got, rows[0].inserted, nil
}

// InsertJobs implements jobs.Store: the rows go to the group committer as one
// request, so they share one statement (possibly with concurrent single intakes).
func (db *DB) InsertJobs(ctx context.Context, js []jobs.Job) ([]jobs.Inserted, error) {
	if len(js) == 0 {
		return nil, nil
	}
	ps := make([]dbrow.InsertJobParams, len(js))
	for i, j := range js {
		p, err := dbrow.InsertJob(j)
		if err != nil {
			return nil, fmt.Errorf("insert jobs: %w", err)
		}
		ps[i] = p
	}
	rows, err := db.enqueueInsert(ctx, ps)
	if err != nil {
		return nil, fmt.Errorf("insert jobs: %w", err)
	}
	out := make([]jobs.Inserted, len(rows))
	for i, r := range rows {
		if out[i].Job, err = dbrow.ToJob(dbrow.Job(r.row)); err != nil {
			return nil, err
		}
		out[i].Inserted = r.inserted
	}
	return out, nil
}

// timeText is a nullable time as InsertJobs takes it: RFC 3339 text, "" for NULL.
func timeText(t sql.NullTime) string {
	if !t.Valid {
		return ""
	}
	return t.Time.UTC().Format(time.RFC3339Nano)
}

// ReplayCandidates implements jobs.Store.
func (db *DB) ReplayCandidates(ctx context.Context, f jobs.ListFilter) ([]string, error) {
	ids, err := db.q.ListReplayCandidates(ctx, pgdb.ListReplayCandidatesParams(dbrow.ListReplayCandidates(f)))
	if err != nil {
		return nil, fmt.Errorf("list replay candidates: %w", err)
	}
	return ids, nil
}

// idemKey is an idempotency key with its scope.
type idemKey struct{ scope, key string }

// idemWinners reads the jobs that hold the idempotency keys of the rows of ps that
// were not inserted, by (scope, key).
func (db *DB) idemWinners(ctx context.Context, ps []dbrow.InsertJobParams, inserted map[string]pgdb.Job) (map[idemKey]pgdb.Job, error) {
	keys := map[string][]string{} // by scope
	for _, p := range ps {
		if _, ok := inserted[p.ID]; !ok && p.IdemKey.Valid {
			keys[p.IdemScope.String] = append(keys[p.IdemScope.String], p.IdemKey.String)
		}
	}
	out := map[idemKey]pgdb.Job{}
	for scope, ks := range keys {
		rows, err := db.q.GetJobsByIdempotencyKeys(ctx, pgdb.GetJobsByIdempotencyKeysParams{IdemScope: sql.NullString{String: scope, Valid: true}, IdemKeys: ks})
		if err != nil {
			return nil, fmt.Errorf("get jobs by idempotency keys: %w", err)
		}
		for _, r := range rows {
			out[idemKey{scope, r.IdemKey.String}] = r
		}
	}
	return out, nil
}

// GetJob implements jobs.Store.
func (db *DB) GetJob(ctx context.Context, id string) (jobs.Job, error) {
	row, err := db.q.GetJob(ctx, id)
	if err != nil {
		return jobs.Job{}, notFound(err, "Job")
	}
	return dbrow.ToJob(dbrow.Job(row))
}

// ListJobs implements jobs.Store. Only the rows of the page are read whole: the
// query sums the candidates' stored sizes first.
func (db *DB) ListJobs(ctx context.Context, f jobs.ListFilter) ([]jobs.Job, bool, error) {
	rows, err := db.q.ListJobs(ctx, pgdb.ListJobsParams(dbrow.ListJobs(f)))
	if err != nil {
		return nil, false, fmt.Errorf("list jobs: %w", err)
	}
	out := make([]jobs.Job, len(rows))
	for i, r := range rows {
		if out[i], err = dbrow.ToJob(dbrow.Job(r.Job)); err != nil {
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
		LeaseToken: token, LeaseExpiresAt: dbrow.NullTime(&leaseUntil), Now: now.UTC(), MaxRows: int64(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("claim jobs: %w", err)
	}
	out, err := dbrow.ToJobs(rows, asJob)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, dbrow.ByClaimOrder)
	return out, nil
}

// ExtendLeases implements jobs.Store.
func (db *DB) ExtendLeases(ctx context.Context, token string, until time.Time) ([]string, error) {
	rows, err := db.q.ExtendLeases(ctx, pgdb.ExtendLeasesParams{LeaseExpiresAt: dbrow.NullTime(&until), LeaseToken: token})
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
	n, err := db.q.SaveSteps(ctx, pgdb.SaveStepsParams{Steps: string(b), StepsBytes: int64(len(b)), Now: now.UTC(), ID: id, LeaseToken: token})
	if err != nil {
		return false, fmt.Errorf("save steps: %w", err)
	}
	return n > 0, nil
}

// FinishJobs implements jobs.Store: one UPDATE for the whole batch
// (sql/postgres/queries/jobs_batch.sql), so a batch costs one round trip. A batch
// that names a job twice (which the worker never sends) is applied row by row in
// one transaction instead, where the order of its ends decides.
func (db *DB) FinishJobs(ctx context.Context, now time.Time, fs []jobs.Finish) (int, error) {
	if len(fs) == 0 {
		return 0, nil
	}
	params := make([]pgdb.FinishJobParams, len(fs))
	seen := make(map[string]bool, len(fs))
	distinct := true
	for i, f := range fs {
		p, err := dbrow.FinishJob(f, now)
		if err != nil {
			return 0, fmt.Errorf("finish jobs: %w", err)
		}
		params[i] = pgdb.FinishJobParams(p)
		distinct = distinct && !seen[f.ID]
		seen[f.ID] = true
	}
	if !distinct {
		return db.finishJobsOneByOne(ctx, params)
	}
	a := pgdb.FinishJobsParams{Now: now.UTC()}
	for _, p := range params {
		a.Ids, a.LeaseTokens, a.Statuses, a.Steps = append(a.Ids, p.ID), append(a.LeaseTokens, p.LeaseToken), append(a.Statuses, p.Status), append(a.Steps, p.Steps)
		a.Results, a.StepsBytes = append(a.Results, p.Result.String), append(a.StepsBytes, p.StepsBytes) // '' for NULL
		a.ErrorCodes, a.ErrorMessages, a.RunAts = append(a.ErrorCodes, p.ErrorCode), append(a.ErrorMessages, p.ErrorMessage), append(a.RunAts, p.RunAt)
		a.Finished, a.FinishedAts = append(a.Finished, p.FinishedAt.Valid), append(a.FinishedAts, p.FinishedAt.Time)
		a.AttemptBacks = append(a.AttemptBacks, p.AttemptBack)
	}
	n, err := db.q.FinishJobs(ctx, a)
	if err != nil {
		return 0, fmt.Errorf("finish jobs: %w", err)
	}
	return int(n), nil
}

// finishJobsOneByOne applies attempt ends in order, in one transaction.
func (db *DB) finishJobsOneByOne(ctx context.Context, params []pgdb.FinishJobParams) (int, error) {
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
// The jobs whose on_failure step is due go back to the queue first (RescueToOnFailure),
// the others as the shared query says, in one transaction.
func (db *DB) RescueExpired(ctx context.Context, cutoff, now time.Time) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		q := db.q.WithTx(tx)
		back, err := q.RescueToOnFailure(ctx, pgdb.RescueToOnFailureParams{Cutoff: dbrow.NullTime(&cutoff), Now: now.UTC(), MaxRescues: jobs.MaxRescues})
		if err != nil {
			return err
		}
		rows, err := q.RescueExpired(ctx, pgdb.RescueExpiredParams{Cutoff: dbrow.NullTime(&cutoff), Now: now.UTC(), MaxRescues: jobs.MaxRescues})
		n = len(back) + len(rows)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("rescue expired leases: %w", err)
	}
	return n, nil
}

// CancelQueued implements jobs.Store: the job, and its waiting steps (canceled
// too), in one transaction.
func (db *DB) CancelQueued(ctx context.Context, id string, now time.Time) (jobs.Job, bool, error) {
	var got jobs.Job
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		q := db.q.WithTx(tx)
		row, err := q.CancelQueuedJob(ctx, pgdb.CancelQueuedJobParams{Now: dbrow.NullTime(&now), ID: id})
		if err != nil {
			return err
		}
		if got, err = dbrow.ToJob(dbrow.Job(row)); err != nil {
			return err
		}
		steps, ok, err := dbrow.CanceledSteps(got, now.UTC())
		if err != nil || !ok {
			return err
		}
		return q.SetCanceledSteps(ctx, pgdb.SetCanceledStepsParams{Steps: steps, StepsBytes: int64(len(steps)), ID: id})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return jobs.Job{}, false, nil
	}
	if err != nil {
		return jobs.Job{}, false, fmt.Errorf("cancel job: %w", err)
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
	got, err := dbrow.ToJob(dbrow.Job(row))
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
	now := time.Now().UTC()
	oldest, err := dbrow.OldestDue(func(prio int64) (time.Time, error) {
		return db.q.OldestDueJob(ctx, pgdb.OldestDueJobParams{Priority: prio, Now: now})
	}, func(err error) bool { return errors.Is(err, pgx.ErrNoRows) })
	if err != nil {
		return jobs.QueueStats{}, err
	}
	st.OldestDueAt = oldest
	return st, nil
}

// CountJobsScan counts the jobs table per status, the way QueueStats did before the
// maintained counters (migration 0013): O(jobs). The conformance suite compares the two.
func (db *DB) CountJobsScan(ctx context.Context) (map[string]int64, error) {
	rows, err := db.q.CountJobsByStatusScan(ctx)
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, nil
}

// ClaimCallbacks implements jobs.Store.
func (db *DB) ClaimCallbacks(ctx context.Context, now, leaseUntil time.Time, limit int) ([]jobs.Job, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := db.q.ClaimCallbacks(ctx, pgdb.ClaimCallbacksParams{
		LeaseUntil: dbrow.NullTime(&leaseUntil), Now: dbrow.NullTime(&now), MaxRows: int64(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("claim callbacks: %w", err)
	}
	return dbrow.ToJobs(rows, asJob)
}

// RecordCallback implements jobs.Store.
func (db *DB) RecordCallback(ctx context.Context, id string, attempts []jobs.CallbackAttempt, state string, next *time.Time, now time.Time) error {
	b, err := storejson.EncodeArray(attempts)
	if err != nil {
		return fmt.Errorf("job %s callbacks: %w", id, err)
	}
	err = db.q.RecordCallback(ctx, pgdb.RecordCallbackParams{
		Callbacks: string(b), CallbackState: state, NextAt: dbrow.NullTime(next), Now: now.UTC(), ID: id,
	})
	if err != nil {
		return fmt.Errorf("record callback: %w", err)
	}
	return nil
}

// PutWorkflow implements jobs.Store. A new workflow is created at w.UpdatedAt; a
// replaced one keeps its creation time.
func (db *DB) PutWorkflow(ctx context.Context, w jobs.Workflow) (jobs.Workflow, error) {
	p, err := dbrow.PutWorkflow(w)
	if err != nil {
		return jobs.Workflow{}, err
	}
	row, err := db.q.PutWorkflow(ctx, pgdb.PutWorkflowParams(p))
	if err != nil {
		return jobs.Workflow{}, fmt.Errorf("put workflow: %w", err)
	}
	return dbrow.ToWorkflow(dbrow.Workflow(row))
}

// GetWorkflow implements jobs.Store.
func (db *DB) GetWorkflow(ctx context.Context, ownerID, name string) (jobs.Workflow, error) {
	row, err := db.q.GetWorkflow(ctx, pgdb.GetWorkflowParams{OwnerID: ownerID, Name: name})
	if err != nil {
		return jobs.Workflow{}, notFound(err, "Workflow")
	}
	return dbrow.ToWorkflow(dbrow.Workflow(row))
}

// ListWorkflows implements jobs.Store.
func (db *DB) ListWorkflows(ctx context.Context, ownerID string) ([]jobs.Workflow, error) {
	rows, err := db.q.ListWorkflows(ctx, ownerID)
	if err != nil {
		return nil, fmt.Errorf("list workflows: %w", err)
	}
	out := make([]jobs.Workflow, len(rows))
	for i, r := range rows {
		w, err := dbrow.ToWorkflow(dbrow.Workflow(r))
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

// WebhookSecret implements jobs.Store. It reads first: the secret exists on all but
// the first call.
func (db *DB) WebhookSecret(ctx context.Context, ownerID string, fresh jobs.WebhookSecret) (jobs.WebhookSecret, error) {
	row, err := db.q.GetWebhookSecret(ctx, ownerID)
	if err == nil {
		return dbrow.ToWebhookSecret(dbrow.WebhookSecret(row)), nil
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
	return dbrow.ToWebhookSecret(dbrow.WebhookSecret(row)), nil
}

// PutWebhookSecret implements jobs.Store.
func (db *DB) PutWebhookSecret(ctx context.Context, s jobs.WebhookSecret) (jobs.WebhookSecret, error) {
	row, err := db.q.PutWebhookSecret(ctx, pgdb.PutWebhookSecretParams{
		OwnerID: s.OwnerID, Secret: s.Secret, Sealed: s.Sealed, CreatedAt: s.CreatedAt.UTC(),
	})
	if err != nil {
		return jobs.WebhookSecret{}, fmt.Errorf("put webhook secret: %w", err)
	}
	return dbrow.ToWebhookSecret(dbrow.WebhookSecret(row)), nil
}

// ClearWebhookSecrets implements jobs.Store.
func (db *DB) ClearWebhookSecrets(ctx context.Context, limit int) ([]jobs.WebhookSecret, error) {
	rows, err := db.q.ListClearWebhookSecrets(ctx, int64(limit))
	if err != nil {
		return nil, fmt.Errorf("list clear webhook secrets: %w", err)
	}
	out := make([]jobs.WebhookSecret, len(rows))
	for i, r := range rows {
		out[i] = dbrow.ToWebhookSecret(dbrow.WebhookSecret(r))
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

// PruneFinishedJobs implements retention.Store.
func (db *DB) PruneFinishedJobs(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	n, err := db.q.PruneFinishedJobs(ctx, pgdb.PruneFinishedJobsParams{Cutoff: dbrow.NullTime(&cutoff), MaxRows: int64(limit)})
	if err != nil {
		return 0, fmt.Errorf("prune finished jobs: %w", err)
	}
	return n, nil
}

// PruneAnalyticsEvents implements retention.Store.
func (db *DB) PruneAnalyticsEvents(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	n, err := db.q.PruneAnalyticsEvents(ctx, pgdb.PruneAnalyticsEventsParams{Cutoff: cutoff.UTC(), MaxRows: int64(limit)})
	if err != nil {
		return 0, fmt.Errorf("prune analytics events: %w", err)
	}
	return n, nil
}

// DeliverSignal implements jobs.Store: the signal and the job's wake in one
// transaction, holding the job's row (LockJob) so that the worker parking it waits
// for the signal to commit and then sees it.
func (db *DB) DeliverSignal(ctx context.Context, id, name string, data json.RawMessage, now time.Time) (bool, error) {
	inserted := false
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		q := db.q.WithTx(tx)
		if err := q.LockJob(ctx, id); err != nil {
			return fmt.Errorf("lock job: %w", err)
		}
		n, err := q.InsertJobSignal(ctx, pgdb.InsertJobSignalParams{JobID: id, Name: name, Data: string(data), CreatedAt: now.UTC()})
		if err != nil {
			return fmt.Errorf("store signal: %w", err)
		}
		if n == 0 {
			return nil
		}
		inserted = true
		if _, err := q.WakeWaitingJob(ctx, pgdb.WakeWaitingJobParams{Now: now.UTC(), ID: id}); err != nil {
			return fmt.Errorf("wake signaled job: %w", err)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("deliver signal: %w", err)
	}
	return inserted, nil
}

// Signal implements jobs.Store.
func (db *DB) Signal(ctx context.Context, id, name string) (json.RawMessage, bool, error) {
	data, err := db.q.GetJobSignal(ctx, pgdb.GetJobSignalParams{JobID: id, Name: name})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read signal: %w", err)
	}
	return json.RawMessage(data), true, nil
}

// WakeJob implements jobs.Store.
func (db *DB) WakeJob(ctx context.Context, id string, now time.Time) (bool, error) {
	n, err := db.q.WakeWaitingJob(ctx, pgdb.WakeWaitingJobParams{Now: now.UTC(), ID: id})
	if err != nil {
		return false, fmt.Errorf("wake job: %w", err)
	}
	return n > 0, nil
}
