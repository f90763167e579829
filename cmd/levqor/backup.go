package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/levqor/levqor/backup"
	"github.com/levqor/levqor/config"
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
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	keep, maxAge := cfg.BackupKeep, cfg.BackupMaxAge
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
	if keep < 1 || keep > config.MaxBackupKeep {
		return usageError{fmt.Sprintf("backup: --keep must be 1 to %d, got %d", config.MaxBackupKeep, keep)}
	}
	if maxAge < 0 {
		return usageError{"backup: --max-age must not be negative"}
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
