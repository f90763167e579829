// Command levqor-bench measures Levqor's foundation numbers on the machine it runs
// on, always against the real binary running as a separate process: how soon
// `levqor serve` answers /ready after exec, how much memory it holds when idle,
// how the throughput of GET /health, of an authenticated GET of a user and of
// job intake compares with a bare net/http server doing the same work, and how
// many jobs a second it takes from intake to succeeded.
//
// Each benchmark is a named scenario (see allScenarios); -only picks some. Targets
// are reported as PASS or FAIL but do not change the exit status, which is
// non-zero only when a measurement could not be taken. docs/benchmarks.md says
// what each number means and records measured results; `make bench` runs it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

// options are the parsed flags every scenario reads.
type options struct {
	bin      string        // the levqor binary under test
	self     string        // this program, re-executed as the bare server
	runs     int           // process starts for coldstart and rss
	idle     time.Duration // how long rss waits after /ready before reading VmRSS
	conns    int           // keep-alive connections of the load generator
	duration time.Duration // length of one measured load round
	warmup   time.Duration // unmeasured load on each server before the rounds
	rounds   int           // measured rounds per server
	out      io.Writer     // the human-readable report

	e2eWindow  time.Duration // e2e: how long jobs are submitted at full speed
	e2eWorkers int           // e2e: levqor's LEVQOR_WORKERS
	batchSize  int           // e2e-batch: jobs per POST /api/v1/intake/batch
	riverPeer  string        // e2e-pg: the River peer's binary (cmd/levqor-bench/riverpeer)

	summaryEvents int // summary: events seeded before the summary is read
}

// scenario is one named benchmark. run prints its per-run figures to o.out and
// returns the checks against targets plus details for -json.
type scenario struct {
	name string
	what string
	run  func(ctx context.Context, o options) (outcome, error)
}

func allScenarios() []scenario {
	return []scenario{
		{"coldstart", "time from exec of `levqor serve` to the first 200 from GET /ready", runColdStart},
		{"rss", "resident memory after start-up and an idle pause", runRSS},
		{"health", "GET /health throughput, levqor vs a bare net/http server", runHealth},
		{"userget", "authenticated GET /api/v1/users/{id} throughput, levqor vs a bare net/http server reading the same SQLite row", runUserGet},
		{"intake", "POST /api/v1/intake throughput and p99, levqor (running the jobs too) vs a bare net/http server inserting one SQLite row per request", runIntake},
		{"e2e", "core.echo jobs per second from intake to succeeded over a window of full-speed intake, on SQLite (and PostgreSQL if " + postgresURLEnv + " is set)", runE2E},
		{"e2e-batch", "core.echo jobs per second from intake to succeeded on SQLite through POST /api/v1/intake/batch (-batch-size jobs a request), against single intakes in the same run", runE2EBatch},
		{"e2e-pg", "core.echo jobs per second from intake to succeeded on PostgreSQL (" + postgresURLEnv + "), levqor vs River (the -river-peer program) in rounds, single intakes", runE2EPG},
		{"e2e-pg-batch", "the same through batches of -batch-size jobs: levqor's POST /api/v1/intake/batch vs River's InsertMany", runE2EPGBatch},
		{"track", "POST /api/v1/metrics/track throughput, levqor (rollups included) vs a bare net/http server inserting the same row into its own SQLite file", runTrack},
		{"guard", "CI's regression guard: intake levqor vs bare in short rounds, judged against a generous floor", runGuard},
		{"summary", "GET /api/v1/metrics/summary latency over 10 million seeded events, on SQLite (and PostgreSQL if " + postgresURLEnv + " or " + testPostgresURLEnv + " is set)", runSummary},
		{"plan-eval", "node and edge F1 (TaskBench's) of POST /api/v1/plan over the descriptions of planner/planeval, with a deterministic stand-in model (or a real one if " + planModelURLEnv + " is set)", runPlanEval},
	}
}

// bareMode returns the bare server that the hidden first argument arg selects, or nil.
func bareMode(arg string) func(args []string) error {
	switch arg {
	case bareHealthFlag:
		return runBareHealth
	case bareUserFlag:
		return runBareUser
	case bareIntakeFlag:
		return runBareIntake
	case bareTrackFlag:
		return runBareTrack
	}
	return nil
}

// outcome is what a scenario measured.
type outcome struct {
	Checks  []check `json:"checks"`
	Details any     `json:"details"`
}

// check compares one measured value with its target.
type check struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Op    string  `json:"op"` // "<=" or ">="
	Limit float64 `json:"limit"`
	Pass  bool    `json:"pass"`
}

func atMost(name string, value float64, unit string, limit float64) check {
	return check{Name: name, Value: value, Unit: unit, Op: "<=", Limit: limit, Pass: value <= limit}
}

