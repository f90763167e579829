package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The River peer (cmd/levqor-bench/riverpeer, a module of its own) serves levqor's
// intake, batch intake and admin status routes in front of River on PostgreSQL, so
// that e2e-pg and e2e-pg-batch measure levqor and River with the same load
// generator and the same completion count. Its River settings are River's own
// benchmark's (cmd/river/riverbench), not its defaults, with levqor's worker count.
const (
	riverPeerName          = "river"
	riverFetchCooldown     = 2 * time.Millisecond
	riverFetchPollInterval = 20 * time.Millisecond
	// e2ePGTarget is issue 18's PostgreSQL target: twice the 1.7k jobs/s measured
	// before (the "through" figure of e2e on PostgreSQL, 1,558–1,665/s).
	e2ePGTarget = 3400.0
	// e2ePGRiverPct is the other: at least River's own throughput (levqor's median
	// "through" as a share of River's).
	e2ePGRiverPct = 100.0
)

// e2ePGRound is one round of e2e-pg: a run of each, on fresh schemas.
type e2ePGRound struct {
	Round  int       `json:"round"`
	First  string    `json:"first"` // which ran first in the round
	Levqor e2eResult `json:"levqor"`
	River  e2eResult `json:"river"`
}

// e2ePGMedian is the median of one server's rounds.
type e2ePGMedian struct {
	AcceptedPerS  float64 `json:"accepted_per_s"`
	CompletedPerS float64 `json:"completed_per_s"`
	ThroughPerS   float64 `json:"through_per_s"`
	IntakeP99MS   float64 `json:"intake_p99_ms"`
	ServerCPUUS   float64 `json:"server_cpu_us_per_job"`
	DBCPUUS       float64 `json:"db_cpu_us_per_job"`
}

// e2ePGDetails is the -json detail of e2e-pg and e2e-pg-batch.
type e2ePGDetails struct {
	PerRequest    int                    `json:"jobs_per_request"`
	RiverSettings map[string]string      `json:"river_settings"`
	Rounds        []e2ePGRound           `json:"rounds"`
	Median        map[string]e2ePGMedian `json:"median"` // levqor, river
	// ThroughRatio is levqor's median "through" (the window's jobs from first
	// intake to last completion) over River's, the checked figure; WindowRatio the
	// same of the jobs completed inside the window.
	ThroughRatio float64 `json:"through_ratio"`
	WindowRatio  float64 `json:"window_ratio"`
}

// runE2EPG compares levqor and River on PostgreSQL through single intakes.
func runE2EPG(ctx context.Context, o options) (outcome, error) {
	return runE2EPeer(ctx, o, "e2e-pg", intakeRequest(), 1)
}

// runE2EPGBatch compares them through batches of o.batchSize (River's InsertMany).
func runE2EPGBatch(ctx context.Context, o options) (outcome, error) {
	return runE2EPeer(ctx, o, "e2e-pg-batch", batchRequest(o.batchSize), o.batchSize)
}

