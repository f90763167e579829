package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/levqor/levqor/backup"
	"github.com/levqor/levqor/config"
)

// Backup settings read here until they join the configuration table.
const (
	envBackupKeep   = "LEVQOR_BACKUP_KEEP"    // how many backups retention keeps (default backup.DefaultKeep)
	envBackupMaxAge = "LEVQOR_BACKUP_MAX_AGE" // removes backups older than this, the newest excepted (default: no age limit)
	// maxBackupKeep bounds LEVQOR_BACKUP_KEEP and --keep: about 27 years of daily backups.
	maxBackupKeep = 10_000
)

// checkFailed is a failed check (backup verify): the command exits 1, not 2, so that
// scripts can tell "the file is bad" from "the command was wrong".
type checkFailed struct{ err error }

func (e checkFailed) Error() string { return e.err.Error() }
func (e checkFailed) Unwrap() error { return e.err }

// exitCode is the process's exit status for an error run returned.
func exitCode(err error) int {
	var cf checkFailed
	if errors.As(err, &cf) {
		return 1
	}
	return 2
}

// backupCommand is `levqor backup [--to DIR] [--keep N] [--max-age D]` and
// `levqor backup verify FILE`.
func backupCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "verify" {
		return backupVerify(ctx, args[1:], stdout)
	}
	keep, maxAge, err := retentionFromEnv(getenv)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	to := fs.String("to", "", "directory of the backups (default: the data dir's backups/)")
	fs.IntVar(&keep, "keep", keep, "how many backups to keep")
	fs.DurationVar(&maxAge, "max-age", maxAge, "remove backups older than this, the newest excepted (0: no limit)")
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("backup: %v", err)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("backup takes no arguments besides verify, got %q", fs.Args())}
	}
	if keep < 1 || keep > maxBackupKeep {
		return usageError{fmt.Sprintf("backup: --keep must be 1 to %d, got %d", maxBackupKeep, keep)}
	}
	if maxAge < 0 {
		return usageError{"backup: --max-age must not be negative"}
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	dir := *to
	if dir == "" {
		dir = filepath.Join(cfg.DataDir, "backups")
	}

	now := time.Now()
	var res backup.Result
	switch cfg.Engine {
	case config.SQLite:
		res, err = backup.SQLite(ctx, cfg.SQLitePath, dir, now)
	case config.Postgres:
		res, err = backup.Postgres(ctx, cfg.DatabaseURL, dir, now)
	default:
		err = fmt.Errorf("backup: unknown database engine %q", cfg.Engine)
	}
	if err != nil {
		return err
	}
	removed, err := backup.Prune(dir, keep, maxAge, now)
	if _, werr := fmt.Fprintf(stdout, "backup %s: %d bytes in %v; %d old backups removed\n",
		res.Path, res.Size, res.Took.Round(time.Millisecond), len(removed)); werr != nil {
		return werr
	}
	if err != nil {
		return fmt.Errorf("backup taken, but retention failed: %w", err)
	}
	return nil
}

// retentionFromEnv reads LEVQOR_BACKUP_KEEP and LEVQOR_BACKUP_MAX_AGE.
func retentionFromEnv(getenv func(string) string) (keep int, maxAge time.Duration, err error) {
	keep = backup.DefaultKeep
	if v := getenv(envBackupKeep); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxBackupKeep {
			return 0, 0, fmt.Errorf("%s: want a whole number from 1 to %d, got %q", envBackupKeep, maxBackupKeep, v)
		}
		keep = n
	}
	if v := getenv(envBackupMaxAge); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, 0, fmt.Errorf("%s: want a duration such as 720h, got %q", envBackupMaxAge, v)
		}
		maxAge = d
	}
	return keep, maxAge, nil
}

// backupVerify is `levqor backup verify FILE`: one line, exit 0 when the file is a
// sound Levqor database, 1 when it is not.
func backupVerify(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return usageError{"usage: levqor backup verify FILE"}
	}
	info, err := backup.Verify(ctx, args[0])
	if err != nil {
		fmt.Fprintf(stdout, "FAIL %s: %v\n", args[0], err)
		return checkFailed{fmt.Errorf("backup verify: %s: %w", args[0], err)}
	}
	_, err = fmt.Fprintf(stdout, "ok %s: integrity ok, schema version %d, %d bytes\n", info.Path, info.SchemaVersion, info.Size)
	return err
}

// restoreCommand is `levqor restore FILE`: it replaces the SQLite database with a
// backup while no server runs.
func restoreCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) != 1 {
		return usageError{"usage: levqor restore FILE"}
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	if cfg.Engine != config.SQLite {
		return errors.New("restore: the database is PostgreSQL: restore a pg_dump -Fc archive with pg_restore")
	}
	r, err := backup.Restore(ctx, cfg.SQLitePath, args[0], time.Now())
	if err != nil {
		return err
	}
	aside := "no database was there before"
	if r.Aside != "" {
		aside = "the previous database is kept as " + r.Aside
	}
	_, err = fmt.Fprintf(stdout, "restored %s (schema version %d) into %s; %s\n", args[0], r.Info.SchemaVersion, cfg.SQLitePath, aside)
	return err
}
