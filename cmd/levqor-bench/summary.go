package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/analytics"
	"github.com/levqor/levqor/store/postgres"
	"github.com/levqor/levqor/store/sqlite"
)

const (
	// summaryP50Limit is the target for the median latency of GET /api/v1/metrics/summary.
	summaryP50Limit = 20.0 // ms
	// seedBatch is how many events the seeder stores per transaction.
	seedBatch = 20_000
	// summaryOwner is the user whose metrics:read key reads the summary.
	summaryOwner = "analyst@example.com"
	// testPostgresURLEnv is the test suite's PostgreSQL, which summary also takes
	// when postgresURLEnv is unset.
	testPostgresURLEnv = "LEVQOR_TEST_POSTGRES_URL"
)

// summaryQuery is one summary request the scenario measures.
type summaryQuery struct {
	Name string `json:"name"`
	Path string `json:"path"`
	loadSummary
	Rounds []loadRound `json:"rounds"`
}

// summaryResult is what summary measured on one engine.
type summaryResult struct {
	Engine  string         `json:"engine"`
	Events  int            `json:"events"`
	SeedS   float64        `json:"seed_s"`
	Queries []summaryQuery `json:"queries"`
}

// runSummary seeds o.summaryEvents events spread over the last year into a fresh
// levqor database, starts levqor on it and measures the latency of GET
// /api/v1/metrics/summary over one connection: the default (the last 7 days, UTC)
// and the longest range (366 days, in America/New_York). It does so on SQLite and,
// when LEVQOR_BENCH_POSTGRES_URL (or LEVQOR_TEST_POSTGRES_URL) names a database, on
// a fresh schema of it.
func runSummary(ctx context.Context, o options) (outcome, error) {
	details := map[string]summaryResult{}
	out := outcome{Details: details}
	check := func(res summaryResult) {
		for _, q := range res.Queries {
			out.Checks = append(out.Checks, atMost(fmt.Sprintf("summary %s p50, %s", res.Engine, q.Name), q.P50MS, "ms", summaryP50Limit))
		}
	}
	res, err := runSummaryOn(ctx, o, "sqlite", "")
	if err != nil {
		return out, fmt.Errorf("sqlite: %w", err)
	}
	details["sqlite"] = res
	check(res)

	base := os.Getenv(postgresURLEnv)
	if base == "" {
		base = os.Getenv(testPostgresURLEnv)
	}
	if base == "" {
		fmt.Fprintf(o.out, "postgres: skipped (set %s or %s)\n", postgresURLEnv, testPostgresURLEnv)
		return out, nil
	}
	pgURL, drop, err := postgresSchema(ctx, base)
	if err != nil {
		return out, fmt.Errorf("postgres: %w", err)
	}
	res, err = runSummaryOn(ctx, o, "postgres", pgURL)
	if err = errors.Join(err, drop()); err != nil {
		return out, fmt.Errorf("postgres: %w", err)
	}
	details["postgres"] = res
	check(res)
	return out, nil
}

