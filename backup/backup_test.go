package backup_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/backup"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store/sqlite"
	"github.com/levqor/levqor/store/storetest"
)

// openStore opens and migrates a real Levqor SQLite database in a temp dir, as a server
// does (holding the lock file).
func openStore(t *testing.T) (*sqlite.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "levqor.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(t.Context()); err != nil {
		db.Close()
		t.Fatal(err)
	}
	return db, path
}

func newJob(i int) jobs.Job {
	now := time.Now().UTC()
	return jobs.Job{
		ID: fmt.Sprintf("job_%08d", i), Workflow: "backup-test", Status: jobs.StatusQueued, Priority: 1,
		RunAt: now, MaxAttempts: 3, TimeoutS: 60, Payload: json.RawMessage(`{"n":1}`),
		Steps: []jobs.StepState{}, Guardrails: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now,
	}
}

func insertJobs(t *testing.T, db *sqlite.DB, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, _, err := db.InsertJob(t.Context(), newJob(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// rawDB opens the SQLite file at path through a plain connection.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestBackupUnderWriteLoad backs up a database that a server holds (lock file taken)
// while a writer inserts jobs through the real store: the backup needs no lock, passes
// integrity_check, and holds every job whose insert was acknowledged before the backup
// began — which a copy of the main file without its WAL (the seed's backup) does not.
func TestBackupUnderWriteLoad(t *testing.T) {
	db, path := openStore(t)
	defer db.Close()
	// The WAL must hold acknowledged rows, so that a torn copy would miss them: the
	// store checkpoints in the background, and the load keeps the log busy.
	var (
		mu    sync.Mutex
		acked []string
		n     int
	)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			j := newJob(i)
			if _, _, err := db.InsertJob(ctx, j); err != nil {
				if ctx.Err() != nil {
					break
				}
				done <- err
				return
			}
			mu.Lock()
			acked = append(acked, j.ID)
			n++
			mu.Unlock()
		}
		done <- nil
	}()
	// Let the load build up, then back up while it goes on.
	for {
		mu.Lock()
		k := n
		mu.Unlock()
		if k >= 2000 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	dir := filepath.Join(filepath.Dir(path), "backups")
	res, err := backup.SQLite(t.Context(), path, dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // writes go on after the copy
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("the writer failed during the backup: %v", err)
	}
	mu.Lock()
	after := n
	mu.Unlock()

	info, err := backup.Verify(t.Context(), res.Path)
	if err != nil {
		t.Fatalf("the backup fails verification: %v", err)
	}
	if info.SchemaVersion < 1 {
		t.Errorf("schema version %d", info.SchemaVersion)
	}
	got := storetest.SQLiteJobIDs(t, res.Path)
	missing := 0
	for _, id := range before {
		if !got[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d jobs acknowledged before the backup began are missing from it", missing, len(before))
	}
	if len(got) >= after {
		t.Logf("the writer added no job after the backup (%d in backup, %d written)", len(got), after)
	}
	t.Logf("%d jobs acknowledged before, %d in the backup, %d written in all; %d bytes in %v", len(before), len(got), after, res.Size, res.Took)
}

// TestBackupModesAndName checks the published name, the file and directory modes,
// and that no temporary file is left behind.
func TestBackupModesAndName(t *testing.T) {
	db, path := openStore(t)
	insertJobs(t, db, 0, 10)
	defer db.Close()
	dir := filepath.Join(t.TempDir(), "nested", "backups")
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600))
	res, err := backup.SQLite(t.Context(), path, dir, at)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "backup_20250304T040607Z.db"); res.Path != want {
		t.Errorf("path %s, want %s (UTC)", res.Path, want)
	}
	fi, err := os.Stat(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("backup dir mode %v, want 0700", di.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("backup dir holds %d entries, want only the backup: %v", len(entries), entries)
	}
	if got := storetest.SQLiteJobIDs(t, res.Path); len(got) != 10 {
		t.Errorf("backup holds %d jobs, want 10", len(got))
	}
	// The same second again is refused, not overwritten.
	if _, err := backup.SQLite(t.Context(), path, dir, at); !errors.Is(err, backup.ErrExists) {
		t.Errorf("second backup in the same second: %v, want ErrExists", err)
	}
	// A missing database is an error, not an empty backup.
	if _, err := backup.SQLite(t.Context(), filepath.Join(t.TempDir(), "none.db"), dir, at.Add(time.Second)); err == nil {
		t.Error("backing up a missing database succeeded")
	}
}

// TestVerifyRejects: a damaged copy, a sound SQLite file that is not Levqor's, and a
// file that is not a database all fail Verify.
func TestVerifyRejects(t *testing.T) {
	db, path := openStore(t)
	insertJobs(t, db, 0, 3000) // enough pages that damage lands in table and index pages
	db.Close()
	dir := t.TempDir()
	res, err := backup.SQLite(t.Context(), path, dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Verify(t.Context(), res.Path); err != nil {
		t.Fatalf("the intact backup fails: %v", err)
	}

	// Damage: garbage over pages in the middle of the file (the header stays intact).
	b, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 3; i < len(b)/3+8192 && i < len(b); i++ {
		b[i] = byte(i * 7)
	}
	corrupt := filepath.Join(dir, "corrupt.db")
	if err := os.WriteFile(corrupt, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Verify(t.Context(), corrupt); !errors.Is(err, backup.ErrCorrupt) {
		t.Errorf("corrupt file: %v, want ErrCorrupt", err)
	}

	other := filepath.Join(dir, "other.db")
	odb, err := sql.Open("sqlite", other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := odb.Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	odb.Close()
	if _, err := backup.Verify(t.Context(), other); !errors.Is(err, backup.ErrNotLevqor) {
		t.Errorf("foreign database: %v, want ErrNotLevqor", err)
	}

	text := filepath.Join(dir, "text.db")
	if err := os.WriteFile(text, []byte("not a database at all, but long enough to have a header........................................................"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Verify(t.Context(), text); err == nil {
		t.Error("a text file passed verification")
	}
	// Verify leaves nothing beside what it checks.
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(res.Path + suffix); err == nil {
			t.Errorf("Verify left %s beside the backup", suffix)
		}
	}
}

// TestPrune: retention keeps the newest N, an age limit removes older ones but never
// the newest backup, and files that are not backups stay.
func TestPrune(t *testing.T) {
	now := time.Date(2025, 6, 30, 12, 0, 0, 0, time.UTC)
	mk := func(t *testing.T, dir string, ages ...time.Duration) {
		for _, a := range ages {
			ext := backup.SQLiteExt
			if a%(2*time.Hour) == time.Hour {
				ext = backup.PostgresExt
			}
			if err := os.WriteFile(filepath.Join(dir, backup.Name(now.Add(-a), ext)), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		for _, other := range []string{"notes.txt", "backup_junk.db", ".tmp-backup_20250101T000000Z.db-1"} {
			if err := os.WriteFile(filepath.Join(dir, other), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	day := 24 * time.Hour
	cases := []struct {
		name     string
		ages     []time.Duration
		keep     int
		maxAge   time.Duration
		wantLeft int
	}{
		{"count only", []time.Duration{0, day, 2 * day, 3 * day, 4 * day, 5*day + time.Hour}, 4, 0, 4},
		{"fewer than keep", []time.Duration{0, day}, 14, 0, 2},
		{"age within count", []time.Duration{0, day, 2 * day, 10 * day, 20 * day}, 14, 7 * day, 3},
		{"age never removes the newest", []time.Duration{40 * day, 50 * day}, 14, 7 * day, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			mk(t, dir, c.ages...)
			removed, err := backup.Prune(dir, c.keep, c.maxAge, now)
			if err != nil {
				t.Fatal(err)
			}
			left, _ := backup.List(dir)
			if len(left) != c.wantLeft || len(removed) != len(c.ages)-c.wantLeft {
				t.Fatalf("left %d, removed %d; want %d left", len(left), len(removed), c.wantLeft)
			}
			// What is left is the newest.
			for i, b := range left {
				if want := now.Add(-c.ages[i]); !b.Time.Equal(want) {
					t.Errorf("kept #%d is %v, want %v", i, b.Time, want)
				}
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != c.wantLeft+3 {
				t.Errorf("%d entries left, want the %d backups and the 3 other files", len(entries), c.wantLeft)
			}
		})
	}
	if _, err := backup.Prune(t.TempDir(), 0, 0, now); err == nil {
		t.Error("keep 0 accepted")
	}
}

// TestRestoreRoundTrip: restore is refused while a server holds the database, and
// afterwards brings back exactly the backed-up rows, keeps the replaced database aside
// (with the rows written after the backup) and leaves no stale -wal or -shm.
func TestRestoreRoundTrip(t *testing.T) {
	db, path := openStore(t)
	insertJobs(t, db, 0, 100)
	dir := filepath.Join(filepath.Dir(path), "backups")
	res, err := backup.SQLite(t.Context(), path, dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	insertJobs(t, db, 100, 150) // after the backup

	now := time.Date(2025, 7, 1, 2, 3, 4, 0, time.UTC)
	if _, err := backup.Restore(t.Context(), path, res.Path, now); !errors.Is(err, backup.ErrInUse) {
		t.Fatalf("restore while the database is held: %v, want ErrInUse", err)
	}
	if got := len(storetest.SQLiteJobIDs(t, path)); got != 150 {
		t.Fatalf("the refused restore changed the database: %d jobs", got)
	}
	// The server stops (TestRestoreKeepsUncheckpointedWAL covers one that was killed).
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// A damaged backup is refused before anything changes.
	bad := filepath.Join(t.TempDir(), "bad.db")
	os.WriteFile(bad, []byte("garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage"), 0o600)
	if _, err := backup.Restore(t.Context(), path, bad, now); err == nil {
		t.Fatal("a garbage file was restored")
	}

	r, err := backup.Restore(t.Context(), path, res.Path, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := path + ".before-restore-20250701T020304Z"; r.Aside != want {
		t.Errorf("aside %q, want %q", r.Aside, want)
	}
	if got := len(storetest.SQLiteJobIDs(t, r.Aside)); got != 150 {
		t.Errorf("the database kept aside has %d jobs, want 150", got)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(path + suffix); err == nil {
			t.Errorf("stale %s left beside the restored database", suffix)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("restored database mode %v, want 0600", fi.Mode().Perm())
	}
	// A server opens it and sees the backed-up rows.
	db2, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if err := db2.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := db2.GetJob(t.Context(), "job_00000099"); err != nil {
		t.Errorf("a backed-up job is missing after restore: %v", err)
	}
	if _, err := db2.GetJob(t.Context(), "job_00000100"); levqor.ErrorCode(err) != levqor.ENotFound {
		t.Errorf("a job written after the backup is present after restore: %v", err)
	}
}

// TestRestoreKeepsUncheckpointedWAL: a database whose -wal holds committed rows (a
// server that was killed) is kept aside whole: the restore must not drop the log of
// the database it replaces, nor replay it into the restored one.
func TestRestoreKeepsUncheckpointedWAL(t *testing.T) {
	db, path := openStore(t)
	insertJobs(t, db, 0, 20)
	db.Close()
	res, err := backup.SQLite(t.Context(), path, t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Commit rows that stay in the WAL: a plain connection with checkpoints off,
	// copied aside mid-way (as a crashed process would leave the files).
	w, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	for i := 20; i < 30; i++ {
		if _, err := w.Exec(`INSERT INTO jobs (id, owner_id, workflow, status, priority, run_at, max_attempts, timeout_s, payload, steps, created_at, updated_at)
			VALUES (?, '', 'x', 'queued', 1, datetime('now'), 1, 1, '{}', '[]', datetime('now'), datetime('now'))`, fmt.Sprintf("job_%08d", i)); err != nil {
			t.Fatal(err)
		}
	}
	crashed := t.TempDir()
	for _, s := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + s)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(crashed, "levqor.db"+s), b, 0o600)
	}
	w.Close()
	crashedDB := filepath.Join(crashed, "levqor.db")
	if fi, err := os.Stat(crashedDB + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("the crashed copy has no WAL to keep: %v", err)
	}

	r, err := backup.Restore(t.Context(), crashedDB, res.Path, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := len(storetest.SQLiteJobIDs(t, crashedDB)); got != 20 {
		t.Errorf("restored database has %d jobs, want the backup's 20", got)
	}
	if got := len(storetest.SQLiteJobIDs(t, r.Aside)); got != 30 {
		t.Errorf("the database kept aside has %d jobs, want 30 (its WAL included)", got)
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
