package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/levqor/levqor/gen/sqlitedb"
	"github.com/levqor/levqor/store/internal/dbrow"
	"github.com/levqor/levqor/store/internal/together"
)

// maxGroup bounds how many inserts share one transaction (a batch larger than
// that has a transaction to itself).
const maxGroup = 256

// insertReq is a job insert, or a batch's (InsertJobs), waiting for the group
// committer; its rows are inserted in order, in one transaction.
type insertReq struct {
	ps    []sqlitedb.InsertJobParams
	reply chan []insertRes
}

// insertRes is one row's result: inserted, or the row that holds its idempotency
// key (row, read back).
type insertRes struct {
	row      sqlitedb.Job
	inserted bool
	err      error
}

// groupCommit runs job inserts that arrive together in one transaction (group
// commit): SQLite has one writer, and a transaction's fixed cost — taking the
// lock, appending the commit to the WAL — is paid once per group instead of once
// per request. Each insert is still acknowledged only after its group committed.
func (db *DB) groupCommit() {
	defer close(db.groupDone)
	for {
		group, ok := together.Next(db.inserts, db.closing, maxGroup, func(r insertReq) int { return len(r.ps) })
		if !ok {
			return
		}
		results, err := db.insertGroup(group)
		for i, r := range group {
			if err != nil {
				r.reply <- []insertRes{{err: err}}
			} else {
				r.reply <- results[i]
			}
		}
	}
}

func (db *DB) insertGroup(group []insertReq) ([][]insertRes, error) {
	ctx := context.Background()
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	q := db.wtx(tx)
	out := make([][]insertRes, len(group))
	added := map[string]int64{} // new jobs per status
	for i, r := range group {
		out[i] = make([]insertRes, len(r.ps))
		for k, p := range r.ps {
			n, err := q.InsertJob(ctx, p)
			if err == nil && n == 0 {
				// The idempotency key is taken (possibly by an earlier insert of this group).
				row, err := q.GetJobByIdempotencyKey(ctx, sqlitedb.GetJobByIdempotencyKeyParams{IdemScope: p.IdemScope, IdemKey: p.IdemKey})
				out[i][k] = insertRes{row: row, err: err}
				continue
			}
			if err != nil {
				// The whole group fails: SQLite may have rolled the transaction back
				// (SQLITE_FULL does), and statements after it would commit on their own.
				return nil, fmt.Errorf("insert job: %w", err)
			}
			// Not read back: the row is what was bound (dbrow.InsertedJob), built
			// by insertRows' caller once the transaction has committed.
			out[i][k] = insertRes{inserted: true}
			added[p.Status]++
		}
	}
	// The status counters (migration 0013): one upsert per status for the whole group,
	// in its transaction, rather than a trigger's upsert per job.
	for status, n := range added {
		if err := q.AddJobCount(ctx, sqlitedb.AddJobCountParams{Status: status, N: n}); err != nil {
			return nil, fmt.Errorf("count new jobs: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return out, nil
}

// insertJob queues p for the group committer and waits for its result.
func (db *DB) insertJob(ctx context.Context, p sqlitedb.InsertJobParams) (sqlitedb.Job, bool, error) {
	res, err := db.insertRows(ctx, []sqlitedb.InsertJobParams{p})
	if err != nil {
		return sqlitedb.Job{}, false, err
	}
	return res[0].row, res[0].inserted, res[0].err
}

// insertRows queues ps for the group committer, to be inserted in one
// transaction, and waits for their results (one, with the error, if the
// transaction failed).
func (db *DB) insertRows(ctx context.Context, ps []sqlitedb.InsertJobParams) ([]insertRes, error) {
	r := insertReq{ps: ps, reply: make(chan []insertRes, 1)}
	select {
	case db.inserts <- r:
	case <-db.closing:
		return nil, errors.New("database is closing")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Once queued, the insert is carried out whatever the caller does; only a close
	// of the database can leave it unanswered.
	var res []insertRes
	select {
	case res = <-r.reply:
	case <-db.groupDone:
		select {
		case res = <-r.reply:
		default:
			return nil, errors.New("database closed before the insert")
		}
	}
	if len(res) != len(ps) { // the transaction failed
		return nil, res[0].err
	}
	for k := range res {
		if res[k].inserted {
			res[k].row = dbrow.InsertedJob(ps[k])
		}
	}
	return res, nil
}
