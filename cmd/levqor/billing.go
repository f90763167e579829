package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/levqor/levqor/config"
	"github.com/levqor/levqor/store"
)

const billingUsage = `usage:
  levqor billing reconcile [--since 7d] [--mode test|live] [--fix]

Compares Stripe's subscriptions and invoices created in the window (and the accounts changed
in it) with Levqor's records, prints each mismatch and RECONCILE_STATUS=OK|WARN, and exits
0 (OK) or 1 (WARN). --mode refuses a LEVQOR_STRIPE_SECRET_KEY of the other mode; --fix writes
Stripe's subscription state to the accounts that differ.`

// billingCommand is `levqor billing reconcile …`.
func billingCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "reconcile" {
		return usageError{"billing needs a subcommand\n" + billingUsage}
	}
	fs := flag.NewFlagSet("billing reconcile", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	sinceText := fs.String("since", "7d", "the window: a number of days (7d) or a Go duration (36h)")
	mode := fs.String("mode", "", "test or live: refuse a key of the other mode")
	fix := fs.Bool("fix", false, "apply Stripe's subscription state to the accounts that differ")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error() + "\n" + billingUsage}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q\n%s", fs.Args(), billingUsage)}
	}
	window, err := parseWindow(*sinceText)
	if err != nil {
		return usageError{err.Error() + "\n" + billingUsage}
	}
	if *mode != "" && *mode != "test" && *mode != "live" {
		return usageError{"--mode wants test or live\n" + billingUsage}
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	if cfg.StripeSecretKey == "" {
		return fmt.Errorf("billing reconcile: LEVQOR_STRIPE_SECRET_KEY is not set")
	}
	st, err := store.OpenShared(ctx, storeOptions(cfg))
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	svc, err := newBilling(cfg, st, nil)
	if err != nil {
		return err
	}
	if *mode != "" && svc.Mode() != *mode {
		return fmt.Errorf("billing reconcile: --mode %s, but LEVQOR_STRIPE_SECRET_KEY is a %s key", *mode, svc.Mode())
	}
	rep, err := svc.Reconcile(ctx, time.Now().Add(-window), *fix)
	if err != nil {
		return cliError(err)
	}
	for _, m := range rep.Mismatches {
		fmt.Fprintln(stdout, m.String())
	}
	status := "OK"
	if !rep.OK() {
		status = "WARN"
	}
	fmt.Fprintf(stdout, "mode=%s subscriptions=%d invoices=%d mismatches=%d\nRECONCILE_STATUS=%s\n",
		svc.Mode(), rep.Subscriptions, rep.Invoices, len(rep.Mismatches), status)
	if status != "OK" {
		return checkFailed{fmt.Errorf("billing reconcile: %d mismatch(es) left", len(rep.Mismatches))}
	}
	return nil
}

// maxWindow bounds --since: Stripe lists are paginated, and a year is already a long walk.
const maxWindow = 366 * 24 * time.Hour

// parseWindow reads 7d (days) or a Go duration.
func parseWindow(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("--since %q: want days such as 7d or a duration such as 36h", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("--since %q: want days such as 7d or a duration such as 36h", s)
		}
	}
	if d <= 0 || d > maxWindow {
		return 0, fmt.Errorf("--since %q: want more than 0 and at most 366d", s)
	}
	return d, nil
}