// runE2EPeer runs e2e on PostgreSQL o.rounds times for levqor and for the River
// peer, each run on a fresh process and a fresh schema of the same database, one
// at a time, the order alternating by round (levqor first in odd rounds) so that
// drift on the machine falls on both alike. lr carries perReq jobs a request.
func runE2EPeer(ctx context.Context, o options, name string, lr loadRequest, perReq int) (outcome, error) {
	var out outcome
	base := os.Getenv(postgresURLEnv)
	if base == "" {
		fmt.Fprintf(o.out, "skipped (set %s, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)\n", postgresURLEnv)
		return out, nil
	}
	if _, err := os.Stat(o.riverPeer); err != nil {
		return out, fmt.Errorf("-river-peer: %w (make bench builds it: cd cmd/levqor-bench/riverpeer && go build -o ../../../bin/levqor-river-peer .)", err)
	}
	d := &e2ePGDetails{PerRequest: perReq, Median: map[string]e2ePGMedian{}, RiverSettings: map[string]string{
		"MaxWorkers": strconv.Itoa(o.e2eWorkers), "FetchCooldown": riverFetchCooldown.String(), "FetchPollInterval": riverFetchPollInterval.String(),
	}}
	out.Details = d
	fmt.Fprintf(o.out, "levqor and River (peer %s: MaxWorkers %d, FetchCooldown %s, FetchPollInterval %s), %d jobs a request, %d rounds\n",
		o.riverPeer, o.e2eWorkers, riverFetchCooldown, riverFetchPollInterval, perReq, o.rounds)
	for round := 1; round <= o.rounds; round++ {
		rr := e2ePGRound{Round: round, First: "levqor"}
		runs := []func() error{
			func() (err error) {
				fmt.Fprintf(o.out, "round %d, levqor:\n", round)
				rr.Levqor, err = onFreshSchema(ctx, base, func(dbURL, _ string, dbCPU cpuProbe) (e2eResult, error) {
					return runE2EOn(ctx, o, "postgres", lr, perReq, dbCPU, "LEVQOR_DATABASE_URL="+dbURL)
				})
				return err
			},
			func() (err error) {
				fmt.Fprintf(o.out, "round %d, River:\n", round)
				rr.River, err = onFreshSchema(ctx, base, func(dbURL, schema string, dbCPU cpuProbe) (e2eResult, error) {
					return runRiverPeer(ctx, o, dbURL, schema, lr, perReq, dbCPU)
				})
				return err
			},
		}
		if round%2 == 0 {
			runs[0], runs[1] = runs[1], runs[0]
			rr.First = riverPeerName
		}
		for _, run := range runs {
			if err := run(); err != nil {
				return out, fmt.Errorf("round %d: %w", round, err)
			}
		}
		d.Rounds = append(d.Rounds, rr)
		fmt.Fprintf(o.out, "round %d   through: levqor %.0f jobs/s, River %.0f jobs/s (%.2f×); completed in the window: levqor %.0f/s, River %.0f/s\n",
			round, rr.Levqor.ThroughPerS, rr.River.ThroughPerS, rr.Levqor.ThroughPerS/max(rr.River.ThroughPerS, 1), rr.Levqor.CompletedPerS, rr.River.CompletedPerS)
	}

	lost := 0
	for _, srv := range []string{"levqor", riverPeerName} {
		var acc, comp, thr, p99, cpu, dbc []float64
		for _, rr := range d.Rounds {
			r := rr.Levqor
			if srv == riverPeerName {
				r = rr.River
			}
			acc, comp, thr = append(acc, r.AcceptedPerS), append(comp, r.CompletedPerS), append(thr, r.ThroughPerS)
			p99, cpu, dbc = append(p99, r.IntakeP99MS), append(cpu, r.ServerCPUUS), append(dbc, r.DBCPUUS)
			lost += r.lost()
		}
		m := e2ePGMedian{AcceptedPerS: median(acc), CompletedPerS: median(comp), ThroughPerS: median(thr), IntakeP99MS: median(p99), ServerCPUUS: median(cpu), DBCPUUS: median(dbc)}
		d.Median[srv] = m
		fmt.Fprintf(o.out, "median    %-6s accepted %6.0f/s (intake p99 %.2f ms), completed in the window %6.0f/s, through %6.0f/s; CPU per job: server %.0f µs, PostgreSQL %.0f µs\n",
			srv, m.AcceptedPerS, m.IntakeP99MS, m.CompletedPerS, m.ThroughPerS, m.ServerCPUUS, m.DBCPUUS)
	}
	lev, riv := d.Median["levqor"], d.Median[riverPeerName]
	d.ThroughRatio = lev.ThroughPerS / max(riv.ThroughPerS, 1)
	d.WindowRatio = lev.CompletedPerS / max(riv.CompletedPerS, 1)
	fmt.Fprintf(o.out, "levqor/River %.2f× jobs/s from intake to completion (medians of through; target ≥ %.2f×), %.2f× completed in the window\n",
		d.ThroughRatio, e2ePGRiverPct/100, d.WindowRatio)
	out.Checks = []check{atLeast(name+" levqor/River jobs/s through (medians)", 100*d.ThroughRatio, "%", e2ePGRiverPct)}
	if perReq == 1 {
		out.Checks = append(out.Checks, atLeast(name+" levqor jobs/s through (median)", lev.ThroughPerS, "jobs/s", e2ePGTarget))
	}
	out.Checks = append(out.Checks, atMost(name+" jobs failed or lost (both)", float64(lost), "jobs", 0))
	return out, nil
}

