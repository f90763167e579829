package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"
	sredis "github.com/ulule/limiter/v3/drivers/store/redis"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/analytics"
	"github.com/levqor/levqor/api/spec"
	"github.com/levqor/levqor/billing"
	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/config"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/ai"
	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/limitstore"
	"github.com/levqor/levqor/logdedupe"
	"github.com/levqor/levqor/metrics"
	"github.com/levqor/levqor/newsletter"
	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/outbound"
	"github.com/levqor/levqor/planner"
	"github.com/levqor/levqor/server"
	"github.com/levqor/levqor/static"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/triggers"
	"github.com/levqor/levqor/users"
)

// serve opens and migrates the database, builds the services, then serves HTTP
// until ctx ends, when it stops accepting, drains in-flight requests and running
// jobs (bounded) and closes the database.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	started := time.Now()
	if len(args) > 0 {
		return usageError{fmt.Sprintf("serve takes no arguments, got %q", args)}
	}
	endStartupGC := startupGC(getenv)
	defer endStartupGC()
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	logOut := newBufferedLog(stdout)
	defer logOut.Close()
	// Repeated ERROR lines of one cause (an outage) are logged once per interval with a count.
	log := slog.New(logdedupe.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}), logdedupe.DefaultInterval))
	slog.SetDefault(log)
	redis.SetLogger(limitstore.RedisLogger(log)) // go-redis logs through slog, as JSON

	// The embedded spec, the largest single cost of start-up, loads on another core
	// while the database opens and the connectors compile their schemas.
	loadedSpec := inBackground(spec.Load)
	st, err := store.Open(ctx, storeOptions(cfg))
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("close database", "error", err.Error())
		}
	}()
	svc, err := newServices(ctx, cfg, st, log)
	defer svc.close()
	if err != nil {
		return err
	}
	stopping := make(chan struct{})
	handler, err := newHandler(cfg, st, svc, loadedSpec, stopping, started, log)
	if err != nil {
		return err
	}
	stopMetrics, err := startMetrics(cfg, svc.metrics, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	srv := newHTTPServer(handler, log)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (LEVQOR_ADDR): %w", cfg.Addr, err)
	}
	log.Info("listening", "addr", ln.Addr().String(), "version", levqor.Version, "database", st.Engine(),
		"go", runtime.Version(), "startup_ms", time.Since(started).Milliseconds())
	logOut.flush() // whoever waits for this line (supervisors, tests) sees it now
	// Workflow schedules fire from here on; the scheduler stops before the database closes.
	defer runScheduler(ctx, svc.scheduler)()
	defer startPeriodic(ctx, cfg, st, log, backupObserver(svc.metrics))()
	return serveUntilDone(ctx, cfg, srv, ln, svc.engine, stopping, endStartupGC, log)
}

// runScheduler fires workflow schedules until ctx ends or the returned func is
// called; that func returns once the scheduler has stopped.
func runScheduler(ctx context.Context, sch *triggers.Scheduler) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = sch.Run(ctx) // it logs its own failures and retries
	}()
	return func() { cancel(); <-done }
}

// inBackground runs f on another goroutine and returns what waits for its
// result (once: the result is received by one call).
func inBackground[T any](f func() (T, error)) (wait func() (T, error)) {
	type result struct {
		v   T
		err error
	}
	c := make(chan result, 1)
	go func() {
		v, err := f()
		c <- result{v, err}
	}()
	return func() (T, error) {
		r := <-c
		return r.v, r.err
	}
}

// services are what the server and the job engine are built from.
type services struct {
	creds       *credentials.Service
	analytics   *analytics.Service
	limits      *server.Limits
	mail        *notifier.Notifier
	letter      *newsletter.Service
	budgets     *budget.Service
	billing     *billing.Service
	engine      *jobs.Engine
	triggers    *triggers.Service
	scheduler   *triggers.Scheduler
	planner     *planner.Planner    // POST /api/v1/plan
	metrics     *metrics.Metrics    // nil without LEVQOR_METRICS_ADDR
	closers     []func()            // run in reverse by close
	readyChecks []server.ReadyCheck // what /ready checks besides the database
}

