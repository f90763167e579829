package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/levqor/levqor/store/storetest"
)

// TestBackupBesideServeUnderLoad runs `levqor backup` while `levqor serve` (holding the
// data dir's lock) takes intakes from 4 clients: the backup succeeds without the lock,
// `backup verify` passes it, and it holds every job acknowledged before the backup
// began. Then `levqor restore` is refused while the server runs; after the server
// stops it brings the backed-up jobs back and drops the ones written after the backup.
func TestBackupBesideServeUnderLoad(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	env := cleanEnv(append(jobsTestEnv(), "LEVQOR_DATA_DIR="+dataDir)...)
	srv := startServe(t, dataDir, jobsTestEnv()...)
	api := newAPIClient(srv)

	var (
		mu    sync.Mutex
		acked []string
		fail  error
	)
	stop := make(chan struct{})
	var load sync.WaitGroup
	for c := range 4 {
		load.Add(1)
		go func() {
			defer load.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"workflow":"backup-load","payload":{"n":"%d-%d"},"steps":[{"id":"echo","connector":"core","action":"echo","input":{"n":"{{payload.n}}"}}]}`, c, i)
				id, status, err := api.submit([]byte(body))
				mu.Lock()
				if err != nil || status != http.StatusAccepted {
					if fail == nil {
						fail = fmt.Errorf("intake: status %d, %v", status, err)
					}
				} else {
					acked = append(acked, id)
				}
				mu.Unlock()
			}
		}()
	}
	waitAcked := func(n int) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			k := len(acked)
			mu.Unlock()
			if k >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d intakes acknowledged in 30 s", k)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitAcked(300)
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()

	stdout, stderr, code := runLevqor(t, t.TempDir(), env, "backup")
	if code != 0 {
		t.Fatalf("levqor backup beside a running server: exit %d\n%s%s", code, stdout, stderr)
	}
	mu.Lock()
	atBackupEnd := len(acked)
	mu.Unlock()
	waitAcked(atBackupEnd + 50) // intake goes on after the backup
	close(stop)
	load.Wait()
	if fail != nil {
		t.Fatalf("intake failed during the backup: %v", fail)
	}
	mu.Lock()
	var after []string // acknowledged after the backup ended: certainly not in it
	after = append(after, acked[atBackupEnd:]...)
	mu.Unlock()

	backups, _ := filepath.Glob(filepath.Join(dataDir, "backups", "backup_*Z.db"))
	if len(backups) != 1 || !strings.Contains(stdout, backups[0]) {
		t.Fatalf("backups %v; stdout %q", backups, stdout)
	}
	file := backups[0]
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if out, errOut, code := runLevqor(t, t.TempDir(), env, "backup", "verify", file); code != 0 || !strings.HasPrefix(out, "ok ") || strings.Count(out, "\n") != 1 {
		t.Errorf("backup verify: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	ids := storetest.SQLiteJobIDs(t, file)
	missing := 0
	for _, id := range before {
		if !ids[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d jobs acknowledged before the backup are missing from it", missing, len(before))
	}
	t.Logf("%d acknowledged before the backup, %d in it, %d acknowledged after it", len(before), len(ids), len(after))

	// Restore is refused while the server holds the data dir, and changes nothing.
	out, errOut, code := runLevqor(t, t.TempDir(), env, "restore", file)
	if code == 0 || !strings.Contains(errOut, "in use") {
		t.Fatalf("restore while serving: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if status, body := srv.get(t, "/ready"); status != http.StatusOK {
		t.Errorf("the server after a refused restore: /ready %d %s", status, body)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not stop")
	}

	out, errOut, code = runLevqor(t, t.TempDir(), env, "restore", file)
	if code != 0 || !strings.Contains(out, "before-restore-") {
		t.Fatalf("restore: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	asides, _ := filepath.Glob(filepath.Join(dataDir, "levqor.db.before-restore-*Z"))
	if len(asides) != 1 {
		t.Errorf("the previous database was not kept aside: %v", asides)
	}
	// The restarted server serves the backed-up jobs, not the later ones.
	srv2 := startServe(t, dataDir, jobsTestEnv()...)
	api2 := newAPIClient(srv2)
	var j jobView
	if status := api2.getJSON(t, "/api/v1/jobs/"+before[len(before)-1], &j); status != http.StatusOK {
		t.Errorf("a job acknowledged before the backup: GET %d after restore", status)
	}
	if status := api2.getJSON(t, "/api/v1/jobs/"+after[len(after)-1], &j); status != http.StatusNotFound {
		t.Errorf("a job acknowledged after the backup: GET %d after restore, want 404", status)
	}
}

// TestBackupVerifyCorruptExits1: verify prints one FAIL line and exits 1 for a damaged
// file; a missing argument is a usage error (exit 2).
func TestBackupVerifyCorruptExits1(t *testing.T) {
	dir := t.TempDir()
	env := cleanEnv("LEVQOR_DATA_DIR=" + filepath.Join(dir, "data"))
	if _, errOut, code := runLevqor(t, dir, env, "migrate"); code != 0 {
		t.Fatal(errOut)
	}
	stdout, errOut, code := runLevqor(t, dir, env, "backup", "--to", filepath.Join(dir, "b"), "--keep", "2")
	if code != 0 {
		t.Fatalf("backup: %d %s", code, errOut)
	}
	file := strings.Fields(stdout)[1]
	file = strings.TrimSuffix(file, ":")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i := 4096; i < len(b) && i < 3*4096; i++ { // the second and third pages
		b[i] ^= 0x5a
	}
	corrupt := filepath.Join(dir, "corrupt.db")
	if err := os.WriteFile(corrupt, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, code := runLevqor(t, dir, env, "backup", "verify", corrupt)
	if code != 1 || !strings.HasPrefix(out, "FAIL ") || strings.Count(out, "\n") != 1 {
		t.Errorf("verify corrupt: exit %d, stdout %q; want exit 1 and one FAIL line", code, out)
	}
	if _, _, code := runLevqor(t, dir, env, "backup", "verify"); code != 2 {
		t.Errorf("verify without a file: exit %d, want 2", code)
	}
	if _, errOut, code := runLevqor(t, dir, cleanEnv("LEVQOR_DATA_DIR="+filepath.Join(dir, "data"), "LEVQOR_BACKUP_KEEP=0"), "backup"); code != 2 || !strings.Contains(errOut, "LEVQOR_BACKUP_KEEP") {
		t.Errorf("LEVQOR_BACKUP_KEEP=0: exit %d, stderr %q", code, errOut)
	}
}

// TestBackupPostgres: with pg_dump on PATH, `levqor backup` writes a pg_dump custom
// archive under the same naming scheme (0600); without it, it exits non-zero and says
// to use pg_dump -Fc rather than pretending.
func TestBackupPostgres(t *testing.T) {
	dbURL := freshPostgresDatabase(t)
	dir := t.TempDir()
	env := cleanEnv("LEVQOR_DATABASE_URL="+dbURL, "LEVQOR_DATA_DIR="+filepath.Join(dir, "data"))
	if _, errOut, code := runLevqor(t, dir, env, "migrate"); code != 0 {
		t.Fatal(errOut)
	}

	noPgDump := withoutPath(env)
	out, errOut, code := runLevqor(t, dir, noPgDump, "backup")
	if code == 0 || !strings.Contains(errOut, "pg_dump -Fc") {
		t.Errorf("without pg_dump: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	if _, err := exec.LookPath("pg_dump"); err != nil {
		t.Skip("pg_dump is not installed")
	}
	out, errOut, code = runLevqor(t, dir, env, "backup")
	if code != 0 {
		t.Fatalf("backup on PostgreSQL: exit %d\n%s%s", code, out, errOut)
	}
	dumps, _ := filepath.Glob(filepath.Join(dir, "data", "backups", "backup_*Z.dump"))
	if len(dumps) != 1 {
		t.Fatalf("dumps %v; stdout %q", dumps, out)
	}
	b, err := os.ReadFile(dumps[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "PGDMP") || !strings.Contains(string(b), "schema_migrations") {
		t.Errorf("the dump is not a pg_dump custom archive of Levqor's schema (%d bytes)", len(b))
	}
	if fi, _ := os.Stat(dumps[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("dump mode %v, want 0600", fi.Mode().Perm())
	}
	if u, _ := url.Parse(dbURL); u != nil {
		if pw, ok := u.User.Password(); ok && strings.Contains(out+errOut, pw) {
			t.Error("the output shows the database password")
		}
	}
}

// withoutPath replaces PATH with an empty directory's, so no pg_dump is found.
func withoutPath(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PATH=") {
			out = append(out, kv)
		}
	}
	return append(out, "PATH="+os.TempDir()+"/levqor-no-such-bin")
}

// freshPostgresDatabase creates a database of its own (pg_dump dumps a whole
// database; the shared test database's schemas come and go under other tests).
func freshPostgresDatabase(t *testing.T) string {
	t.Helper()
	base := os.Getenv("LEVQOR_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("PostgreSQL test skipped: set LEVQOR_TEST_POSTGRES_URL")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "levqor_backup_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// TestServeRunsMissedBackupAtStart: a serve whose latest backup slot (every minute, so
// the start of this minute) lies inside the misfire grace takes that backup at once,
// beside the server, and logs the newest backup's verification first.
func TestServeRunsMissedBackupAtStart(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	srv := startServe(t, dataDir, "LEVQOR_BACKUP_SCHEDULE=* * * * *", "LEVQOR_BACKUP_GRACE=15m", "LEVQOR_BACKUP_KEEP=3")
	srv.waitLog(t, "no backup yet", 20*time.Second)
	taken := srv.waitLog(t, "backup taken", 30*time.Second)
	backups, _ := filepath.Glob(filepath.Join(dataDir, "backups", "backup_*Z.db"))
	if len(backups) != 1 || taken["file"] != filepath.Base(backups[0]) {
		t.Fatalf("backups %v after %v", backups, taken)
	}
	if out, errOut, code := runLevqor(t, t.TempDir(), cleanEnv(), "backup", "verify", backups[0]); code != 0 {
		t.Errorf("backup verify: exit %d %s%s", code, out, errOut)
	}
	if status, _ := srv.get(t, "/ready"); status != http.StatusOK {
		t.Errorf("/ready %d while the backup ran", status)
	}
}
