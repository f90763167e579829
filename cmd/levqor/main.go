// Command levqor is the Levqor service: one binary that serves the API (the
// default), migrates its database and reports its version.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: levqor [command]

commands:
  serve     migrate the database and serve the API (default)
  migrate   apply the embedded database migrations and exit
  keys      create, list, revoke and roll API keys (levqor keys for help)
  email     send a test email through Resend (levqor email test --to ADDRESS)
  backup    copy the database into the data dir's backups/ beside a running server
            (levqor backup [--to DIR] [--keep N] [--max-age D]; levqor backup verify FILE)
  billing   compare Stripe with Levqor's billing records (levqor billing reconcile --since 7d [--mode test|live] [--fix])
  restore   replace the SQLite database with a backup; the server must be stopped (levqor restore FILE)
  selftest  check a running server from outside, one line per check; exit 0 when all pass
            (levqor selftest --url URL [--key K] [--origin O] [--quick])
  version   print the version and exit

Configuration comes from LEVQOR_* environment variables; see .env.example.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprint(os.Stderr, usage)
		}
		fmt.Fprintln(os.Stderr, "levqor:", err)
		os.Exit(exitCode(err))
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// run executes one command; ctx ends on SIGINT or SIGTERM.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout)
	case "migrate":
		return migrate(ctx, getenv, stdout)
	case "keys":
		return cliError(keysCommand(ctx, args, getenv, stdout))
	case "email":
		return emailCommand(ctx, args, getenv, stdout)
	case "backup":
		return backupCommand(ctx, args, getenv, stdout)
	case "billing":
		return billingCommand(ctx, args, getenv, stdout)
	case "restore":
		return restoreCommand(ctx, args, getenv, stdout)
	case "selftest":
		return selftestCommand(ctx, args, stdout)
	case "version", "-version", "--version":
		return printVersion(stdout)
	case "help", "-h", "-help", "--help":
		_, err := fmt.Fprint(stdout, usage)
		return err
	}
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}
