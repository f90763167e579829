// Command riverpeer is the River peer of levqor-bench's e2e-pg scenarios: River
// (github.com/riverqueue/river with its pgx v5 driver) behind the same three routes
// the bench drives on levqor, so that one load generator measures both the same
// way. It is a module of its own so that River stays out of Levqor's go.mod;
// `make bench` builds it (see docs/benchmarks.md, "e2e-pg").
//
//   - POST /api/v1/intake: one job, levqor's intake body ({"workflow", "payload",
//     "steps"}), inserted with Client.Insert (its own transaction); 202 with the
//     job's id and "status":"queued", as levqor's JobAccepted.
//   - POST /api/v1/intake/batch: up to 1,000 of them ({"jobs":[{"job":…}]}) in one
//     Client.InsertMany; 200 with "accepted", "failed":0 and a result per job.
//   - GET /api/v1/admin/status: the jobs per state in river_job, counted from one
//     snapshot, under levqor's status names ({"queue":{"depth":…,"finished_here":…}}),
//     which is what the bench reads from levqor.
//
// A River client in the same process works the jobs with an echo worker that
// returns at once. The peer migrates its own schema (rivermigrate) on start-up,
// serves GET /ready once River runs, and on SIGTERM stops the HTTP server, then
// River (soft stop: running jobs finish and their completions are written).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
)

const (
	maxBody      = 1 << 20 // largest request body read, as levqor-bench's own limit
	maxBatch     = 1000    // jobs in one batch, as levqor's POST /api/v1/intake/batch
	stopTimeout  = 10 * time.Second
	readTimeout  = 10 * time.Second // of a whole request, headers and body
	idleTimeout  = time.Minute      // of a keep-alive connection between requests
	migrateLimit = time.Minute      // the migrations at start-up
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "riverpeer:", err)
		os.Exit(1)
	}
}

// config is the peer's flags.
type config struct {
	addr          string
	databaseURL   string
	schema        string
	workers       int
	fetchCooldown time.Duration
	fetchPoll     time.Duration
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("riverpeer", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.addr, "addr", "127.0.0.1:0", "loopback host:port to listen on")
	fs.StringVar(&c.databaseURL, "database-url", "", "the PostgreSQL database (pgx URL; its pool settings apply)")
	fs.StringVar(&c.schema, "schema", "", "the schema River's tables are created in and used from (it must exist)")
	fs.IntVar(&c.workers, "workers", 64, "River's MaxWorkers for the default queue")
	// River's own benchmark (cmd/river/riverbench) uses 2 ms and 20 ms; its defaults
	// (100 ms and 1 s) cap a client at MaxWorkers per FetchCooldown.
	fs.DurationVar(&c.fetchCooldown, "fetch-cooldown", 2*time.Millisecond, "River's FetchCooldown")
	fs.DurationVar(&c.fetchPoll, "fetch-poll-interval", 20*time.Millisecond, "River's FetchPollInterval")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.databaseURL == "" || c.schema == "" {
		return errors.New("-database-url and -schema are required")
	}
	p, err := start(ctx, c)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return errors.Join(err, p.stop(context.Background()))
	}
	srv := &http.Server{Handler: p.routes(), ReadTimeout: readTimeout, IdleTimeout: idleTimeout}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("{\"msg\":\"listening\",\"addr\":%q}\n", ln.Addr().String())

	select {
	case err = <-served:
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), stopTimeout)
	defer scancel()
	return errors.Join(err, srv.Shutdown(sctx), p.stop(sctx))
}

// start connects to c.databaseURL, migrates River's tables into c.schema and
// starts a River client working them.
func start(ctx context.Context, c config) (*peer, error) {
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg, err := pgxpool.ParseConfig(c.databaseURL)
	if err != nil {
		return nil, errors.New("-database-url: malformed connection string")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	p, err := startRiver(ctx, c, pool, log)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return p, nil
}

func startRiver(ctx context.Context, c config, pool *pgxpool.Pool, log *slog.Logger) (*peer, error) {
	driver := riverpgxv5.New(pool)
	mctx, cancel := context.WithTimeout(ctx, migrateLimit)
	defer cancel()
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Schema: c.schema, Logger: log})
	if err != nil {
		return nil, err
	}
	if _, err := migrator.Migrate(mctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	p := &peer{pool: pool, jobTable: pgx.Identifier{c.schema, "river_job"}.Sanitize()}
	workers := river.NewWorkers()
	river.AddWorker(workers, &echoWorker{finished: &p.finished})
	p.client, err = river.NewClient(driver, &river.Config{
		Schema:            c.schema,
		Logger:            log,
		FetchCooldown:     c.fetchCooldown,
		FetchPollInterval: c.fetchPoll,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: c.workers}},
		Workers:           workers,
	})
	if err != nil {
		return nil, err
	}
	if err := p.client.Start(ctx); err != nil {
		return nil, fmt.Errorf("start River: %w", err)
	}
	return p, nil
}

// stop stops River (soft: running jobs finish and their completions are
// written) and closes the pool.
func (p *peer) stop(ctx context.Context) error {
	err := p.client.Stop(ctx)
	p.pool.Close()
	return err
}

// echoArgs is the job: levqor's intake body, kept as JSON.
type echoArgs struct {
	Workflow string          `json:"workflow"`
	Payload  json.RawMessage `json:"payload,omitempty"`
	Steps    json.RawMessage `json:"steps,omitempty"`
}

