package sqlite_test

import (
	"context"
	"database/sql/driver"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	moderncsqlite "modernc.org/sqlite"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/store/sqlite"
	"github.com/levqor/levqor/store/storetest"
	"github.com/levqor/levqor/users"
)

func TestMain(m *testing.M) {
	// The driver reads its hooks without a lock, so they must be in place before it
	// opens any connection.
	moderncsqlite.RegisterConnectionHook(opened.record)
	os.Exit(m.Run())
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.OpenSQLite)
}

// open opens a store in a fresh file and closes it when the test ends.
func open(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestOpenLocksTheFile(t *testing.T) {
	ctx := t.Context()
	// A directory that does not exist yet: Open creates it.
	path := filepath.Join(t.TempDir(), "data", "nested", "levqor.db")

	first, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	firstOpen := true
	t.Cleanup(func() {
		if firstOpen {
			first.Close()
		}
	})
	if err := first.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}

	second, err := sqlite.Open(ctx, path)
	if err == nil {
		second.Close()
		t.Fatalf("second Open of %s while the first is open: no error, want an in-use error", path)
	}
	if !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), path) {
		t.Errorf("second Open: error %q, want one saying %s is in use", err, path)
	}
	// The failed Open must leave the first one working.
	now := time.Now().UTC()
	u := users.User{ID: "usr_lock", Email: "lock@example.com", CreatedAt: now, UpdatedAt: now}
	_, created, err := first.CreateUserIfAbsent(ctx, u)
	if err != nil || !created {
		t.Fatalf("CreateUserIfAbsent on the first store after the failed Open: created=%v err=%v", created, err)
	}

	firstOpen = false
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	third := open(t, path)
	if err := third.Ready(ctx); err != nil {
		t.Errorf("Ready after reopening: %v", err)
	}
	if _, err := third.GetUser(ctx, u.ID); err != nil {
		t.Errorf("GetUser after reopening: %v", err)
	}
}

func TestReadyBeforeMigrate(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "levqor.db"))
	err := db.Ready(t.Context())
	if code := levqor.ErrorCode(err); code != levqor.EUnavailable {
		t.Fatalf("Ready before Migrate: code %q (err %v), want %q", code, err, levqor.EUnavailable)
	}
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if err := db.Ready(t.Context()); err != nil {
		t.Fatalf("Ready after Migrate: %v", err)
	}
}

// TestPragmas reads the settings of the store's own connections, writer and
// readers, as the driver hands them out (see connLog).
func TestPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "levqor.db")
	db := open(t, path)
	ctx := t.Context()
	if err := db.Migrate(ctx); err != nil { // the writer
		t.Fatalf("Migrate: %v", err)
	}
	if err := db.Ready(ctx); err != nil { // a reader
		t.Fatalf("Ready: %v", err)
	}

	conns := opened.of(path)
	want := map[string]string{
		"journal_mode": "wal",
		"foreign_keys": "1",
		"synchronous":  "1", // NORMAL, the durability dsn in sqlite.go documents
		"busy_timeout": "5000",
		"temp_store":   "2", // MEMORY: statement journals make no system calls
	}
	writers, readers := 0, 0
	for i, c := range conns {
		for name, v := range want {
			if c[name] != v {
				t.Errorf("connection %d (query_only=%s): %s = %q, want %q", i, c["query_only"], name, c[name], v)
			}
		}
		switch c["query_only"] {
		case "0":
			writers++
			if c["wal_autocheckpoint"] != "0" { // the checkpointer checkpoints (checkpoint.go)
				t.Errorf("writable connection %d: wal_autocheckpoint = %q, want 0", i, c["wal_autocheckpoint"])
			}
		case "1":
			readers++
		}
	}
	if writers == 0 || readers == 0 {
		t.Errorf("saw %d writable and %d query-only connections to %s, want at least one of each", writers, readers, path)
	}
}

// opened records the pragmas of every connection the "sqlite" driver opens in
// this test binary. A driver hook sees the store's own connections after the
// DSN's settings are applied, which a second connection of the test's cannot
// (foreign_keys, synchronous and busy_timeout are per connection), and needs no
// accessor on sqlite.DB.
var opened connLog

type connLog struct {
	mu    sync.Mutex
	conns map[string][]map[string]string // by DSN
}

var loggedPragmas = []string{"journal_mode", "foreign_keys", "synchronous", "busy_timeout", "temp_store", "query_only", "wal_autocheckpoint"}

func (l *connLog) record(conn moderncsqlite.ExecQuerierContext, dsn string) error {
	got := map[string]string{}
	for _, name := range loggedPragmas {
		rows, err := conn.QueryContext(context.Background(), "PRAGMA "+name, nil)
		if err != nil {
			return fmt.Errorf("PRAGMA %s: %w", name, err)
		}
		v := make([]driver.Value, 1)
		err = rows.Next(v)
		rows.Close()
		if err != nil {
			return fmt.Errorf("PRAGMA %s: %w", name, err)
		}
		got[name] = fmt.Sprint(v[0])
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns == nil {
		l.conns = map[string][]map[string]string{}
	}
	l.conns[dsn] = append(l.conns[dsn], got)
	return nil
}

// of returns the pragmas of the connections opened to the file at path.
func (l *connLog) of(path string) []map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]string
	for dsn, conns := range l.conns {
		if p, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?"); p == path {
			out = append(out, conns...)
		}
	}
	return out
}

// TestOpenCreatesPrivateFiles: the data directory Open creates is 0700 and the
// database file, its -wal and -shm and the lock file are 0600; a database left 0644
// by an older version is narrowed when opened.
func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "levqor.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(t.Context()); err != nil { // writes: the -wal and -shm exist now
		t.Fatal(err)
	}
	wantMode := func(p string, want os.FileMode) {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("stat %s: %v", filepath.Base(p), err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", filepath.Base(p), got, want)
		}
	}
	wantMode(dir, 0o700)
	for _, p := range []string{path, path + "-wal", path + "-shm", path + ".lock"} {
		wantMode(p, 0o600)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err = sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wantMode(path, 0o600)
}
