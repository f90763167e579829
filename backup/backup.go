// Package backup takes, checks, prunes and restores copies of Levqor's database: online,
// consistent SQLite copies (VACUUM INTO) taken beside a running server, pg_dump archives
// for PostgreSQL, and the daily schedule that runs them (docs/adr/0012-backups.md).
package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Defaults of the backup settings.
const (
	// DefaultKeep is how many backups retention keeps: two weeks of daily backups.
	DefaultKeep = 14
	// DefaultSchedule is when the daily backup runs: 00:00 UTC, the seed's slot.
	DefaultSchedule = "0 0 * * *"
	// DefaultMisfireGrace is how late a missed slot may still run at start-up.
	DefaultMisfireGrace = 15 * time.Minute
)

// Modes of what a backup creates: a backup holds every tenant's data, key hashes and
// sealed secrets, exactly like the database (store/sqlite's FileMode and DirMode).
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// Names: backup_20250101T000000Z.db (SQLite) or .dump (pg_dump -Fc), in UTC so that
// names sort by time and retention can read a backup's age from its name.
const (
	namePrefix = "backup_"
	timeLayout = "20060102T150405Z"
	// SQLiteExt and PostgresExt end the names of SQLite copies and pg_dump archives.
	SQLiteExt   = ".db"
	PostgresExt = ".dump"
)

// sqliteBusyTimeout is how long a backup's read waits on SQLite's locks: in WAL mode a
// reader waits only while a checkpoint resets the log, which takes milliseconds.
const sqliteBusyTimeout = 5 * time.Second

// ErrExists is returned when a backup of the same second already exists: backups are
// never overwritten.
var ErrExists = errors.New("a backup with this name already exists")

// Name returns the file name of a backup taken at t with extension ext.
func Name(t time.Time, ext string) string {
	return namePrefix + t.UTC().Format(timeLayout) + ext
}

// parseName returns the time a backup's file name records; ok is false for any other file.
func parseName(name string) (t time.Time, ok bool) {
	rest, found := strings.CutPrefix(name, namePrefix)
	if !found {
		return time.Time{}, false
	}
	stamp, ext, found := strings.Cut(rest, ".")
	if !found || ("."+ext != SQLiteExt && "."+ext != PostgresExt) {
		return time.Time{}, false
	}
	t, err := time.Parse(timeLayout, stamp)
	return t, err == nil
}

// Result describes one backup taken.
type Result struct {
	Path string        // the backup file
	Size int64         // its size in bytes
	Took time.Duration // how long taking, syncing and checking it took
}

// SQLite copies the SQLite database at dbPath into dir as Name(now, SQLiteExt). It
// reads through SQLite only (no lock file), so it runs beside a serving Levqor: VACUUM
// INTO copies one read transaction's snapshot, which in WAL mode never blocks the
// writer, so every transaction committed before it began is in the copy. The copy is
// written to a temporary file, synced, checked with PRAGMA integrity_check and only
// then renamed into place, so a file with a backup's name is always a complete,
// checked backup.
func SQLite(ctx context.Context, dbPath, dir string, now time.Time) (Result, error) {
	start := time.Now()
	if _, err := os.Stat(dbPath); err != nil {
		// Opening a missing file would create an empty database and back that up.
		return Result{}, fmt.Errorf("backup: database: %w", err)
	}
	return publish(dir, SQLiteExt, now, start, func(tmp *os.File) error {
		// SQLite writes into the empty file and keeps its mode (FileMode), so the copy
		// is never readable by others, even briefly.
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if err := vacuumInto(ctx, dbPath, tmp.Name()); err != nil {
			return err
		}
		if err := syncFile(tmp.Name()); err != nil {
			return fmt.Errorf("backup: sync copy: %w", err)
		}
		if _, err := Verify(ctx, tmp.Name()); err != nil {
			return fmt.Errorf("backup: the copy failed its check: %w", err)
		}
		return nil
	})
}

