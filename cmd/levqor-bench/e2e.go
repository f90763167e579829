package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	// e2eTarget is the end-to-end target on SQLite: jobs taken from intake to
	// succeeded per second, over the window.
	e2eTarget = 5000.0 // single intakes on SQLite, issue #18
	// e2eSampleEvery is how often the admin status is read during the window, to show
	// whether the completion rate holds for the whole of it.
	e2eSampleEvery = 5 * time.Second
	// postgresURLEnv names the PostgreSQL database that e2e also runs on, when set.
	postgresURLEnv = "LEVQOR_BENCH_POSTGRES_URL"
)

// e2eResult is what one engine's end-to-end run measured.
type e2eResult struct {
	Server  string `json:"server"` // levqor, or the peer's name
	Engine  string `json:"engine"`
	Workers int    `json:"workers"`
	// The window runs from the admin status read before the load starts to the one
	// after the last response.
	WindowS           float64 `json:"window_s"`
	Accepted          uint64  `json:"accepted"` // 202s during the window
	AcceptedPerS      float64 `json:"accepted_per_s"`
	IntakeP50MS       float64 `json:"intake_p50_ms"`
	IntakeP99MS       float64 `json:"intake_p99_ms"`
	Other             uint64  `json:"other"`               // other responses during the window
	Errors            uint64  `json:"errors"`              // connection errors during the window
	CompletedInWindow int     `json:"completed_in_window"` // jobs that reached succeeded during the window
	CompletedPerS     float64 `json:"completed_per_s"`
	PendingAtEnd      int     `json:"pending_at_end"` // not finished when the window ended
	DrainS            float64 `json:"drain_s"`        // from the window's end until none is pending
	// ThroughS is from the window's start until the last of its jobs succeeded;
	// ThroughPerS is the window's jobs over it.
	ThroughS    float64 `json:"through_s"`
	ThroughPerS float64 `json:"through_per_s"`
	// ServerCPUUS is the server's CPU from the window's start until drained, per job
	// accepted in the window: intake, run and admin status reads.
	ServerCPUUS float64 `json:"server_cpu_us_per_job"`
	// DBCPUUS is the same of the database's backends serving the server (e2e-pg:
	// PostgreSQL on this machine), when measured.
	DBCPUUS float64     `json:"db_cpu_us_per_job,omitempty"`
	Samples []e2eSample `json:"samples"`
	// Submitted counts every 202 the bench received in the run (the check
	// request, the warm-up and the window); Final is the queue at the end.
	Submitted uint64     `json:"submitted"`
	Final     queueState `json:"final"`
	// StatusMS is how long GET /api/v1/admin/status took right after the window, for the
	// cost of the bench's polling.
	StatusMS float64 `json:"status_ms"`
}

// e2eSample is one admin status read during the window.
type e2eSample struct {
	AtS       float64 `json:"at_s"` // since the window's start
	Succeeded int     `json:"succeeded"`
	Pending   int     `json:"pending"`
}

// lost returns the jobs of the run that did not succeed: those accepted and not
// succeeded, or the failed and canceled ones if there are more (when a job's
// 202 was lost on the wire, the database holds more jobs than were accepted).
func (r e2eResult) lost() int {
	return max(int(r.Submitted)-r.Final.Depth["succeeded"], r.Final.Depth["failed"]+r.Final.Depth["canceled"])
}

// runE2E submits core.echo jobs to levqor on SQLite at full speed for
// o.e2eWindow and measures how many go from intake to succeeded per second, then
// how long the rest takes; with LEVQOR_BENCH_POSTGRES_URL set it does the same
// on a fresh schema of that PostgreSQL database, for information.
func runE2E(ctx context.Context, o options) (outcome, error) {
	var out outcome
	details := map[string]e2eResult{}
	out.Details = details
	res, err := runE2EOn(ctx, o, "sqlite", intakeRequest(), 1, nil)
	if err != nil {
		return out, fmt.Errorf("sqlite: %w", err)
	}
	details["sqlite"] = res
	out.Checks = []check{
		atLeast("e2e sqlite jobs/s intake→succeeded", res.CompletedPerS, "jobs/s", e2eTarget),
		atMost("e2e sqlite jobs failed or lost", float64(res.lost()), "jobs", 0),
	}

	base := os.Getenv(postgresURLEnv)
	if base == "" {
		fmt.Fprintf(o.out, "postgres: skipped (set %s, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)\n", postgresURLEnv)
		return out, nil
	}
	pgURL, drop, err := postgresSchema(ctx, base)
	if err != nil {
		return out, fmt.Errorf("postgres: %w", err)
	}
	res, err = runE2EOn(ctx, o, "postgres", intakeRequest(), 1, nil, "LEVQOR_DATABASE_URL="+pgURL)
	if err = errors.Join(err, drop()); err != nil {
		return out, fmt.Errorf("postgres: %w", err)
	}
	details["postgres"] = res
	return out, nil
}

