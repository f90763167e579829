package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"

	"github.com/levqor/levqor/gen/sqlitedb"
)

// stmts prepares each query of a pool on its first use and keeps the statement:
// SQLite would otherwise parse a statement on every call, and preparing all of
// sqlc's queries at start-up, on both pools, was about 5 ms of a cold start.
// Each is prepared with anonymous parameters where it can (anonymousParams).
type stmts struct {
	db      *sql.DB
	m       sync.Map // query → *sql.Stmt
	warming sync.Map // query → true while a goroutine prepares it (warm)
}

// cached is the pool's statement of query, if it has one.
func (s *stmts) cached(query string) *sql.Stmt {
	if st, ok := s.m.Load(query); ok {
		return st.(*sql.Stmt)
	}
	return nil
}

// get returns the pool's statement of query, preparing it on one of the pool's
// connections if need be. No lock is held while preparing, which waits for a
// connection: two first uses at once both prepare, and one statement is kept.
func (s *stmts) get(ctx context.Context, query string) (*sql.Stmt, error) {
	if st := s.cached(query); st != nil {
		return st, nil
	}
	st, err := s.db.PrepareContext(context.WithoutCancel(ctx), anonymousParams(query))
	if err != nil {
		return nil, err
	}
	if kept, loaded := s.m.LoadOrStore(query, st); loaded {
		st.Close()
		return kept.(*sql.Stmt), nil
	}
	return st, nil
}

// warm prepares query on the pool in the background, once a connection is free:
// for statements first used inside a transaction, which holds the writer's only
// connection (stmtDB.stmt), so that later transactions find them prepared.
func (s *stmts) warm(query string) {
	if _, busy := s.warming.LoadOrStore(query, true); busy {
		return
	}
	go func() {
		defer s.warming.Delete(query)
		_, _ = s.get(context.Background(), query) // a failure leaves it to the next use
	}()
}

func (s *stmts) close() error {
	var errs []error
	s.m.Range(func(_, st any) bool {
		errs = append(errs, st.(*sql.Stmt).Close())
		return true
	})
	return errors.Join(errs...)
}

// stmtDB is a sqlitedb.DBTX running each query through its prepared statement,
// inside tx when tx is set.
type stmtDB struct {
	s  *stmts
	tx *sql.Tx
}

func (d stmtDB) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if d.tx == nil {
		return d.s.get(ctx, query)
	}
	if st := d.s.cached(query); st != nil {
		return d.tx.StmtContext(ctx, st), nil
	}
	// Not prepared on the pool yet: preparing there would wait for a connection,
	// and the writer's only one is this transaction's. Prepare it in the
	// transaction (until it ends), and on the pool once the transaction is done.
	d.s.warm(query)
	return d.tx.PrepareContext(ctx, anonymousParams(query))
}

func (d stmtDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := d.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (d stmtDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := d.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext runs a statement that could not be prepared unprepared, so that
// the Row carries the error.
func (d stmtDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := d.stmt(ctx, query)
	if err != nil {
		if d.tx != nil {
			return d.tx.QueryRowContext(ctx, query, args...)
		}
		return d.s.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (d stmtDB) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return d.s.db.PrepareContext(ctx, query)
}

// wtx is the writer's queries inside tx.
func (db *DB) wtx(tx *sql.Tx) *sqlitedb.Queries {
	return sqlitedb.New(stmtDB{s: db.ws, tx: tx})
}