// close releases what newServices opened, last first.
func (s *services) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// newServices migrates st, just opened, and builds every service over it. The
// connectors, which need no database, are built on another core while the
// migrations run. Whatever it opened is released by close, even when it fails part
// way.
func newServices(ctx context.Context, cfg config.Config, st store.Store, log *slog.Logger) (*services, error) {
	s := &services{metrics: newMetrics(cfg, st)}
	var err error
	// Connector credentials: the key from LEVQOR_SECRET_KEY or the data dir.
	if s.creds, err = newCredentials(cfg, st, log); err != nil {
		return s, err
	}
	guard, err := outbound.NewGuard(cfg.OutboundAllowHosts)
	if err != nil {
		return s, fmt.Errorf("LEVQOR_OUTBOUND_ALLOW_HOSTS: %w", err)
	}
	compiled := inBackground(func() (*connectors.Registry, error) { return newRegistry(cfg, guard, s.creds) })
	if err := migrateStore(ctx, st); err != nil {
		return s, err
	}
	// Webhook secrets written before they were sealed (migration 0012) are sealed now.
	if n, err := jobs.SealWebhookSecrets(ctx, st, s.creds); err != nil {
		return s, fmt.Errorf("seal stored webhook secrets: %w", err)
	} else if n > 0 {
		log.Info("sealed webhook secrets stored in clear", "rows", n)
	}
	if s.analytics, err = newAnalytics(cfg, st); err != nil {
		return s, err
	}
	limits, limitsReady, closeLimits, err := rateLimits(cfg, log)
	if err != nil {
		return s, err
	}
	s.limits, s.closers = limits, append(s.closers, closeLimits)
	s.readyChecks = append(s.readyChecks, limitsReady...)
	// Levqor's own email (Resend); without LEVQOR_RESEND_API_KEY it logs and drops.
	s.mail, err = notifier.New(notifier.Config{BaseURL: cfg.ResendBaseURL, APIKey: cfg.ResendAPIKey,
		Domain: cfg.EmailDomain, PublicURL: cfg.PublicURL, Logger: log})
	if err != nil {
		return s, fmt.Errorf("notifier: %w", err)
	}
	s.closers = append(s.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.mail.Close(ctx)
	})
	// The newsletter hashes pending addresses with the analytics hash secret.
	hashSecret, err := analytics.LoadSecret(cfg.HashSecret, cfg.DataDir)
	if err != nil {
		return s, err
	}
	if s.letter, err = newsletter.NewService(st, s.mail, hashSecret, log); err != nil {
		return s, err
	}
	ownerDefaults := budget.Limits{Daily: budget.USDToNanos(cfg.BudgetDailyUSD), Monthly: budget.USDToNanos(cfg.BudgetMonthlyUSD)}
	// Billing: owners with a Stripe account run under their plan's budgets (an override still wins).
	if s.billing, err = newBilling(cfg, st, log); err != nil {
		return s, err
	}
	s.billing.WithMailer(s.mail)
	s.budgets = budget.NewService(st, ownerDefaults).WithLogger(log).OnThreshold(budgetThresholdMail(s.mail, st, log)).
		OnSpend(spendObserver(s.metrics)).WithPlanLimits(s.billing.OwnerLimits)
	reg, err := compiled()
	if err != nil {
		return s, err
	}
	if s.engine, err = newEngine(cfg, st, reg, guard, s, log); err != nil {
		return s, err
	}
	if s.planner, err = newPlanner(cfg, reg, s, log); err != nil {
		return s, err
	}
	// Schedules and inbound webhooks start jobs through the engine's intake.
	s.triggers = triggers.NewService(st, s.engine.Service, s.creds)
	s.scheduler = triggers.NewScheduler(triggers.SchedulerConfig{Store: st, Intake: s.engine.Service,
		Instance: levqor.NewID("sched"), Logger: log})
	return s, nil
}