// runSummaryOn seeds a fresh database of engine (PostgreSQL at pgURL), starts
// levqor on it, creates a metrics:read key with the CLI and measures each query.
func runSummaryOn(ctx context.Context, o options, engine, pgURL string) (_ summaryResult, err error) {
	dir, err := os.MkdirTemp("", "levqor-bench-*")
	if err != nil {
		return summaryResult{}, err
	}
	defer os.RemoveAll(dir)
	var env []string
	if pgURL != "" {
		env = append(env, "LEVQOR_DATABASE_URL="+pgURL)
	}
	res := summaryResult{Engine: engine, Events: o.summaryEvents}
	start := time.Now()
	if err := seed(ctx, o, engine, dir, pgURL); err != nil {
		return res, fmt.Errorf("seed: %w", err)
	}
	res.SeedS = time.Since(start).Seconds()

	lev, err := startLevqor(o.bin, dir, append(env, "LEVQOR_RATE_LIMIT_KEY="+benchRateLimit)...)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, lev.stop()) }()
	if _, err := lev.waitReady(ctx, "/ready"); err != nil {
		return res, err
	}
	key, err := createMetricsKey(ctx, o.bin, dir, env...)
	if err != nil {
		return res, err
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		return res, err
	}
	to := time.Now().In(ny)
	from := to.AddDate(0, 0, -analytics.MaxRangeDays)
	queries := []summaryQuery{
		{Name: "7 days UTC (default)", Path: "/api/v1/metrics/summary"},
		{Name: "366 days America/New_York", Path: fmt.Sprintf("/api/v1/metrics/summary?from=%s&to=%s&tz=America/New_York",
			from.Format(time.DateOnly), to.Format(time.DateOnly))},
	}
	for i := range queries {
		q := &queries[i]
		lr := loadRequest{path: q.Path, header: http.Header{"X-Api-Key": {key}}, want: []byte(`"totals":`), contains: true}
		body, err := fetchOnce(ctx, lev.addr, lr)
		if err != nil {
			return res, err
		}
		var sum struct {
			Totals map[string]int64 `json:"totals"`
			Daily  []json.RawMessage
		}
		if err := json.Unmarshal(body, &sum); err != nil {
			return res, fmt.Errorf("decode summary: %w", err)
		}
		var total int64
		for _, n := range sum.Totals {
			total += n
		}
		fmt.Fprintf(o.out, "%s: GET %s → %d bytes, %d days, totals %v (sum %d)\n", engine, q.Path, len(body), len(sum.Daily), sum.Totals, total)
		if total != int64(o.summaryEvents) {
			return res, fmt.Errorf("the summary counts %d events, the seeder stored %d", total, o.summaryEvents)
		}
		if o.warmup > 0 {
			if _, err := measureLatency(ctx, lev, q.Path, key, o.warmup); err != nil {
				return res, err
			}
		}
		var p50, p99, rps []float64
		for round := 1; round <= o.rounds; round++ {
			r, err := measureLatency(ctx, lev, q.Path, key, o.duration)
			if err != nil {
				return res, err
			}
			r.Round = round
			fmt.Fprintf(o.out, "%s  %-26s round %d  %6.0f req/s  p50 %6.2f ms  p99 %6.2f ms  cpu/req %6.0f µs\n",
				engine, q.Name, round, r.RPS, r.P50MS, r.P99MS, r.ServerCPUUS)
			q.Rounds = append(q.Rounds, r)
			p50, p99, rps = append(p50, r.P50MS), append(p99, r.P99MS), append(rps, r.RPS)
		}
		q.loadSummary = loadSummary{RPS: median(rps), P50MS: median(p50), P99MS: median(p99)}
		fmt.Fprintf(o.out, "%s  %-26s median   %6.0f req/s  p50 %6.2f ms  p99 %6.2f ms  (target p50 ≤ %g ms)\n",
			engine, q.Name, q.RPS, q.P50MS, q.P99MS, summaryP50Limit)
	}
	res.Queries = queries
	return res, nil
}

// measureLatency sends GET path with key to s one request after the other over one
// keep-alive connection for d, and measures each request from sending it to
// reading the whole answer, which must be a 200. It uses net/http rather than the
// load generator, which reads only Content-Length bodies: a long summary is sent
// chunked. The client's own cost is a few tens of µs per request, included.
func measureLatency(ctx context.Context, s *server, path, key string, d time.Duration) (loadRound, error) {
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	cpu0, err := procCPU(s.pid)
	if err != nil {
		return loadRound{}, err
	}
	var h histogram
	start := time.Now()
	for time.Since(start) < d {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+path, nil)
		if err != nil {
			return loadRound{}, err
		}
		req.Header.Set("X-Api-Key", key)
		sent := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return loadRound{}, errors.Join(s.exitErr(), err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return loadRound{}, err
		}
		if resp.StatusCode != http.StatusOK {
			return loadRound{}, fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		h.record(time.Since(sent))
	}
	elapsed := time.Since(start)
	cpu1, err := procCPU(s.pid)
	if err != nil {
		return loadRound{}, err
	}
	return loadRound{
		Server: s.name, OK: h.n, RPS: float64(h.n) / elapsed.Seconds(),
		P50MS: ms(h.quantile(0.50)), P99MS: ms(h.quantile(0.99)),
		ServerCPUUS: float64(cpu1-cpu0) / float64(time.Microsecond) / float64(h.n),
	}, nil
}