// onFreshSchema runs measure with the URL of a new schema of the database at base
// (see postgresSchema), the schema's name and a probe of the CPU of the backends
// that serve that URL, then drops the schema. The URL names the schema as its
// application_name too, which is how the probe finds the backends.
func onFreshSchema(ctx context.Context, base string, measure func(dbURL, schema string, dbCPU cpuProbe) (e2eResult, error)) (e2eResult, error) {
	dbURL, drop, err := postgresSchema(ctx, base)
	if err != nil {
		return e2eResult{}, err
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return e2eResult{}, errors.Join(err, drop())
	}
	q := u.Query()
	schema := q.Get("search_path")
	q.Set("application_name", schema)
	u.RawQuery = q.Encode()
	r, err := measure(u.String(), schema, backendCPU(base, schema))
	return r, errors.Join(err, drop())
}

// cpuProbe reads a CPU time spent so far; a nil probe reads nothing.
type cpuProbe func(context.Context) (time.Duration, error)

func (p cpuProbe) read(ctx context.Context) (time.Duration, error) {
	if p == nil {
		return 0, nil
	}
	return p(ctx)
}

// backendCPU probes the CPU time of the PostgreSQL backends (of the database at
// base) whose application_name is app, from /proc: the database must run on this
// machine. A backend that ends between two reads takes its time with it; the
// pools of levqor and of the River peer keep theirs open.
func backendCPU(base, app string) cpuProbe {
	return func(ctx context.Context) (time.Duration, error) {
		cfg, err := pgxpool.ParseConfig(base)
		if err != nil {
			return 0, err
		}
		ctx, cancel := context.WithTimeout(ctx, cliTimeout)
		defer cancel()
		conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
		if err != nil {
			return 0, err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		rows, err := conn.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = $1", app)
		if err != nil {
			return 0, err
		}
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return 0, err
		}
		var total time.Duration
		for _, pid := range pids {
			d, err := procCPU(int(pid))
			if err != nil {
				return 0, fmt.Errorf("backend %d: %w (is PostgreSQL on this machine?)", pid, err)
			}
			total += d
		}
		return total, nil
	}
}

// runRiverPeer is runE2EOn for the River peer on the schema of dbURL.
func runRiverPeer(ctx context.Context, o options, dbURL, schema string, lr loadRequest, perReq int, dbCPU cpuProbe) (_ e2eResult, err error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return e2eResult{}, err
	}
	peer, err := startServer(riverPeerName, addr, o.riverPeer, []string{
		"-addr", addr, "-database-url", dbURL, "-schema", schema, "-workers", strconv.Itoa(o.e2eWorkers),
		"-fetch-cooldown", riverFetchCooldown.String(), "-fetch-poll-interval", riverFetchPollInterval.String(),
	})
	if err != nil {
		return e2eResult{}, err
	}
	defer func() { err = errors.Join(err, peer.stop()) }()
	if _, err := peer.waitReady(ctx, "/ready"); err != nil {
		return e2eResult{}, err
	}
	return measureE2E(ctx, o, peer, "postgres", lr, perReq, dbCPU)
}