// newPlanner builds the planner of POST /api/v1/plan over the ai connector (its
// endpoint, key and prices), the engine's validation and the owners' budgets.
func newPlanner(cfg config.Config, reg *connectors.Registry, s *services, log *slog.Logger) (*planner.Planner, error) {
	conn, _ := reg.Get(ai.Name)
	model, ok := conn.(planner.Model)
	if !ok {
		return nil, errors.New("planner: the registry has no ai connector")
	}
	p, err := planner.New(planner.Config{Model: model, ModelName: cfg.PlanModel, Registry: reg, Steps: s.engine.Service,
		Budgets: s.budgets, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("planner: %w", err)
	}
	return p, nil
}

// newBilling builds the billing service from the Stripe settings and the price table.
func newBilling(cfg config.Config, st store.Store, log *slog.Logger) (*billing.Service, error) {
	b, err := billing.NewService(st, st, billing.Config{SecretKey: cfg.StripeSecretKey, WebhookSecret: cfg.StripeWebhookSecret,
		BaseURL: cfg.StripeBaseURL, PublicURL: cfg.PublicURL, Plans: cfg.Plans, Grace: cfg.BillingGrace,
		Tolerance: cfg.StripeWebhookTolerance, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("billing: %w", err)
	}
	return b, nil
}

// newAnalytics builds the analytics service: emails hashed with LEVQOR_HASH_SECRET
// or a secret kept in the data dir, and the embedded marketing copy.
func newAnalytics(cfg config.Config, st store.Store) (*analytics.Service, error) {
	hashSecret, err := analytics.LoadSecret(cfg.HashSecret, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	copy, err := analytics.LoadCopy(static.MarketingFS())
	if err != nil {
		return nil, err
	}
	a, err := analytics.NewService(st, hashSecret)
	if err != nil {
		return nil, err
	}
	return a.WithCopy(copy), nil
}

// newEngine builds the job engine: intake, workers, hub and webhook dispatcher.
func newEngine(cfg config.Config, st store.Store, reg *connectors.Registry, guard *outbound.Guard, s *services, log *slog.Logger) (*jobs.Engine, error) {
	return jobs.NewEngine(jobs.Config{
		Store: st, Registry: reg, Guard: guard, ShutdownTimeout: cfg.ShutdownTimeout,
		Budgets: s.budgets,
		Worker: jobs.WorkerOptions{Concurrency: cfg.Workers, Lease: cfg.JobLease, RescueAtStart: cfg.Engine == config.SQLite,
			JobMaxCostUSD: cfg.JobMaxCostUSD, StepConcurrency: cfg.JobStepConcurrency, JobFailed: jobFailedMail(s.mail, st, log),
			MaxBacklog: cfg.IntakeMaxBacklog, BacklogWait: cfg.IntakeBacklogWait},
		Encode:   server.EncodeJob,
		Sealer:   s.creds,
		Logger:   log,
		Observer: jobObserver(s.metrics),
		// Approval links are signed with a key derived from the credentials key, which
		// every instance shares, and mailed as Levqor's own email.
		Approvals: jobs.ApprovalOptions{Key: s.creds.DeriveKey(jobs.ApprovalKeyPurpose), PublicURL: cfg.PublicURL, Mail: s.mail},
	})
}

// newHandler builds the HTTP handler over the services (and the few built over st
// that only the API uses). stopping closes when the server shuts down.
func newHandler(cfg config.Config, st store.Store, s *services, loadedSpec func() (*openapi3.T, error), stopping <-chan struct{}, started time.Time, log *slog.Logger) (http.Handler, error) {
	doc, err := loadedSpec()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	streams := server.StreamLimits{MaxPerKey: cfg.SSEMaxPerKey, MaxTotal: cfg.SSEMaxStreams, MaxDuration: cfg.SSEMaxDuration}
	if cfg.Engine == config.Postgres {
		streams.Poll = server.StreamPollShared // other instances' changes do not reach this process's hub
	}
	return server.New(server.Options{
		Spec:           doc,
		Database:       st,
		UserCreated:    welcomeMail(s.mail),
		Stopping:       stopping,
		Streams:        streams,
		Budgets:        s.budgets,
		Jobs:           s.engine.Service,
		Hub:            s.engine.Hub,
		Finished:       s.engine.Finished,
		Keys:           keys.NewService(st, append(cfg.APIKeys, cfg.APIKeysNext...)),
		Users:          users.NewService(st),
		Notifications:  notifier.NewPreferences(st, st),
		Logger:         log,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		Started:        started,
		Limits:         s.limits,
		TrustedProxies: cfg.TrustedProxies,
		CORSOrigins:    cfg.CORSOrigins,
		Credentials:    s.creds,
		Triggers:       s.triggers,
		Analytics:      s.analytics,
		PublicURL:      cfg.PublicURL,
		DashboardToken: cfg.DashboardToken,
		EmailDomain:    cfg.EmailDomain,
		Observed:       requestObserver(s.metrics),
		ReadyChecks: append(s.readyChecks, server.ReadyCheck{Name: "job_engine", Check: func(context.Context) error {
			if !s.engine.Running() {
				return levqor.Errorf(levqor.EUnavailable, "The job engine is not running.")
			}
			return nil
		}}),
		Billing:    s.billing,
		Newsletter: s.letter,
		Planner:    s.planner,
		WebDir:     cfg.WebDir,
	})
}

// newHTTPServer bounds every phase of a request and logs the server's own errors.
func newHTTPServer(handler http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// serveUntilDone serves on ln and runs the engine until ctx ends or either fails, then drains
// requests and running jobs together, within cfg.ShutdownTimeout.
func serveUntilDone(ctx context.Context, cfg config.Config, srv *http.Server, ln net.Listener, engine *jobs.Engine, stopping chan struct{}, endStartupGC func(), log *slog.Logger) error {
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	engineDone := make(chan error, 1)
	go func() { engineDone <- engine.Run(engineCtx) }()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	defer settleStartup(endStartupGC, log).Stop()
	select {
	case err := <-errc:
		stopEngine()
		<-engineDone // the engine must not outlive the store it writes to
		return fmt.Errorf("serve: %w", err)
	case err := <-engineDone:
		return fmt.Errorf("job engine: %w", err)
	case <-ctx.Done():
	}
	// Drain requests and running jobs together, within one bound: jobs accepted while
	// requests drain are stored and run at the next start (or on another instance).
	log.Info("shutting down", "drain_timeout", cfg.ShutdownTimeout.String())
	close(stopping) // event streams end now instead of holding the drain
	stopEngine()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("drain incomplete; closing remaining connections", "error", err.Error())
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if err := <-engineDone; err != nil {
		log.Error("job engine", "error", err.Error())
	}
	log.Info("stopped")
	return nil
}

// settleStartup, once start-up has settled (the engine's workers are running),
// puts GOGC back (endStartupGC) and gives back what only start-up used: its
// garbage (spec, schemas, migrations) and the code and tables that
// initialisation touched once (see dropStartupPages).
func settleStartup(endStartupGC func(), log *slog.Logger) *time.Timer {
	return time.AfterFunc(250*time.Millisecond, func() {
		endStartupGC()
		debug.FreeOSMemory()
		if _, err := dropStartupPages(); err != nil {
			log.Warn("unmap start-up pages", "error", err.Error())
		}
	})
}

// rateLimits builds the limiters' store: Redis when configured (limits shared by
// every instance), memory otherwise. Redis is guarded (limitstore): each call has
// cfg.RateLimitTimeout and no retries, a breaker stops calling a failing Redis, and
// failing open falls back to per-process limits. In fail-closed mode /ready checks Redis.
func rateLimits(cfg config.Config, log *slog.Logger) (*server.Limits, []server.ReadyCheck, func(), error) {
	l := &server.Limits{IP: cfg.RateLimitIP, Global: cfg.RateLimitGlobal, Key: cfg.RateLimitKey, FailOpen: cfg.RateLimitFailOpen}
	if cfg.RedisURL == "" {
		l.Store = memory.NewStore()
		return l, nil, func() {}, nil
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("LEVQOR_REDIS_URL: %w", err)
	}
	limitstore.BoundRedis(opts, cfg.RateLimitTimeout)
	client := redis.NewClient(opts)
	primary, err := sredis.NewStoreWithOptions(client, limiter.StoreOptions{Prefix: "levqor:ratelimit"})
	if err != nil {
		client.Close()
		return nil, nil, nil, fmt.Errorf("rate-limit store on Redis: %w", err)
	}
	l.Store = limitstore.New(primary, limitstore.Options{Timeout: cfg.RateLimitTimeout, FailOpen: cfg.RateLimitFailOpen,
		Fallback: memory.NewStore(), Logger: log})
	var checks []server.ReadyCheck
	if !cfg.RateLimitFailOpen { // failing closed, no request passes without Redis
		ping := limitstore.Ping(client, cfg.RateLimitTimeout)
		checks = append(checks, server.ReadyCheck{Name: "rate_limit_store", Check: func(ctx context.Context) error {
			if err := ping(ctx); err != nil {
				return &levqor.Error{Code: levqor.EUnavailable, Message: "The rate-limit store (Redis) does not answer.", Err: err}
			}
			return nil
		}})
	}
	return l, checks, func() { client.Close() }, nil
}

// openStore opens and migrates the configured database.
func openStore(ctx context.Context, cfg config.Config) (store.Store, error) {
	st, err := store.Open(ctx, storeOptions(cfg))
	if err != nil {
		return nil, err
	}
	if err := migrateStore(ctx, st); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// migrateStore applies the migrations st lacks.
func migrateStore(ctx context.Context, st store.Store) error {
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

func migrate(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = fmt.Fprintf(stdout, "migrated %s database\n", st.Engine())
	return err
}

func printVersion(stdout io.Writer) error {
	_, err := fmt.Fprintf(stdout, "levqor %s (commit %s, %s)\n", levqor.Version, levqor.Commit, runtime.Version())
	return err
}
