package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/levqor/levqor/gen/sqlitedb"
	"github.com/levqor/levqor/store/internal/together"
)

// maxGroup bounds how many rows (inserts, finishes and claims) share one
// transaction (a request larger than that has a transaction to itself).
const maxGroup = 256

// writeReq is a request for the group committer: job inserts (one, or a batch's:
// InsertJobs), attempt ends (FinishJobs) or a claim (ClaimJobs), carried out in
// order in one transaction.
type writeReq struct {
	ps    []sqlitedb.InsertJobParams
	fin   []sqlitedb.FinishJobParams
	claim *sqlitedb.ClaimJobsParams
	reply chan writeRes
}

// rows is how many rows r may write: its weight in a group.
func (r writeReq) rows() int {
	n := len(r.ps) + len(r.fin)
	if r.claim != nil {
		n += int(r.claim.MaxRows)
	}
	return n
}

// writeRes is a request's result: one insertRes per insert, how many of its
// finishes applied, the jobs its claim took; err alone when the transaction failed.
type writeRes struct {
	inserts  []insertRes
	finished int
	claimed  []sqlitedb.Job
	err      error
}

// insertRes is one row's result: inserted, or the row that holds its idempotency
// key (row, read back).
type insertRes struct {
	row      sqlitedb.Job
	inserted bool
	err      error
}

// groupCommit runs the job inserts, attempt ends and claims that arrive together in
// one transaction (group commit): SQLite has one writer, and a transaction's fixed
// cost — taking the lock, appending the commit to the WAL — is paid once per
// group instead of once per request. Inserts, ends and claims share it because
// under load they alternate (intake stores jobs while the completer stores the
// ends of earlier ones and the worker claims the queued ones) and touch the same
// pages: the table's and its indexes' newest. Each request is still acknowledged
// only after its group committed.
func (db *DB) groupCommit() {
	defer close(db.groupDone)
	for {
		group, ok := together.Next(db.writes, db.closing, maxGroup, writeReq.rows)
		if !ok {
			return
		}
		results, err := db.writeGroup(group)
		for i, r := range group {
			if err != nil {
				r.reply <- writeRes{err: err}
			} else {
				r.reply <- results[i]
			}
		}
	}
}

func (db *DB) writeGroup(group []writeReq) ([]writeRes, error) {
	ctx := context.Background()
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	q := db.wtx(tx)
	out := make([]writeRes, len(group))
	added := map[string]int64{} // new jobs per status
	for i, r := range group {
		if len(r.ps) > 0 {
			out[i].inserts = make([]insertRes, len(r.ps))
		}
		for k, p := range r.ps {
			n, err := q.InsertJob(ctx, p)
			if err == nil && n == 0 {
				// The idempotency key is taken (possibly by an earlier insert of this group).
				row, err := q.GetJobByIdempotencyKey(ctx, sqlitedb.GetJobByIdempotencyKeyParams{IdemScope: p.IdemScope, IdemKey: p.IdemKey})
				out[i].inserts[k] = insertRes{row: row, err: err}
				continue
			}
			if err != nil {
				// The whole group fails: SQLite may have rolled the transaction back
				// (SQLITE_FULL does), and statements after it would commit on their own.
				return nil, fmt.Errorf("insert job: %w", err)
			}
			// Not read back: the row is what was bound (dbrow.InsertedAs), built
			// by insertRows' caller once the transaction has committed.
			out[i].inserts[k] = insertRes{inserted: true}
			added[p.Status]++
		}
		for _, p := range r.fin {
			n, err := q.FinishJob(ctx, p)
			if err != nil {
				return nil, fmt.Errorf("finish job %s: %w", p.ID, err)
			}
			out[i].finished += int(n)
		}
	}
	// The status counters (migration 0013): one upsert per status for the group's
	// inserts, in its transaction, rather than a trigger's upsert per job. Before the
	// claims: a claim's trigger moves a job's count from queued to running, and the
	// queued count must already include the jobs of this group it takes.
	for status, n := range added {
		if err := q.AddJobCount(ctx, sqlitedb.AddJobCountParams{Status: status, N: n}); err != nil {
			return nil, fmt.Errorf("count new jobs: %w", err)
		}
	}
	// Claims last, after every insert and finish of the group: they can take the jobs
	// queued in it.
	for i, r := range group {
		if r.claim == nil {
			continue
		}
		if out[i].claimed, err = q.ClaimJobs(ctx, *r.claim); err != nil {
			return nil, fmt.Errorf("claim jobs: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return out, nil
}

// grouped queues r for the group committer and waits for its result. Once queued,
// r is carried out whatever the caller does; only a close of the database can
// leave it unanswered.
func (db *DB) grouped(ctx context.Context, r writeReq) (writeRes, error) {
	r.reply = make(chan writeRes, 1)
	select {
	case db.writes <- r:
	case <-db.closing:
		return writeRes{}, errors.New("database is closing")
	case <-ctx.Done():
		return writeRes{}, ctx.Err()
	}
	var res writeRes
	select {
	case res = <-r.reply:
	case <-db.groupDone:
		select {
		case res = <-r.reply:
		default:
			return writeRes{}, errors.New("database closed before the write")
		}
	}
	return res, res.err
}

// insertRows queues ps for the group committer, to be inserted in one
// transaction, and waits for their results. An inserted row's result has no row:
// it is what was bound (dbrow.InsertedAs).
func (db *DB) insertRows(ctx context.Context, ps []sqlitedb.InsertJobParams) ([]insertRes, error) {
	res, err := db.grouped(ctx, writeReq{ps: ps})
	if err != nil {
		return nil, err
	}
	return res.inserts, nil
}