// seed opens the fresh database of engine (the SQLite file in dir, or PostgreSQL at
// pgURL), migrates it and stores o.summaryEvents events through levqor's own store.
func seed(ctx context.Context, o options, engine, dir, pgURL string) error {
	var st interface {
		analytics.Store
		Migrate(context.Context) error
		Close() error
	}
	var err error
	if engine == "postgres" {
		st, err = postgres.Open(ctx, pgURL)
	} else {
		st, err = sqlite.Open(ctx, filepath.Join(dir, "levqor.db"))
	}
	if err != nil {
		return err
	}
	if err := st.Migrate(ctx); err != nil {
		return errors.Join(err, st.Close())
	}
	return errors.Join(seedEvents(ctx, st, o.summaryEvents, time.Now(), engine, o.out), st.Close())
}

// seedEvents stores n events spread evenly over the 365 days before end, oldest
// first, seedBatch per transaction, through InsertEvents: the raw rows and the
// rollups as Track would write them. Types, paths, referrers and UTM sources
// repeat in fixed proportions (a fixed seed), about one event in four has a
// payload, and none is a robot's.
func seedEvents(ctx context.Context, st analytics.Store, n int, end time.Time, engine string, out io.Writer) error {
	r := rand.New(rand.NewPCG(2025, 11))
	types := []string{analytics.PageView, analytics.PageView, analytics.PageView, analytics.PageView, analytics.PageView,
		analytics.PageView, analytics.CTAClick, analytics.CTAClick, analytics.Newsletter, analytics.Conversion}
	paths := []string{"/", "/pricing", "/docs", "/faq", "/blog/launch", "/blog/budgets", "/blog/sqlite", "/signup", "/legal/privacy", "/about", "/changelog", "/status"}
	referrers := []string{"", "", "", "google.com", "news.ycombinator.com", "reddit.com", "github.com", "duckduckgo.com", "bing.com", "lobste.rs", "x.com"}
	sources := []string{"", "", "", "", "newsletter", "hn", "reddit", "github", "ads", "partner"}
	span := 365 * 24 * time.Hour
	start := end.Add(-span)
	began := time.Now()
	batch := make([]analytics.Event, 0, seedBatch)
	for i := range n {
		e := analytics.Event{
			ID: levqor.NewID("evt"), Type: types[r.IntN(len(types))], Bot: false,
			At:   start.Add(time.Duration(float64(span) * float64(i) / float64(n))),
			Path: paths[r.IntN(len(paths))], ReferrerHost: referrers[r.IntN(len(referrers))],
			UTM: analytics.UTM{Source: sources[r.IntN(len(sources))]},
		}
		e.Ref = "https://levqor.ai" + e.Path
		if e.UTM.Source != "" {
			e.Ref += "?utm_source=" + e.UTM.Source
		}
		if e.ReferrerHost != "" {
			e.Referrer = "https://" + e.ReferrerHost + "/"
		}
		if r.IntN(4) == 0 {
			e.Payload = []byte(`{"plan":"pro","step":2}`)
		}
		batch = append(batch, e)
		if len(batch) == seedBatch || i == n-1 {
			if err := st.InsertEvents(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
			if done := i + 1; done%1_000_000 == 0 || done == n {
				fmt.Fprintf(out, "%s: seeded %d events in %.0f s\n", engine, done, time.Since(began).Seconds())
			}
		}
	}
	return nil
}

// createMetricsKey runs `bin keys create` beside the running server for
// summaryOwner with the metrics:read scope and returns the key.
func createMetricsKey(ctx context.Context, bin, dataDir string, env ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "keys", "create", "--owner", summaryOwner, "--scopes", "metrics:read")
	cmd.Env = childEnv(append([]string{"LEVQOR_DATA_DIR=" + dataDir}, env...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("levqor keys create: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	_, key, err := parseKeyCreate(string(out))
	return key, err
}