// publish takes a backup named for now into dir: it creates an empty temporary file
// there with FileMode, lets write fill it (synced and checked), then publishes it
// with a hard link, not a rename, so that it fails instead of replacing a backup that
// appeared under the same name meanwhile, and syncs dir.
func publish(dir, ext string, now, start time.Time, write func(tmp *os.File) error) (Result, error) {
	final := filepath.Join(dir, Name(now, ext))
	if _, err := os.Lstat(final); err == nil {
		return Result{}, fmt.Errorf("backup %s: %w", final, ErrExists)
	}
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return Result{}, fmt.Errorf("backup: create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+Name(now, ext)+"-*")
	if err != nil {
		return Result{}, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful link, only the temporary name goes
	defer tmp.Close()
	if err := tmp.Chmod(FileMode); err != nil {
		return Result{}, fmt.Errorf("backup: %w", err)
	}
	if err := write(tmp); err != nil {
		return Result{}, err
	}
	if err := os.Link(tmp.Name(), final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return Result{}, fmt.Errorf("backup %s: %w", final, ErrExists)
		}
		return Result{}, fmt.Errorf("backup: publish: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return Result{}, fmt.Errorf("backup: sync %s: %w", dir, err)
	}
	fi, err := os.Stat(final)
	if err != nil {
		return Result{}, fmt.Errorf("backup: %w", err)
	}
	return Result{Path: final, Size: fi.Size(), Took: time.Since(start)}, nil
}

// vacuumInto writes a consistent, compacted copy of the database at src into the
// empty file dst through a read-only connection.
func vacuumInto(ctx context.Context, src, dst string) error {
	db, err := sql.Open("sqlite", readOnlyDSN(src, false))
	if err != nil {
		return fmt.Errorf("backup: open database: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		return fmt.Errorf("backup: copy database: %w", err)
	}
	return db.Close()
}

// readOnlyDSN opens a SQLite file read-only: mode=ro never creates the file or
// writes to it. immutable tells SQLite nobody changes the file (a finished backup),
// so it takes no locks and creates no -wal or -shm beside it.
func readOnlyDSN(path string, immutable bool) string {
	q := url.Values{}
	q.Set("mode", "ro")
	if immutable {
		q.Set("immutable", "1")
	}
	return dsn(path, q)
}

// dsn builds a URI filename with SQLite's busy timeout. The path goes in escaped, so
// that a '?' or '#' in it stays part of the name.
func dsn(path string, q url.Values) string {
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Info is what Verify learnt about a backup.
type Info struct {
	Path          string
	SchemaVersion int   // the newest migration applied to it
	Size          int64 // bytes
}

// ErrNotLevqor is returned by Verify for a sound SQLite file without Levqor's schema.
var ErrNotLevqor = errors.New("not a Levqor database (no schema_migrations or jobs table)")

// Verify opens the SQLite file at path read-only, runs PRAGMA integrity_check and
// checks that it holds Levqor's schema. It changes nothing, not even beside the file.
func Verify(ctx context.Context, path string) (Info, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Info{}, err
	}
	if !fi.Mode().IsRegular() {
		return Info{}, fmt.Errorf("%s is not a regular file", path)
	}
	info := Info{Path: path, Size: fi.Size()}
	db, err := sql.Open("sqlite", readOnlyDSN(path, true))
	if err != nil {
		return info, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := integrityCheck(ctx, db); err != nil {
		return info, err
	}
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('schema_migrations', 'jobs')`).Scan(&tables); err != nil {
		return info, fmt.Errorf("read schema: %w", err)
	}
	if tables != 2 {
		return info, ErrNotLevqor
	}
	var version sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&version); err != nil {
		return info, fmt.Errorf("read schema version: %w", err)
	}
	if !version.Valid {
		return info, ErrNotLevqor
	}
	info.SchemaVersion = int(version.Int64)
	return info, nil
}

// ErrCorrupt is returned when PRAGMA integrity_check finds damage.
var ErrCorrupt = errors.New("integrity check failed")

// maxIntegrityLines bounds how many of integrity_check's complaints an error quotes.
const maxIntegrityLines = 5

func integrityCheck(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		// A file that is not a database at all fails here ("file is not a database").
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if len(lines) < maxIntegrityLines {
			lines = append(lines, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if len(lines) != 1 || lines[0] != "ok" {
		return fmt.Errorf("%w: %s", ErrCorrupt, strings.Join(lines, "; "))
	}
	return nil
}

// Backup is one backup file found in a directory.
type Backup struct {
	Path string
	Time time.Time // from its name
}

// List returns the backups in dir (files named like Name's), newest first. A missing
// directory has none.
func List(dir string) ([]Backup, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	var out []Backup
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if t, ok := parseName(e.Name()); ok {
			out = append(out, Backup{Path: filepath.Join(dir, e.Name()), Time: t})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out, nil
}

// Prune applies retention to dir and returns the files it removed. The newest keep
// backups are kept; of those, any older than maxAge (when maxAge > 0) is removed too,
// except the newest of all, which no age limit removes (a server that could not back
// up for a while must not end with none). Ages come from the names, not from file
// times, which copying changes. Other files in dir are never touched.
func Prune(dir string, keep int, maxAge time.Duration, now time.Time) ([]string, error) {
	if keep < 1 {
		return nil, fmt.Errorf("prune: keep must be at least 1, got %d", keep)
	}
	all, err := List(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for i, b := range all {
		tooMany := i >= keep
		tooOld := maxAge > 0 && i > 0 && now.Sub(b.Time) > maxAge
		if !tooMany && !tooOld {
			continue
		}
		if err := os.Remove(b.Path); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, b.Path)
	}
	return removed, errors.Join(errs...)
}

// LatestResult is what VerifyLatest found, for a log line.
type LatestResult struct {
	Backup Backup // zero when there is none
	Info   Info
	Age    time.Duration
	Took   time.Duration
}

// ErrNoBackup is returned by VerifyLatest when dir holds no backup.
var ErrNoBackup = errors.New("no backup found")

// VerifyLatest checks the newest SQLite backup in dir (Verify), as a server does at
// start-up: an operator learns from the log that the backups are usable before
// needing one.
func VerifyLatest(ctx context.Context, dir string, now time.Time) (LatestResult, error) {
	start := time.Now()
	all, err := List(dir)
	if err != nil {
		return LatestResult{}, err
	}
	for _, b := range all {
		if filepath.Ext(b.Path) != SQLiteExt {
			continue
		}
		info, err := Verify(ctx, b.Path)
		return LatestResult{Backup: b, Info: info, Age: now.Sub(b.Time), Took: time.Since(start)}, err
	}
	return LatestResult{Took: time.Since(start)}, ErrNoBackup
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
