package postgres

import (
	"context"
	"errors"
	"fmt"
	"github.com/levqor/levqor/store/internal/together"
	"time"

	"github.com/levqor/levqor/gen/pgdb"
	"github.com/levqor/levqor/store/internal/dbrow"
)

const (
	// maxGroup bounds how many rows one group's INSERT carries (a batch larger than
	// that has a statement to itself).
	maxGroup = 256
	// groupTimeout bounds the statements of one group, so that a database that stops
	// answering fails the waiting intakes instead of holding them.
	groupTimeout = 30 * time.Second
)

// insertReq is a job insert, or a batch's (InsertJobs), waiting for the group
// committer; its rows are inserted in order, in one statement.
type insertReq struct {
	ps    []dbrow.InsertJobParams
	reply chan insertReply
}

// insertReply answers an insertReq: a row for each of its rows, or the error.
type insertReply struct {
	rows []insertedRow
	err  error
}

type insertedRow struct {
	row      pgdb.Job
	inserted bool // false: the idempotency key was taken, row is the job holding it
}

// groupCommit inserts the jobs of intakes that arrive together with one multi-row
// INSERT (InsertJobs), which is one transaction: its commit, its WAL flush and the
// jobs_notify trigger's NOTIFY (migration 0004) are paid once per group instead of
// once per request. That NOTIFY matters most: PostgreSQL serialises the commits of
// notifying transactions on one database-wide lock, flush included, so one
// statement per intake caps intake at one commit at a time. Each insert is still
// acknowledged only after its group committed.
func (db *DB) groupCommit() {
	defer close(db.groupDone)
	for {
		group, ok := together.Next(db.inserts, db.closing, maxGroup, func(r insertReq) int { return len(r.ps) })
		if !ok {
			return
		}
		db.commitGroup(group)
	}
}

// commitGroup inserts the group's rows in one statement and answers each request.
// When the statement fails and the group holds more than one request, each is
// retried on its own, so that a failure reaches only the request that caused it.
func (db *DB) commitGroup(group []insertReq) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	var all []dbrow.InsertJobParams
	for _, r := range group {
		all = append(all, r.ps...)
	}
	rows, err := db.insertRows(ctx, all)
	if err != nil && len(group) > 1 {
		for _, r := range group {
			rows, err := db.insertRows(ctx, r.ps)
			r.reply <- insertReply{rows: rows, err: err}
		}
		return
	}
	for _, r := range group {
		if err != nil {
			r.reply <- insertReply{err: err}
			continue
		}
		r.reply <- insertReply{rows: rows[:len(r.ps)]}
		rows = rows[len(r.ps):]
	}
}

// enqueueInsert queues ps for the group committer, to be inserted in one
// statement, and waits for their rows.
func (db *DB) enqueueInsert(ctx context.Context, ps []dbrow.InsertJobParams) ([]insertedRow, error) {
	r := insertReq{ps: ps, reply: make(chan insertReply, 1)}
	select {
	case db.inserts <- r:
	case <-db.closing:
		return nil, errors.New("database is closing")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Once queued, the insert is carried out whatever the caller does; only a close
	// of the database can leave it unanswered.
	select {
	case res := <-r.reply:
		return res.rows, res.err
	case <-db.groupDone:
		select {
		case res := <-r.reply:
			return res.rows, res.err
		default:
			return nil, errors.New("database closed before the insert")
		}
	}
}

// insertRows inserts ps with one multi-row INSERT (sql/postgres/queries/jobs_batch.sql);
// the rows it skipped for a taken idempotency key are then read by key, one query
// per scope. The result is in the order of ps.
func (db *DB) insertRows(ctx context.Context, ps []dbrow.InsertJobParams) ([]insertedRow, error) {
	var a pgdb.InsertJobsParams
	for _, p := range ps {
		a.Ids, a.OwnerIds, a.Workflows, a.Statuses = append(a.Ids, p.ID), append(a.OwnerIds, p.OwnerID), append(a.Workflows, p.Workflow), append(a.Statuses, p.Status)
		a.Priorities, a.RunAts, a.MaxAttempts, a.TimeoutSs = append(a.Priorities, p.Priority), append(a.RunAts, p.RunAt), append(a.MaxAttempts, p.MaxAttempts), append(a.TimeoutSs, p.TimeoutS)
		a.Payloads, a.Steps, a.Guardrails, a.CallbackUrls = append(a.Payloads, p.Payload), append(a.Steps, p.Steps), append(a.Guardrails, p.Guardrails), append(a.CallbackUrls, p.CallbackUrl)
		a.IdemScopes, a.IdemKeys, a.IdemHashes = append(a.IdemScopes, p.IdemScope.String), append(a.IdemKeys, p.IdemKey.String), append(a.IdemHashes, p.IdemHash.String)
		a.CreatedAts, a.InputBytes, a.StepsBytes = append(a.CreatedAts, p.CreatedAt), append(a.InputBytes, p.InputBytes), append(a.StepsBytes, p.StepsBytes)
		a.Results, a.DryRuns, a.ReplayOfs = append(a.Results, p.Result.String), append(a.DryRuns, p.DryRun), append(a.ReplayOfs, p.ReplayOf.String)
		a.StartedAts, a.FinishedAts = append(a.StartedAts, timeText(p.StartedAt)), append(a.FinishedAts, timeText(p.FinishedAt))
		a.Attempts, a.LeaseTokens, a.LeaseExpiresAts = append(a.Attempts, p.Attempts), append(a.LeaseTokens, p.LeaseToken), append(a.LeaseExpiresAts, timeText(p.LeaseExpiresAt))
	}
	rows, err := db.q.InsertJobs(ctx, a)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]pgdb.Job, len(rows))
	for _, r := range rows {
		byID[r.ID] = r
	}
	var winners map[idemKey]pgdb.Job
	out := make([]insertedRow, len(ps))
	for i, p := range ps {
		if row, ok := byID[p.ID]; ok {
			out[i] = insertedRow{row: row, inserted: true}
			continue
		}
		if winners == nil {
			if winners, err = db.idemWinners(ctx, ps, byID); err != nil {
				return nil, err
			}
		}
		row, ok := winners[idemKey{p.IdemScope.String, p.IdemKey.String}]
		if !ok {
			return nil, fmt.Errorf("job %s was neither inserted nor held by its idempotency key", p.ID)
		}
		out[i] = insertedRow{row: row}
	}
	return out, nil
}
