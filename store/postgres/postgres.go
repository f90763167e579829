// Package postgres is Levqor's storage engine for several instances: PostgreSQL through
// pgx/v5, behind the same domain store interfaces as store/sqlite, wrapping gen/pgdb.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/pgdb"
	"github.com/levqor/levqor/store/migrate"
)

// migrationLock is the advisory lock key that serialises migrations across instances.
const migrationLock = 0x6c7671 // "lvq"

// DB is a Levqor database on PostgreSQL.
type DB struct {
	pool *pgxpool.Pool
	q    *pgdb.Queries

	inserts   chan insertReq // to the group committer (groupcommit.go)
	closing   chan struct{}  // stops the group committer
	groupDone chan struct{}  // closed when the group committer has stopped
	closeOnce sync.Once

	limits limitsReads // coalesced OwnerLimits reads (ownerlimits.go)
}

// Open connects to the database at url. It does not migrate; call Migrate.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included: say only what is wrong.
		return nil, errors.New("parse PostgreSQL URL: malformed connection string")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	db := &DB{pool: pool, q: pgdb.New(pool),
		inserts: make(chan insertReq, maxGroup), closing: make(chan struct{}), groupDone: make(chan struct{})}
	go db.groupCommit()
	return db, nil
}

// Engine names the engine for /ready and /status.
func (db *DB) Engine() string { return "postgres" }

// Close stops the group committer, once the inserts it holds are answered, and
// closes the pool.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.closing)
		<-db.groupDone
		db.pool.Close()
	})
	return nil
}

// Migrate applies every embedded migration not yet applied, under an advisory lock
// so that instances starting together migrate once.
func (db *DB) Migrate(ctx context.Context) error {
	migrations, err := migrate.Migrations("postgres")
	if err != nil {
		return err
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range migrations {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.Version).Scan(&done); err != nil || done {
				return err
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// Ready reports an error unless the database answers and every migration is applied.
func (db *DB) Ready(ctx context.Context) error {
	migrations, err := migrate.Migrations("postgres")
	if err != nil {
		return err
	}
	var applied int
	if err := db.pool.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&applied); err != nil {
		return levqor.Errorf(levqor.EUnavailable, "The database is not reachable or not migrated.")
	}
	if applied < len(migrations) {
		return levqor.Errorf(levqor.EUnavailable, "%d of %d migrations are applied.", applied, len(migrations))
	}
	return nil
}

func notFound(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return levqor.Errorf(levqor.ENotFound, "%s not found.", what)
	}
	return err
}
