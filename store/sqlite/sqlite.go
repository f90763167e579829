// Package sqlite is Levqor's embedded storage engine: one SQLite file (modernc.org/sqlite,
// pure Go) behind the domain store interfaces, wrapping the sqlc package gen/sqlitedb.
//
// All writes go through one connection (SQLite has one writer; queueing in Go is cheaper
// than SQLITE_BUSY retries), reads through a small pool. See docs/adr/0002-sqlite.md for
// the pragmas and the durability they give.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/sqlitedb"
	"github.com/levqor/levqor/store/fault"
	"github.com/levqor/levqor/store/migrate"
)

// ReadPoolSize is the number of read-only connections; reads never wait on the writer in WAL mode.
const ReadPoolSize = 4

// DB is a Levqor database in one SQLite file.
type DB struct {
	write, read *sql.DB
	wq, rq      *sqlitedb.Queries
	ws, rs      *stmts // the pools' statements, prepared on first use (stmts.go)
	lock        *os.File
	path        string // the database file, for the free-space probe

	writes         chan writeReq // to the group committer (groupcommit.go)
	closing        chan struct{} // stops the group committer and the checkpointer
	groupDone      chan struct{}
	checkpointDone chan struct{} // checkpoint.go
}

// DSN builds the connection string of the writer (readOnly false) or of a reader; the
// benchmarks' bare servers use it too, so they open SQLite exactly as Levqor does.
// synchronous=NORMAL in WAL mode: a committed transaction survives a process crash; a
// power loss may roll back the last commits but never corrupts the file
// (docs/adr/0002-sqlite.md).
func DSN(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "synchronous(NORMAL)")
	// Statement journals (an INSERT inside a multi-statement transaction keeps
	// one, to undo itself alone on a constraint error) and temporary tables in
	// memory rather than in temporary files: a write transaction then makes no
	// system call but the WAL's. What they hold lasts one statement.
	q.Add("_pragma", "temp_store(MEMORY)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	q.Set("_time_format", "sqlite")
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the SQLite file at path and takes an exclusive
// lock beside it, so that a second server cannot share the data directory (the job
// queue assumes one process). It does not migrate; call Migrate.
func Open(ctx context.Context, path string) (*DB, error) {
	if err := createPrivate(path); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, FileMode)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("database %s is in use by another Levqor process (SQLite is single-process; use PostgreSQL for several)", path)
	}
	db, err := open(ctx, path)
	if err != nil {
		lock.Close()
		return nil, err
	}
	db.lock = lock
	return db, nil
}

// OpenShared opens the SQLite file without the lock, for short administrative
// commands (levqor keys …) that run beside a server: SQLite's own locking keeps
// their few writes safe.
func OpenShared(ctx context.Context, path string) (*DB, error) {
	if err := createPrivate(path); err != nil {
		return nil, err
	}
	return open(ctx, path)
}

// Modes of what Open creates: the database holds every tenant's data, key hashes and
// sealed secrets, so only the server's own user may read it.
const (
	DirMode  fs.FileMode = 0o700 // the data directory, when Open creates it
	FileMode fs.FileMode = 0o600 // the database file, its -wal and -shm, the lock file
)

// createPrivate makes sure the database file at path exists with FileMode before
// SQLite opens it (SQLite would create it 0644, less the umask, and gives the -wal
// and -shm files the mode of the database file), creating its directory with
// DirMode. A database or -wal/-shm file left readable by others by an older version
// is narrowed to FileMode; an existing directory is left as the operator made it.
func createPrivate(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), DirMode); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, FileMode)
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("check database file mode: %w", err)
		}
		if fi.Mode().Perm()&^FileMode != 0 {
			if err := os.Chmod(p, FileMode); err != nil {
				return fmt.Errorf("narrow database file mode: %w", err)
			}
		}
	}
	return nil
}

func open(ctx context.Context, path string) (*DB, error) {
	var err error
	db := &DB{path: path}
	if db.write, err = sql.Open("sqlite", writerDSN(path)); err != nil {
		db.Close()
		return nil, err
	}
	db.write.SetMaxOpenConns(1)
	db.write.SetMaxIdleConns(1)
	db.write.SetConnMaxLifetime(0)
	if err := db.write.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if db.read, err = sql.Open("sqlite", DSN(path, true)); err != nil {
		db.Close()
		return nil, err
	}
	db.read.SetMaxOpenConns(ReadPoolSize)
	db.read.SetMaxIdleConns(ReadPoolSize)
	db.read.SetConnMaxLifetime(0)
	db.ws, db.rs = &stmts{db: db.write}, &stmts{db: db.read}
	db.wq, db.rq = sqlitedb.New(stmtDB{s: db.ws}), sqlitedb.New(stmtDB{s: db.rs})
	db.writes, db.closing = make(chan writeReq, maxGroup), make(chan struct{})
	db.groupDone, db.checkpointDone = make(chan struct{}), make(chan struct{})
	go db.groupCommit()
	go db.checkpointer(path)
	return db, nil
}