func atLeast(name string, value float64, unit string, limit float64) check {
	return check{Name: name, Value: value, Unit: unit, Op: ">=", Limit: limit, Pass: value >= limit}
}

// report is the -json document.
type report struct {
	Date      time.Time         `json:"date"`
	Go        string            `json:"go"`
	CPUs      int               `json:"cpus"`
	Binary    string            `json:"binary"`
	Version   string            `json:"version"`
	Flags     map[string]string `json:"flags"`
	Scenarios []scenarioReport  `json:"scenarios"`
}

type scenarioReport struct {
	Name  string `json:"name"`
	Error string `json:"error,omitempty"`
	outcome
}

func main() {
	if len(os.Args) > 1 {
		if bare := bareMode(os.Args[1]); bare != nil {
			if err := bare(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "levqor-bench "+os.Args[1]+":", err)
				os.Exit(1)
			}
			return
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "levqor-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("levqor-bench", flag.ContinueOnError)
	o := options{out: stdout}
	fs.StringVar(&o.bin, "bin", "bin/levqor", "the levqor binary to measure")
	only := fs.String("only", "", "comma-separated scenarios to run (default all but guard: coldstart,rss,health,userget,intake,e2e,e2e-batch,e2e-pg,e2e-pg-batch,track,summary,plan-eval)")
	fs.IntVar(&o.runs, "runs", 10, "process starts for coldstart and for rss")
	fs.DurationVar(&o.idle, "idle", time.Second, "rss: idle pause after /ready before reading VmRSS")
	fs.IntVar(&o.conns, "conns", 32, "health, userget, intake, e2e: keep-alive connections")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "health, userget, intake: length of each measured round")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "health, userget, intake, e2e: unmeasured load on each server first (0 for none)")
	fs.IntVar(&o.rounds, "rounds", 3, "health, userget, intake, e2e-pg, e2e-pg-batch: measured rounds per server, alternating")
	fs.DurationVar(&o.e2eWindow, "e2e-window", 30*time.Second, "e2e: how long jobs are submitted at full speed")
	fs.IntVar(&o.e2eWorkers, "e2e-workers", 64, "e2e: levqor's LEVQOR_WORKERS (jobs run at once)")
	fs.IntVar(&o.batchSize, "batch-size", e2eBatchSize, "e2e-batch: jobs per POST /api/v1/intake/batch (1..1000)")
	fs.StringVar(&o.riverPeer, "river-peer", "bin/levqor-river-peer", "e2e-pg, e2e-pg-batch: the River peer (built from cmd/levqor-bench/riverpeer by make bench)")
	fs.IntVar(&o.summaryEvents, "summary-events", 10_000_000, "summary: events seeded before the summary is read")
	jsonPath := fs.String("json", "", "also write the results as JSON to this file")
	strict := fs.Bool("strict", false, "exit non-zero when a check misses its target (CI's guard), not only when a number could not be measured")
	fs.Func("levqor-env", "NAME=value added to every levqor's environment (repeatable), e.g. LEVQOR_PPROF=true", func(v string) error {
		if name, _, ok := strings.Cut(v, "="); !ok || !strings.HasPrefix(name, "LEVQOR_") {
			return fmt.Errorf("want LEVQOR_NAME=value, got %q", v)
		}
		levqorEnv = append(levqorEnv, v)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := o.validate(); err != nil {
		return err
	}
	picked, err := pick(allScenarios(), *only)
	if err != nil {
		return err
	}
	if o.bin, err = filepath.Abs(o.bin); err != nil {
		return err
	}
	if o.riverPeer, err = filepath.Abs(o.riverPeer); err != nil {
		return err
	}
	info, err := os.Stat(o.bin)
	if err != nil {
		return fmt.Errorf("-bin: %w (run make build first)", err)
	}
	if o.self, err = os.Executable(); err != nil {
		return fmt.Errorf("find this program for the bare server: %w", err)
	}

	rep := report{Date: time.Now().UTC().Truncate(time.Second), Go: runtime.Version(), CPUs: runtime.NumCPU(),
		Binary: o.bin, Version: binVersion(ctx, o.bin), Flags: map[string]string{}}
	fs.VisitAll(func(f *flag.Flag) { rep.Flags[f.Name] = f.Value.String() })
	fmt.Fprintf(o.out, "levqor-bench  %s  %s %s/%s, %d CPUs\n", rep.Date.Format(time.RFC3339), rep.Go, runtime.GOOS, runtime.GOARCH, rep.CPUs)
	fmt.Fprintf(o.out, "binary %s (%.1f MiB): %s\n", o.bin, float64(info.Size())/(1<<20), rep.Version)

	var failed []string
	for _, s := range picked {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(o.out, "\n== %s: %s\n", s.name, s.what)
		res, err := s.run(ctx, o)
		sr := scenarioReport{Name: s.name, outcome: res}
		if err != nil {
			sr.Error = err.Error()
			failed = append(failed, s.name)
			fmt.Fprintf(o.out, "ERROR: %v\n", err)
		}
		rep.Scenarios = append(rep.Scenarios, sr)
	}

	printSummary(o.out, rep)
	if *jsonPath != "" {
		if err := writeJSON(*jsonPath, rep); err != nil {
			return fmt.Errorf("-json: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	if len(failed) > 0 {
		return fmt.Errorf("could not measure: %s", strings.Join(failed, ", "))
	}
	if *strict {
		var missed []string
		for _, sr := range rep.Scenarios {
			for _, c := range sr.Checks {
				if !c.Pass {
					missed = append(missed, c.Name)
				}
			}
		}
		if len(missed) > 0 {
			return fmt.Errorf("-strict: missed %s", strings.Join(missed, "; "))
		}
	}
	return nil
}

// printSummary lists every check with its verdict, and every scenario that failed.
func printSummary(w io.Writer, rep report) {
	fmt.Fprintf(w, "\n== summary\n")
	for _, sr := range rep.Scenarios {
		for _, c := range sr.Checks {
			verdict := "FAIL"
			if c.Pass {
				verdict = "PASS"
			}
			fmt.Fprintf(w, "%-4s  %-40s %9.1f %-5s (target %s %g %s)\n", verdict, c.Name, c.Value, c.Unit, c.Op, c.Limit, c.Unit)
		}
		if sr.Error != "" {
			fmt.Fprintf(w, "ERROR %-40s %s\n", sr.Name, firstLine(sr.Error))
		}
	}
}

func writeJSON(path string, rep report) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep "<=" readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func (o options) validate() error {
	var errs []error
	if o.runs < 1 || o.runs > 1000 {
		errs = append(errs, fmt.Errorf("-runs: want 1..1000, got %d", o.runs))
	}
	if o.idle < 0 || o.idle > time.Minute {
		errs = append(errs, fmt.Errorf("-idle: want 0..1m, got %s", o.idle))
	}
	if o.conns < 1 || o.conns > 4096 {
		errs = append(errs, fmt.Errorf("-conns: want 1..4096, got %d", o.conns))
	}
	if o.duration < 100*time.Millisecond || o.duration > 10*time.Minute {
		errs = append(errs, fmt.Errorf("-duration: want 100ms..10m, got %s", o.duration))
	}
	if o.warmup < 0 || o.warmup > 10*time.Minute {
		errs = append(errs, fmt.Errorf("-warmup: want 0..10m, got %s", o.warmup))
	}
	if o.rounds < 1 || o.rounds > 100 {
		errs = append(errs, fmt.Errorf("-rounds: want 1..100, got %d", o.rounds))
	}
	if o.e2eWindow < time.Second || o.e2eWindow > 10*time.Minute {
		errs = append(errs, fmt.Errorf("-e2e-window: want 1s..10m, got %s", o.e2eWindow))
	}
	if o.batchSize < 1 || o.batchSize > 1000 {
		errs = append(errs, fmt.Errorf("-batch-size: want 1..1000, got %d", o.batchSize))
	}
	if o.e2eWorkers < 1 || o.e2eWorkers > 1024 {
		errs = append(errs, fmt.Errorf("-e2e-workers: want 1..1024 (as LEVQOR_WORKERS), got %d", o.e2eWorkers))
	}
	if o.summaryEvents < 1 || o.summaryEvents > 100_000_000 {
		errs = append(errs, fmt.Errorf("-summary-events: want 1..100000000, got %d", o.summaryEvents))
	}
	return errors.Join(errs...)
}

// pick returns the scenarios named in the comma-separated list, in their
// canonical order, or all of them for an empty list.
func pick(all []scenario, list string) ([]scenario, error) {
	if strings.TrimSpace(list) == "" { // all but the guard, a shorter intake run for CI
		return slices.DeleteFunc(slices.Clone(all), func(s scenario) bool { return s.name == "guard" }), nil
	}
	want := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if !slices.ContainsFunc(all, func(s scenario) bool { return s.name == name }) {
			names := make([]string, len(all))
			for i, s := range all {
				names[i] = s.name
			}
			return nil, fmt.Errorf("-only: no scenario %q (have %s)", name, strings.Join(names, ","))
		}
		want[name] = true
	}
	var picked []scenario
	for _, s := range all {
		if want[s.name] {
			picked = append(picked, s)
		}
	}
	return picked, nil
}

// median returns the middle of xs (the mean of the two middle values for an
// even count), or 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// binVersion returns the first line `bin version` prints, for the record.
func binVersion(ctx context.Context, bin string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return "version unknown: " + err.Error()
	}
	return firstLine(strings.TrimSpace(string(out)))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
