package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/sqlitedb"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store/internal/dbrow"
	"github.com/levqor/levqor/store/storejson"
)

var _ jobs.Store = (*DB)(nil)

// InsertJob implements jobs.Store.
func (db *DB) InsertJob(ctx context.Context, j jobs.Job) (jobs.Job, bool, error) {
	out, err := db.InsertJobs(ctx, []jobs.Job{j})
	if err != nil {
		return jobs.Job{}, false, err
	}
	return out[0].Job, out[0].Inserted, nil
}

// InsertJobs implements jobs.Store: the rows go to the group committer as one
// request, so they share one transaction (possibly with concurrent single
// inserts) and one update of the status counters. An inserted job is returned as
// stored without reading it back (dbrow.InsertedAs); a job whose idempotency key
// was taken, as the row that holds the key.
func (db *DB) InsertJobs(ctx context.Context, js []jobs.Job) ([]jobs.Inserted, error) {
	if len(js) == 0 {
		return nil, nil
	}
	ps := make([]sqlitedb.InsertJobParams, len(js))
	for i, j := range js {
		p, err := dbrow.InsertJob(j)
		if err != nil {
			return nil, fmt.Errorf("insert jobs: %w", err)
		}
		ps[i] = p
	}
	res, err := db.insertRows(ctx, ps)
	if err != nil {
		return nil, fmt.Errorf("insert jobs: %w", err)
	}
	out := make([]jobs.Inserted, len(res))
	for i, r := range res {
		switch {
		case r.err != nil:
			return nil, fmt.Errorf("insert jobs: %w", r.err)
		case r.inserted:
			out[i].Inserted = true
			out[i].Job, err = dbrow.InsertedAs(js[i], ps[i])
		default:
			out[i].Job, err = dbrow.ToJob(r.row)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ReplayCandidates implements jobs.Store.
func (db *DB) ReplayCandidates(ctx context.Context, f jobs.ListFilter) ([]string, error) {
	ids, err := db.rq.ListReplayCandidates(ctx, dbrow.ListReplayCandidates(f))
	if err != nil {
		return nil, fmt.Errorf("list replay candidates: %w", err)
	}
	return ids, nil
}

// GetJob implements jobs.Store.
func (db *DB) GetJob(ctx context.Context, id string) (jobs.Job, error) {
	row, err := db.rq.GetJob(ctx, id)
	if err != nil {
		return jobs.Job{}, notFound(err, "Job")
	}
	return dbrow.ToJob(row)
}

// ListJobs implements jobs.Store. Only the rows of the page are read whole: the
// query sums the candidates' stored sizes first.
func (db *DB) ListJobs(ctx context.Context, f jobs.ListFilter) ([]jobs.Job, bool, error) {
	rows, err := db.rq.ListJobs(ctx, dbrow.ListJobs(f))
	if err != nil {
		return nil, false, fmt.Errorf("list jobs: %w", err)
	}
	out := make([]jobs.Job, len(rows))
	for i, r := range rows {
		if out[i], err = dbrow.ToJob(r.Job); err != nil {
			return nil, false, err
		}
	}
	return out, len(rows) > 0 && rows[0].Matched > int64(len(rows)), nil
}

// ClaimJobs implements jobs.Store. The UPDATE … RETURNING runs on the single writer,
// which is what keeps two claims from taking one job, in the group committer's
// transaction with the inserts and ends around it (groupcommit.go): no commit of
// its own, and no hand-off of the writer connection between the two.
func (db *DB) ClaimJobs(ctx context.Context, token string, now, leaseUntil time.Time, limit int) ([]jobs.Job, error) {
	if limit <= 0 { // SQLite reads a negative LIMIT as none
		return nil, nil
	}
	res, err := db.grouped(ctx, writeReq{claim: &sqlitedb.ClaimJobsParams{
		LeaseToken: token, LeaseExpiresAt: dbrow.NullTime(&leaseUntil), Now: now.UTC(), MaxRows: int64(limit),
	}})
	if err != nil {
		return nil, fmt.Errorf("claim jobs: %w", err)
	}
	out, err := dbrow.ToJobs(res.claimed, dbrow.AsIs[dbrow.Job])
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, dbrow.ByClaimOrder)
	return out, nil
}

// ExtendLeases implements jobs.Store.
func (db *DB) ExtendLeases(ctx context.Context, token string, until time.Time) ([]string, error) {
	rows, err := db.wq.ExtendLeases(ctx, sqlitedb.ExtendLeasesParams{LeaseExpiresAt: dbrow.NullTime(&until), LeaseToken: token})
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
	n, err := db.wq.SaveSteps(ctx, sqlitedb.SaveStepsParams{Steps: string(b), StepsBytes: int64(len(b)), Now: now.UTC(), ID: id, LeaseToken: token})
	if err != nil {
		return false, fmt.Errorf("save steps: %w", err)
	}
	return n > 0, nil
}

// FinishJobs implements jobs.Store: the updates go to the group committer as one
// request, so they share a transaction with concurrent inserts.
func (db *DB) FinishJobs(ctx context.Context, now time.Time, fs []jobs.Finish) (int, error) {
	if len(fs) == 0 {
		return 0, nil
	}
	params := make([]sqlitedb.FinishJobParams, len(fs))
	for i, f := range fs {
		p, err := dbrow.FinishJob(f, now)
		if err != nil {
			return 0, fmt.Errorf("finish jobs: %w", err)
		}
		params[i] = p
	}
	res, err := db.grouped(ctx, writeReq{fin: params})
	if err != nil {
		return 0, fmt.Errorf("finish jobs: %w", err)
	}
	return res.finished, nil
}

// RescueExpired implements jobs.Store.
// The jobs whose on_failure step is due go back to the queue first (RescueToOnFailure),
// the others as the shared query says, in one transaction.
func (db *DB) RescueExpired(ctx context.Context, cutoff, now time.Time) (int, error) {
	n, err := db.inTx(ctx, func(q *sqlitedb.Queries) (int, error) {
		back, err := q.RescueToOnFailure(ctx, sqlitedb.RescueToOnFailureParams{Cutoff: dbrow.NullTime(&cutoff), Now: now.UTC(), MaxRescues: jobs.MaxRescues})
		if err != nil {
			return 0, err
		}
		rows, err := q.RescueExpired(ctx, sqlitedb.RescueExpiredParams{Cutoff: dbrow.NullTime(&cutoff), Now: now.UTC(), MaxRescues: jobs.MaxRescues})
		return len(back) + len(rows), err
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
	_, err := db.inTx(ctx, func(q *sqlitedb.Queries) (int, error) {
		row, err := q.CancelQueuedJob(ctx, sqlitedb.CancelQueuedJobParams{Now: dbrow.NullTime(&now), ID: id})
		if err != nil {
			return 0, err
		}
		if got, err = dbrow.ToJob(row); err != nil {
			return 0, err
		}
		steps, ok, err := dbrow.CanceledSteps(got, now.UTC())
		if err != nil || !ok {
			return 0, err
		}
		return 0, q.SetCanceledSteps(ctx, sqlitedb.SetCanceledStepsParams{Steps: steps, StepsBytes: int64(len(steps)), ID: id})
	})
	if errors.Is(err, sql.ErrNoRows) {
		return jobs.Job{}, false, nil
	}
	if err != nil {
		return jobs.Job{}, false, fmt.Errorf("cancel job: %w", err)
	}
	return got, true, nil
}

// inTx runs f in a transaction on the writer, committed when f returns no error.
func (db *DB) inTx(ctx context.Context, f func(q *sqlitedb.Queries) (int, error)) (int, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	n, err := f(db.wtx(tx))
	if err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

// RequestCancel implements jobs.Store.
func (db *DB) RequestCancel(ctx context.Context, id string, now time.Time) (jobs.Job, bool, error) {
	row, err := db.wq.RequestCancel(ctx, sqlitedb.RequestCancelParams{Now: now.UTC(), ID: id})
	if errors.Is(err, sql.ErrNoRows) {
		return jobs.Job{}, false, nil
	}
	if err != nil {
		return jobs.Job{}, false, fmt.Errorf("request cancel: %w", err)
	}
	got, err := dbrow.ToJob(row)
	if err != nil {
		return jobs.Job{}, false, err
	}
	return got, true, nil
}

// QueueStats implements jobs.Store.
func (db *DB) QueueStats(ctx context.Context) (jobs.QueueStats, error) {
	rows, err := db.rq.CountJobsByStatus(ctx)
	if err != nil {
		return jobs.QueueStats{}, fmt.Errorf("count jobs: %w", err)
	}
	st := jobs.QueueStats{ByStatus: make(map[string]int64, len(rows))}
	for _, r := range rows {
		st.ByStatus[r.Status] = r.N
	}
	now := time.Now().UTC()
	oldest, err := dbrow.OldestDue(func(prio int64) (time.Time, error) {
		return db.rq.OldestDueJob(ctx, sqlitedb.OldestDueJobParams{Priority: prio, Now: now})
	}, func(err error) bool { return errors.Is(err, sql.ErrNoRows) })
	if err != nil {
		return jobs.QueueStats{}, err
	}
	st.OldestDueAt = oldest
	return st, nil
}

// CountJobsScan counts the jobs table per status, the way QueueStats did before the
// maintained counters (migration 0013): O(jobs). The conformance suite compares the two.
func (db *DB) CountJobsScan(ctx context.Context) (map[string]int64, error) {
	rows, err := db.rq.CountJobsByStatusScan(ctx)
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
	if limit <= 0 { // SQLite reads a negative LIMIT as none
		return nil, nil
	}
	rows, err := db.wq.ClaimCallbacks(ctx, sqlitedb.ClaimCallbacksParams{
		LeaseUntil: dbrow.NullTime(&leaseUntil), Now: dbrow.NullTime(&now), MaxRows: int64(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("claim callbacks: %w", err)
	}
	return dbrow.ToJobs(rows, dbrow.AsIs[dbrow.Job])
}

// RecordCallback implements jobs.Store.
func (db *DB) RecordCallback(ctx context.Context, id string, attempts []jobs.CallbackAttempt, state string, next *time.Time, now time.Time) error {
	b, err := storejson.EncodeArray(attempts)
	if err != nil {
		return fmt.Errorf("job %s callbacks: %w", id, err)
	}
	err = db.wq.RecordCallback(ctx, sqlitedb.RecordCallbackParams{
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
	row, err := db.wq.PutWorkflow(ctx, p)
	if err != nil {
		return jobs.Workflow{}, fmt.Errorf("put workflow: %w", err)
	}
	return dbrow.ToWorkflow(row)
}

// GetWorkflow implements jobs.Store.
func (db *DB) GetWorkflow(ctx context.Context, ownerID, name string) (jobs.Workflow, error) {
	row, err := db.rq.GetWorkflow(ctx, sqlitedb.GetWorkflowParams{OwnerID: ownerID, Name: name})
	if err != nil {
		return jobs.Workflow{}, notFound(err, "Workflow")
	}
	return dbrow.ToWorkflow(row)
}

// ListWorkflows implements jobs.Store.
func (db *DB) ListWorkflows(ctx context.Context, ownerID string) ([]jobs.Workflow, error) {
	rows, err := db.rq.ListWorkflows(ctx, ownerID)
	if err != nil {
		return nil, fmt.Errorf("list workflows: %w", err)
	}
	out := make([]jobs.Workflow, len(rows))
	for i, r := range rows {
		w, err := dbrow.ToWorkflow(r)
		if err != nil {
			return nil, err
		}
		out[i] = w
	}
	return out, nil
}

// DeleteWorkflow implements jobs.Store.
func (db *DB) DeleteWorkflow(ctx context.Context, ownerID, name string) error {
	n, err := db.wq.DeleteWorkflow(ctx, sqlitedb.DeleteWorkflowParams{OwnerID: ownerID, Name: name})
	if err != nil {
		return fmt.Errorf("delete workflow: %w", err)
	}
	if n == 0 {
		return levqor.Errorf(levqor.ENotFound, "Workflow not found.")
	}
	return nil
}

// WebhookSecret implements jobs.Store. It reads first: the secret exists on all but
// the first call, and a read does not wait for the writer.
func (db *DB) WebhookSecret(ctx context.Context, ownerID string, fresh jobs.WebhookSecret) (jobs.WebhookSecret, error) {
	row, err := db.rq.GetWebhookSecret(ctx, ownerID)
	if err == nil {
		return dbrow.ToWebhookSecret(row), nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return jobs.WebhookSecret{}, fmt.Errorf("get webhook secret: %w", err)
	}
	row, err = db.wq.InsertWebhookSecretIfAbsent(ctx, sqlitedb.InsertWebhookSecretIfAbsentParams{
		OwnerID: ownerID, Secret: fresh.Secret, Sealed: fresh.Sealed, CreatedAt: fresh.CreatedAt.UTC(),
	})
	if errors.Is(err, sql.ErrNoRows) {
		// Another caller created it since the read; read it through the writer.
		row, err = db.wq.GetWebhookSecret(ctx, ownerID)
	}
	if err != nil {
		return jobs.WebhookSecret{}, fmt.Errorf("create webhook secret: %w", err)
	}
	return dbrow.ToWebhookSecret(row), nil
}

// PutWebhookSecret implements jobs.Store.
func (db *DB) PutWebhookSecret(ctx context.Context, s jobs.WebhookSecret) (jobs.WebhookSecret, error) {
	row, err := db.wq.PutWebhookSecret(ctx, sqlitedb.PutWebhookSecretParams{
		OwnerID: s.OwnerID, Secret: s.Secret, Sealed: s.Sealed, CreatedAt: s.CreatedAt.UTC(),
	})
	if err != nil {
		return jobs.WebhookSecret{}, fmt.Errorf("put webhook secret: %w", err)
	}
	return dbrow.ToWebhookSecret(row), nil
}

// ClearWebhookSecrets implements jobs.Store.
func (db *DB) ClearWebhookSecrets(ctx context.Context, limit int) ([]jobs.WebhookSecret, error) {
	rows, err := db.rq.ListClearWebhookSecrets(ctx, int64(limit))
	if err != nil {
		return nil, fmt.Errorf("list clear webhook secrets: %w", err)
	}
	out := make([]jobs.WebhookSecret, len(rows))
	for i, r := range rows {
		out[i] = dbrow.ToWebhookSecret(r)
	}
	return out, nil
}

// SealWebhookSecret implements jobs.Store.
func (db *DB) SealWebhookSecret(ctx context.Context, ownerID, clear string, sealed []byte) (bool, error) {
	n, err := db.wq.SealWebhookSecret(ctx, sqlitedb.SealWebhookSecretParams{OwnerID: ownerID, Secret: clear, Sealed: sealed})
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
	n, err := db.wq.PruneFinishedJobs(ctx, sqlitedb.PruneFinishedJobsParams{Cutoff: dbrow.NullTime(&cutoff), MaxRows: int64(limit)})
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
	n, err := db.wq.PruneAnalyticsEvents(ctx, sqlitedb.PruneAnalyticsEventsParams{Cutoff: cutoff.UTC(), MaxRows: int64(limit)})
	if err != nil {
		return 0, fmt.Errorf("prune analytics events: %w", err)
	}
	return n, nil
}

// DeliverSignal implements jobs.Store: the signal and the job's wake in one transaction.
func (db *DB) DeliverSignal(ctx context.Context, id, name string, data json.RawMessage, now time.Time) (bool, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("deliver signal: %w", err)
	}
	defer tx.Rollback()
	q := db.wtx(tx)
	n, err := q.InsertJobSignal(ctx, sqlitedb.InsertJobSignalParams{JobID: id, Name: name, Data: string(data), CreatedAt: now.UTC()})
	if err != nil {
		return false, fmt.Errorf("store signal: %w", err)
	}
	if n == 0 {
		return false, nil
	}
	if _, err := q.WakeWaitingJob(ctx, sqlitedb.WakeWaitingJobParams{Now: now.UTC(), ID: id}); err != nil {
		return false, fmt.Errorf("wake signaled job: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("deliver signal: %w", err)
	}
	return true, nil
}

// Signal implements jobs.Store.
func (db *DB) Signal(ctx context.Context, id, name string) (json.RawMessage, bool, error) {
	data, err := db.rq.GetJobSignal(ctx, sqlitedb.GetJobSignalParams{JobID: id, Name: name})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read signal: %w", err)
	}
	return json.RawMessage(data), true, nil
}

// WakeJob implements jobs.Store.
func (db *DB) WakeJob(ctx context.Context, id string, now time.Time) (bool, error) {
	n, err := db.wq.WakeWaitingJob(ctx, sqlitedb.WakeWaitingJobParams{Now: now.UTC(), ID: id})
	if err != nil {
		return false, fmt.Errorf("wake job: %w", err)
	}
	return n > 0, nil
}