// Engine names the engine for /ready and /status.
func (db *DB) Engine() string { return "sqlite" }

// Close closes both pools and releases the lock file.
func (db *DB) Close() error {
	var errs []error
	if db.closing != nil {
		close(db.closing)
		<-db.groupDone
		<-db.checkpointDone
	}
	if db.ws != nil {
		errs = append(errs, db.ws.close(), db.rs.close())
	}
	if db.read != nil {
		errs = append(errs, db.read.Close())
	}
	if db.write != nil {
		// Fold the WAL back into the main file so a clean stop leaves one file.
		_, _ = db.write.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		errs = append(errs, db.write.Close())
	}
	if db.lock != nil {
		errs = append(errs, db.lock.Close())
	}
	return errors.Join(errs...)
}

// Migrate applies every embedded migration not yet applied (in one transaction).
func (db *DB) Migrate(ctx context.Context) error {
	return db.migrateTo(ctx, math.MaxInt)
}

// migrateTo applies the migrations up to version last not yet applied, all in one
// transaction: a fresh database's whole schema commits once (start-up time), and a
// failed migration leaves the database as it was.
func (db *DB) migrateTo(ctx context.Context, last int) error {
	migrations, err := migrate.Migrations("sqlite")
	if err != nil {
		return err
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at DATETIME NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var applied int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&applied); err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	now := time.Now().UTC()
	for _, m := range migrations {
		if m.Version > last {
			break
		}
		if m.Version <= applied {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, now); err != nil {
			return fmt.Errorf("record migration %s: %w", m.Name, err)
		}
	}
	return tx.Commit()
}

// Ready reports an error unless the database answers and every migration is applied.
func (db *DB) Ready(ctx context.Context) error {
	migrations, err := migrate.Migrations("sqlite")
	if err != nil {
		return err
	}
	var applied int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&applied); err != nil {
		return levqor.Errorf(levqor.EUnavailable, "The database is not reachable or not migrated.")
	}
	if applied < len(migrations) {
		return levqor.Errorf(levqor.EUnavailable, "%d of %d migrations are applied.", applied, len(migrations))
	}
	return db.writable(ctx)
}

// ReadyMinFreeBytes is the free space the database's filesystem must have for /ready:
// below it the next checkpoint or WAL growth may fail with "disk full".
const ReadyMinFreeBytes = 16 << 20

// writable is readiness's write probe, bounded by ctx and writing nothing. BEGIN
// IMMEDIATE takes the write lock (the writer's _txlock) and is rolled back at once: it
// fails on a read-only file, an I/O error or a lock held past busy_timeout. Room to
// grow is read, not tried: a file at max_page_count with no free page cannot take one
// more row that needs a page, and a filesystem under ReadyMinFreeBytes soon cannot
// take the WAL. (A probe insert would not find a full file while its last page has room.)
func (db *DB) writable(ctx context.Context) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return classify(fmt.Errorf("ready write probe: %w", err))
	}
	defer func() { _ = tx.Rollback() }()
	var pages, maxPages, free int64
	for q, v := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA max_page_count": &maxPages, "PRAGMA freelist_count": &free} {
		if err := tx.QueryRowContext(ctx, q).Scan(v); err != nil {
			return classify(fmt.Errorf("ready probe %s: %w", q, err))
		}
	}
	if pages >= maxPages && free == 0 {
		return levqor.Errorf(levqor.EStorageFull, "The database file is at its page limit (%d pages).", maxPages)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(db.path), &st); err == nil && st.Bavail*uint64(st.Bsize) < ReadyMinFreeBytes {
		return levqor.Errorf(levqor.EStorageFull, "The database's filesystem has under %d MiB free.", ReadyMinFreeBytes>>20)
	}
	return nil
}

// classify keeps a database fault's code (unavailable, storage_full) for readiness.
func classify(err error) error {
	if f := fault.Classify(err); f != nil {
		return f
	}
	return &levqor.Error{Code: levqor.EUnavailable, Message: "The database does not take writes.", Err: err}
}

// SetMaxPageCount caps the file at n pages on the writer (PRAGMA max_page_count; 0
// only reads the cap) and returns the cap now in force. The fault tests fill the
// "disk" with it; operators may use it to bound the file.
func (db *DB) SetMaxPageCount(ctx context.Context, n int64) (int64, error) {
	q := "PRAGMA max_page_count"
	if n > 0 {
		q += "=" + strconv.FormatInt(n, 10)
	}
	var got int64
	if err := db.write.QueryRowContext(ctx, q).Scan(&got); err != nil {
		return 0, fmt.Errorf("max_page_count: %w", err)
	}
	return got, nil
}

// notFound translates sql.ErrNoRows into the application's not-found error.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return levqor.Errorf(levqor.ENotFound, "%s not found.", what)
	}
	return err
}