// runE2EOn is one end-to-end run of a fresh levqor on engine (env selects it):
// a check request and the warm-up, a wait until their jobs have run, then the
// window, then the drain. lr submits perReq jobs a request (a batch when > 1).
// dbCPU, when not nil, reads the CPU the database has spent for it so far.
func runE2EOn(ctx context.Context, o options, engine string, lr loadRequest, perReq int, dbCPU cpuProbe, env ...string) (_ e2eResult, err error) {
	dir, err := os.MkdirTemp("", "levqor-bench-*")
	if err != nil {
		return e2eResult{}, err
	}
	defer os.RemoveAll(dir)
	lev, err := startLevqor(o.bin, dir, levqorJobsEnv(append(env, fmt.Sprintf("LEVQOR_WORKERS=%d", o.e2eWorkers))...)...)
	if err != nil {
		return e2eResult{}, err
	}
	defer func() { err = errors.Join(err, lev.stop()) }()
	if _, err := lev.waitReady(ctx, "/ready"); err != nil {
		return e2eResult{}, err
	}
	return measureE2E(ctx, o, lev, engine, lr, perReq, dbCPU)
}

// measureE2E is the measurement of runE2EOn on lev, a server already ready that
// takes lr and answers GET /api/v1/admin/status as levqor does (levqor, or a peer
// speaking its routes).
func measureE2E(ctx context.Context, o options, lev *server, engine string, lr loadRequest, perReq int, dbCPU cpuProbe) (e2eResult, error) {
	sc := newStatusClient(lev.addr)
	defer sc.close()

	r := e2eResult{Server: lev.name, Engine: engine, Workers: o.e2eWorkers}
	if _, err := fetchOnce(ctx, lev.addr, lr); err != nil {
		return r, err
	}
	r.Submitted += uint64(perReq)
	if o.warmup > 0 {
		r.Submitted += generateLoad(ctx, lev.addr, lr, o.conns, o.warmup).OK * uint64(perReq)
	}
	if _, _, err := waitDrained(ctx, lev, sc); err != nil {
		return r, fmt.Errorf("after the warm-up: %w", err)
	}
	fmt.Fprintf(o.out, "%s on %s: %d workers, %d keep-alive connections submitting for %s after a %s warm-up\n",
		lev.name, engine, o.e2eWorkers, o.conns, o.e2eWindow, o.warmup)

	// The window: read the admin status (nothing is pending, so it stays true until the
	// load starts), load for e2eWindow while reading the admin status every
	// e2eSampleEvery, read the admin status again once the last response is in. A read
	// is timed when its request is sent: the status takes a while on a big jobs
	// table, and SQLite and PostgreSQL count from a snapshot taken as the
	// query starts.
	cpu0, err := procCPU(lev.pid)
	if err != nil {
		return r, errors.Join(lev.exitErr(), err)
	}
	db0, dbErr := dbCPU.read(ctx)
	q0, err := sc.queue(ctx)
	if err != nil {
		return r, errors.Join(err, lev.exitErr())
	}
	t0 := time.Now()
	loaded := make(chan *loadResult, 1)
	go func() { loaded <- generateLoad(ctx, lev.addr, lr, o.conns, o.e2eWindow) }()
	tick := time.NewTicker(e2eSampleEvery)
	var res *loadResult
	for res == nil {
		select {
		case res = <-loaded:
		case <-tick.C:
			at := time.Since(t0)
			q, err := sc.queue(ctx)
			if err != nil {
				tick.Stop()
				<-loaded
				return r, errors.Join(err, lev.exitErr())
			}
			r.Samples = append(r.Samples, e2eSample{AtS: at.Seconds(), Succeeded: q.Depth["succeeded"] - q0.Depth["succeeded"], Pending: q.pending()})
		}
	}
	tick.Stop()
	t1 := time.Now()
	q1, err := sc.queue(ctx)
	if err != nil {
		return r, errors.Join(err, lev.exitErr())
	}
	r.StatusMS = ms(time.Since(t1))
	if err := ctx.Err(); err != nil {
		return r, err
	}
	final, drained := q1, t1
	if q1.pending() > 0 {
		if final, drained, err = waitDrained(ctx, lev, sc); err != nil {
			return r, fmt.Errorf("after the window: %w", err)
		}
	}
	cpu1, err := procCPU(lev.pid)
	if err != nil {
		return r, errors.Join(lev.exitErr(), err)
	}
	db1, dbErr1 := dbCPU.read(ctx)
	if res.OK == 0 {
		return r, fmt.Errorf("%s %s: no %s (%d other responses, %d connection errors)", lr.verb(), lr.path, lr, res.Other, res.Errors)
	}

	r.Submitted += res.OK * uint64(perReq)
	r.WindowS = t1.Sub(t0).Seconds()
	r.Accepted, r.Other, r.Errors = res.OK*uint64(perReq), res.Other, res.Errors
	r.AcceptedPerS = res.RPS() * float64(perReq)
	r.IntakeP50MS, r.IntakeP99MS = ms(res.latency.quantile(0.50)), ms(res.latency.quantile(0.99))
	r.CompletedInWindow = q1.Depth["succeeded"] - q0.Depth["succeeded"]
	r.CompletedPerS = float64(r.CompletedInWindow) / r.WindowS
	r.PendingAtEnd = q1.pending()
	r.DrainS = drained.Sub(t1).Seconds()
	r.ThroughS = drained.Sub(t0).Seconds()
	r.ThroughPerS = float64(r.Accepted) / r.ThroughS
	r.ServerCPUUS = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(r.Accepted)
	if dbCPU != nil {
		if err := errors.Join(dbErr, dbErr1); err != nil {
			fmt.Fprintf(o.out, "database CPU not measured: %v\n", err)
		} else {
			r.DBCPUUS = float64(db1-db0) / float64(time.Microsecond) / float64(r.Accepted)
		}
	}
	r.Final = final
	printE2E(o, r)
	return r, nil
}

