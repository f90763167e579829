package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// loadRound is one measured round of load on one server.
type loadRound struct {
	Round  int     `json:"round"`
	Server string  `json:"server"`
	OK     uint64  `json:"ok"`     // responses with the expected status and body
	Other  uint64  `json:"other"`  // any other response
	Errors uint64  `json:"errors"` // connection failures
	RPS    float64 `json:"rps"`
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
	// CPU time per OK response: the server process's, and this process's (the
	// load generator, plus draining levqor's access log from its stdout pipe).
	ServerCPUUS float64 `json:"server_cpu_us_per_req"`
	BenchCPUUS  float64 `json:"bench_cpu_us_per_req"`
}

// loadSummary is the median of a server's rounds.
type loadSummary struct {
	RPS         float64 `json:"rps"`
	P50MS       float64 `json:"p50_ms"`
	P99MS       float64 `json:"p99_ms"`
	ServerCPUUS float64 `json:"server_cpu_us_per_req"`
}

// comparison is what compareThroughput measured.
type comparison struct {
	Rounds      []loadRound            `json:"rounds"`
	Median      map[string]loadSummary `json:"median"`    // by server name
	RatioPct    float64                `json:"ratio_pct"` // median levqor req/s as a share of median bare req/s
	CPURatioPct float64                `json:"cpu_ratio_pct"`
}

// outcome returns c with its check: levqor's share of the bare server's
// throughput (medians) against targetPct.
func (c comparison) outcome(checkName string, targetPct float64) outcome {
	return outcome{Checks: []check{atLeast(checkName, c.RatioPct, "%", targetPct)}, Details: c}
}

// compareThroughput loads bare and lev, both already serving, with lr: first an
// unmeasured warm-up on each, then o.rounds measured rounds each, taking turns
// (bare, levqor, bare, levqor, …) so that the machine's noise falls on both
// alike. Only one server is loaded at a time. settle, when not nil, is called
// before every round and after the last, to let a server finish work that the
// previous round left behind (levqor's jobs) before the next round is measured.
func compareThroughput(ctx context.Context, o options, bare, lev *server, lr loadRequest, settle func(context.Context) error) (comparison, error) {
	servers := []*server{bare, lev}
	if settle == nil {
		settle = func(context.Context) error { return nil }
	}
	fmt.Fprintf(o.out, "%d keep-alive connections, %s rounds, %s warm-up per server\n", o.conns, o.duration, o.warmup)
	if o.warmup > 0 {
		for _, s := range servers {
			if _, err := measureRound(ctx, s, lr, o.conns, o.warmup); err != nil {
				return comparison{}, fmt.Errorf("warm-up: %w", err)
			}
		}
	}
	var rounds []loadRound
	for round := 1; round <= o.rounds; round++ {
		for _, s := range servers {
			if err := settle(ctx); err != nil {
				return comparison{}, fmt.Errorf("before round %d: %w", round, err)
			}
			r, err := measureRound(ctx, s, lr, o.conns, o.duration)
			if err != nil {
				return comparison{}, fmt.Errorf("round %d: %w", round, err)
			}
			r.Round = round
			line := fmt.Sprintf("round %d  %-6s  %7.0f req/s  p50 %5.2f ms  p99 %5.2f ms  cpu/req: server %5.1f µs, bench %5.1f µs",
				r.Round, r.Server, r.RPS, r.P50MS, r.P99MS, r.ServerCPUUS, r.BenchCPUUS)
			if prev := len(rounds) - 1; s == lev && prev >= 0 {
				line += fmt.Sprintf("  (%.1f%% of the bare round)", 100*r.RPS/rounds[prev].RPS)
			}
			if r.Other > 0 || r.Errors > 0 {
				line += fmt.Sprintf("  WARNING: %d other responses, %d connection errors", r.Other, r.Errors)
			}
			fmt.Fprintln(o.out, line)
			rounds = append(rounds, r)
		}
	}
	if err := settle(ctx); err != nil {
		return comparison{}, fmt.Errorf("after the last round: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return comparison{}, err
	}

	c := comparison{Rounds: rounds, Median: map[string]loadSummary{}}
	for _, s := range servers {
		var rps, p50, p99, cpu []float64
		for _, r := range rounds {
			if r.Server == s.name {
				rps, p50, p99, cpu = append(rps, r.RPS), append(p50, r.P50MS), append(p99, r.P99MS), append(cpu, r.ServerCPUUS)
			}
		}
		m := loadSummary{RPS: median(rps), P50MS: median(p50), P99MS: median(p99), ServerCPUUS: median(cpu)}
		c.Median[s.name] = m
		fmt.Fprintf(o.out, "median   %-6s  %7.0f req/s  p50 %5.2f ms  p99 %5.2f ms  cpu/req: server %5.1f µs\n",
			s.name, m.RPS, m.P50MS, m.P99MS, m.ServerCPUUS)
	}
	c.RatioPct = 100 * c.Median[lev.name].RPS / c.Median[bare.name].RPS
	c.CPURatioPct = 100 * c.Median[bare.name].ServerCPUUS / c.Median[lev.name].ServerCPUUS
	fmt.Fprintf(o.out, "levqor/bare throughput %.1f%% (of medians; the target is in the summary)\n", c.RatioPct)
	fmt.Fprintf(o.out, "bare/levqor server CPU per request %.1f%% (less sensitive to noise; for information)\n", c.CPURatioPct)
	return c, nil
}

// measureRound runs one round of lr on s for d and measures it, including the
// CPU time the server and this process spent.
func measureRound(ctx context.Context, s *server, lr loadRequest, conns int, d time.Duration) (loadRound, error) {
	server0, err := procCPU(s.pid)
	if err != nil {
		return loadRound{}, errors.Join(s.exitErr(), err)
	}
	self0 := selfCPU()
	res := generateLoad(ctx, s.addr, lr, conns, d)
	self1 := selfCPU()
	server1, err := procCPU(s.pid)
	if err != nil {
		return loadRound{}, errors.Join(s.exitErr(), err)
	}
	if err := ctx.Err(); err != nil {
		return loadRound{}, err
	}
	if err := s.exitErr(); err != nil {
		return loadRound{}, err
	}
	if res.OK == 0 {
		return loadRound{}, fmt.Errorf("%s: %s %s: no %s (%d other responses, %d connection errors)", s.name, lr.verb(), lr.path, lr, res.Other, res.Errors)
	}
	perReq := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(res.OK) }
	return loadRound{
		Server: s.name, OK: res.OK, Other: res.Other, Errors: res.Errors,
		RPS:         res.RPS(),
		P50MS:       ms(res.latency.quantile(0.50)),
		P99MS:       ms(res.latency.quantile(0.99)),
		ServerCPUUS: perReq(server1 - server0),
		BenchCPUUS:  perReq(self1 - self0),
	}, nil
}
