package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"
)

// ErrNoPgDump is returned by Postgres when pg_dump is not installed: Levqor does not
// pretend to back up PostgreSQL itself.
var ErrNoPgDump = errors.New("pg_dump is not on PATH: back up PostgreSQL with `pg_dump -Fc` (or your provider's snapshots)")

// maxPgDumpStderr bounds how much of pg_dump's complaint an error quotes.
const maxPgDumpStderr = 2 << 10

// Postgres runs pg_dump -Fc (the custom format pg_restore reads) for the database at
// databaseURL into dir as Name(now, PostgresExt), through a temporary file renamed into
// place once pg_dump succeeded. The password travels in PGPASSWORD, never on the
// command line, where other users could read it.
func Postgres(ctx context.Context, databaseURL, dir string, now time.Time) (Result, error) {
	start := time.Now()
	pgDump, err := exec.LookPath("pg_dump")
	if err != nil {
		return Result{}, ErrNoPgDump
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		return Result{}, errors.New("backup: LEVQOR_DATABASE_URL is not a valid URL") // the URL may hold a password: not quoted
	}
	env := os.Environ()
	if pw, ok := u.User.Password(); ok {
		env = append(env, "PGPASSWORD="+pw)
		u.User = url.User(u.User.Username())
	}
	return publish(dir, PostgresExt, now, start, func(tmp *os.File) error {
		cmd := exec.CommandContext(ctx, pgDump, "--format=custom", "--no-password", "--dbname="+u.String())
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = tmp, &stderr
		if err := cmd.Run(); err != nil {
			msg := strings.TrimSpace(stderr.String())
			if len(msg) > maxPgDumpStderr {
				msg = msg[:maxPgDumpStderr] + "…"
			}
			return fmt.Errorf("backup: pg_dump: %w: %s", err, msg)
		}
		if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
			return fmt.Errorf("backup: sync dump: %w", err)
		}
		return nil
	})
}