// printE2E writes one run's figures to the report.
func printE2E(o options, r e2eResult) {
	fmt.Fprintf(o.out, "window    %.2f s: accepted %d (%.0f/s; intake p50 %.2f ms, p99 %.2f ms); completed %d (%.0f/s)\n",
		r.WindowS, r.Accepted, r.AcceptedPerS, r.IntakeP50MS, r.IntakeP99MS, r.CompletedInWindow, r.CompletedPerS)
	if r.Other > 0 || r.Errors > 0 {
		fmt.Fprintf(o.out, "WARNING: %d other responses, %d connection errors in the window\n", r.Other, r.Errors)
	}
	if len(r.Samples) > 0 {
		line := "samples  "
		prev := e2eSample{}
		for _, s := range r.Samples {
			line += fmt.Sprintf("  %.0f–%.0f s: %.0f/s (%d pending)", prev.AtS, s.AtS, float64(s.Succeeded-prev.Succeeded)/(s.AtS-prev.AtS), s.Pending)
			prev = s
		}
		fmt.Fprintln(o.out, line)
	}
	fmt.Fprintf(o.out, "drain     %d jobs pending at the window's end, all run %.2f s later\n", r.PendingAtEnd, r.DrainS)
	db := ""
	if r.DBCPUUS > 0 {
		db = fmt.Sprintf(", its PostgreSQL backends' %.0f µs", r.DBCPUUS)
	}
	fmt.Fprintf(o.out, "through   the window's %d jobs, first intake to last succeeded: %.2f s (%.0f jobs/s); %s CPU %.0f µs per job%s\n",
		r.Accepted, r.ThroughS, r.ThroughPerS, r.Server, r.ServerCPUUS, db)
	fmt.Fprintf(o.out, "final     %s; %d accepted in the run (GET /api/v1/admin/status took %.0f ms after the window)\n", r.Final, r.Submitted, r.StatusMS)
	if n := r.lost(); n > 0 {
		fmt.Fprintf(o.out, "WARNING: %d jobs failed, were canceled or did not succeed\n", n)
	}
}

// postgresSchema creates a fresh schema in the PostgreSQL database at base and
// returns a URL for it (pgx sends the search_path parameter as a run-time
// setting, as store/storetest does) and a function that drops the schema.
func postgresSchema(ctx context.Context, base string) (string, func() error, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", postgresURLEnv, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "levqor_bench_" + hex.EncodeToString(b[:])
	// Parsed as a pool's URL, so that pool settings (pool_max_conns), which levqor
	// and the River peer read, are not sent to the server as run-time settings.
	cfg, err := pgxpool.ParseConfig(base)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", postgresURLEnv, err)
	}
	exec := func(ctx context.Context, sql string) error {
		ctx, cancel := context.WithTimeout(ctx, cliTimeout)
		defer cancel()
		conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig.Copy())
		if err != nil {
			return fmt.Errorf("connect to %s: %w", postgresURLEnv, err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop := func() error {
		if err := exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			return fmt.Errorf("drop schema %s: %w", schema, err)
		}
		return nil
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}