func (echoArgs) Kind() string { return "echo" }

// echoWorker completes every job at once, counting the attempts it finished.
type echoWorker struct {
	river.WorkerDefaults[echoArgs]
	finished *atomic.Int64
}

func (w *echoWorker) Work(context.Context, *river.Job[echoArgs]) error {
	w.finished.Add(1)
	return nil
}

// peer is River and the routes that serve it.
type peer struct {
	client   *river.Client[pgx.Tx]
	pool     *pgxpool.Pool
	jobTable string       // schema-qualified and quoted
	finished atomic.Int64 // attempts the echo worker finished
}

func (p *peer) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /api/v1/intake", p.intake)
	mux.HandleFunc("POST /api/v1/intake/batch", p.intakeBatch)
	mux.HandleFunc("GET /api/v1/admin/status", p.status)
	return mux
}

// accepted is the answer for one inserted job, as levqor's JobAccepted.
type accepted struct {
	JobID     int64     `json:"job_id"`
	Status    string    `json:"status"`
	Workflow  string    `json:"workflow"`
	CreatedAt time.Time `json:"created_at"`
	RunAt     time.Time `json:"run_at"`
}

func acceptedOf(res *rivertype.JobInsertResult, workflow string) accepted {
	status := string(res.Job.State)
	if res.Job.State == rivertype.JobStateAvailable {
		status = "queued"
	}
	return accepted{JobID: res.Job.ID, Status: status, Workflow: workflow, CreatedAt: res.Job.CreatedAt, RunAt: res.Job.ScheduledAt}
}

func (p *peer) intake(w http.ResponseWriter, r *http.Request) {
	var args echoArgs
	if !decode(w, r, &args) {
		return
	}
	if args.Workflow == "" {
		http.Error(w, "workflow is required", http.StatusBadRequest)
		return
	}
	res, err := p.client.Insert(r.Context(), args, nil)
	if err != nil {
		http.Error(w, "insert failed", http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusAccepted, acceptedOf(res, args.Workflow))
}

func (p *peer) intakeBatch(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Jobs []struct {
			Job echoArgs `json:"job"`
		} `json:"jobs"`
	}
	if !decode(w, r, &body) {
		return
	}
	if len(body.Jobs) == 0 || len(body.Jobs) > maxBatch {
		http.Error(w, fmt.Sprintf("a batch has 1 to %d jobs", maxBatch), http.StatusBadRequest)
		return
	}
	params := make([]river.InsertManyParams, len(body.Jobs))
	for i, it := range body.Jobs {
		if it.Job.Workflow == "" {
			http.Error(w, "workflow is required", http.StatusBadRequest)
			return
		}
		params[i].Args = it.Job
	}
	res, err := p.client.InsertMany(r.Context(), params)
	if err != nil {
		http.Error(w, "insert failed", http.StatusInternalServerError)
		return
	}
	type result struct {
		Status int      `json:"status"`
		Job    accepted `json:"job"`
	}
	out := struct {
		Accepted int      `json:"accepted"`
		Failed   int      `json:"failed"`
		Results  []result `json:"results"`
	}{Accepted: len(res), Results: make([]result, len(res))}
	for i, jr := range res {
		out.Results[i] = result{Status: http.StatusAccepted, Job: acceptedOf(jr, body.Jobs[i].Job.Workflow)}
	}
	writeJSON(w, http.StatusOK, out)
}

// levqorStatus maps River's job states to levqor's job statuses. River's
// "pending" (a job waiting on something else to make it available) counts as queued.
var levqorStatus = map[rivertype.JobState]string{
	rivertype.JobStatePending:   "queued",
	rivertype.JobStateAvailable: "queued",
	rivertype.JobStateScheduled: "scheduled",
	rivertype.JobStateRunning:   "running",
	rivertype.JobStateRetryable: "retrying",
	rivertype.JobStateCompleted: "succeeded",
	rivertype.JobStateDiscarded: "failed",
	rivertype.JobStateCancelled: "canceled",
}

// status counts river_job by state in one statement (one snapshot), as levqor's
// status counts its jobs.
func (p *peer) status(w http.ResponseWriter, r *http.Request) {
	rows, err := p.pool.Query(r.Context(), "SELECT state::text, count(*) FROM "+p.jobTable+" GROUP BY state")
	if err != nil {
		http.Error(w, "count jobs failed", http.StatusInternalServerError)
		return
	}
	depth := map[string]int64{}
	var state string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&state, &n}, func() error {
		name, ok := levqorStatus[rivertype.JobState(state)]
		if !ok {
			name = state
		}
		depth[name] += n
		return nil
	})
	if err != nil {
		http.Error(w, "count jobs failed", http.StatusInternalServerError)
		return
	}
	type queue struct {
		Depth        map[string]int64 `json:"depth"`
		FinishedHere int64            `json:"finished_here"`
	}
	writeJSON(w, http.StatusOK, struct {
		Queue queue `json:"queue"`
	}{queue{Depth: depth, FinishedHere: p.finished.Load()}})
}

// decode reads r's JSON body into v, or answers 400 and returns false.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		http.Error(w, "malformed JSON body", http.StatusBadRequest)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode failed", http.StatusInternalServerError)
		return
	}
	// A Content-Length, never chunked: levqor-bench's load generator reads only those.
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
