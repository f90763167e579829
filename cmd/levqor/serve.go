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
	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/config"
	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/outbound"
	"github.com/levqor/levqor/server"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/users"
)

// serve opens and migrates the database, then serves HTTP until ctx ends, when it
// stops accepting, drains in-flight requests (bounded) and closes the database.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	started := time.Now()
	if len(args) > 0 {
		return usageError{fmt.Sprintf("serve takes no arguments, got %q", args)}
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	logOut := newBufferedLog(stdout)
	defer logOut.Close()
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}))
	slog.SetDefault(log)

	// Parsing the embedded spec is the largest single cost of start-up: it runs on
	// another core while the database opens and the connectors compile their schemas.
	type loaded struct {
		spec *openapi3.T
		err  error
	}
	specc := make(chan loaded, 1)
	go func() {
		spec, err := api.GetSpec()
		specc <- loaded{spec, err}
	}()

	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("close database", "error", err.Error())
		}
	}()
	// Connector credentials: the key from LEVQOR_SECRET_KEY or the data dir.
	creds, err := credentials.FromConfig(cfg, st, log)
	if err != nil {
		return err
	}
	// Webhook secrets written before they were sealed (migration 0012) are sealed now.
	if n, err := jobs.SealWebhookSecrets(ctx, st, creds); err != nil {
		return fmt.Errorf("seal stored webhook secrets: %w", err)
	} else if n > 0 {
		log.Info("sealed webhook secrets stored in clear", "rows", n)
	}
	// Analytics: emails hashed with LEVQOR_HASH_SECRET or a secret kept in the data dir.
	hashSecret, err := analytics.LoadSecret(cfg.HashSecret, cfg.DataDir)
	if err != nil {
		return err
	}
	metrics, err := analytics.NewService(st, hashSecret)
	if err != nil {
		return err
	}

	limits, closeLimits, err := rateLimits(cfg)
	if err != nil {
		return err
	}
	defer closeLimits()
	guard, err := outbound.NewGuard(cfg.OutboundAllowHosts)
	if err != nil {
		return fmt.Errorf("LEVQOR_OUTBOUND_ALLOW_HOSTS: %w", err)
	}
	reg, err := newRegistry(cfg, guard, creds)
	if err != nil {
		return err
	}
	ownerDefaults := budget.Limits{Daily: budget.USDToNanos(cfg.BudgetDailyUSD), Monthly: budget.USDToNanos(cfg.BudgetMonthlyUSD)}
	// Levqor's own email (Resend); without LEVQOR_RESEND_API_KEY it logs and drops.
	mail, err := notifier.New(notifier.Config{BaseURL: cfg.ResendBaseURL, APIKey: cfg.ResendAPIKey,
		Domain: cfg.EmailDomain, PublicURL: cfg.PublicURL, Logger: log})
	if err != nil {
		return fmt.Errorf("notifier: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = mail.Close(ctx)
	}()
	budgets := budget.NewService(st, ownerDefaults).WithLogger(log).OnThreshold(budgetThresholdMail(mail, st, log))
	engine, err := jobs.NewEngine(jobs.Config{
		Store: st, Registry: reg, Guard: guard, ShutdownTimeout: cfg.ShutdownTimeout,
		Budgets: budgets,
		Worker: jobs.WorkerOptions{Concurrency: cfg.Workers, Lease: cfg.JobLease, RescueAtStart: cfg.Engine == config.SQLite,
			JobMaxCostUSD: cfg.JobMaxCostUSD, JobFailed: jobFailedMail(mail, st, log)},
		Encode: server.EncodeJob,
		Sealer: creds,
		Logger: log,
	})
	if err != nil {
		return err
	}
	stopping := make(chan struct{})
	streams := server.StreamLimits{MaxPerKey: cfg.SSEMaxPerKey, MaxTotal: cfg.SSEMaxStreams, MaxDuration: cfg.SSEMaxDuration}
	if cfg.Engine == config.Postgres {
		streams.Poll = server.StreamPollShared // other instances' changes do not reach this process's hub
	}
	spec := <-specc
	if spec.err != nil {
		return fmt.Errorf("load embedded spec: %w", spec.err)
	}
	handler, err := server.New(server.Options{
		Spec:           spec.spec,
		UserCreated:    welcomeMail(mail),
		Stopping:       stopping,
		Streams:        streams,
		Budgets:        budgets,
		Jobs:           engine.Service,
		Hub:            engine.Hub,
		Finished:       engine.Finished,
		Store:          st,
		Keys:           keys.NewService(st, append(cfg.APIKeys, cfg.APIKeysNext...)),
		Users:          users.NewService(st),
		Logger:         log,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		Started:        started,
		Limits:         limits,
		TrustedProxies: cfg.TrustedProxies,
		CORSOrigins:    cfg.CORSOrigins,
		Credentials:    creds,
		Analytics:      metrics,
		PublicURL:      cfg.PublicURL,
		DashboardToken: cfg.DashboardToken,
		EmailDomain:    cfg.EmailDomain,
	})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (LEVQOR_ADDR): %w", cfg.Addr, err)
	}
	log.Info("listening", "addr", ln.Addr().String(), "version", levqor.Version, "database", st.Engine(),
		"go", runtime.Version(), "startup_ms", time.Since(started).Milliseconds())
	logOut.flush() // whoever waits for this line (supervisors, tests) sees it now

	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	engineDone := make(chan error, 1)
	go func() { engineDone <- engine.Run(engineCtx) }()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	// Once start-up has settled (the engine's workers are running), give back what
	// only start-up used: its garbage (spec, docs assets, migrations) and the code and
	// tables that initialisation touched once (see dropStartupPages).
	settled := time.AfterFunc(250*time.Millisecond, func() {
		debug.FreeOSMemory()
		if _, err := dropStartupPages(); err != nil {
			log.Warn("unmap start-up pages", "error", err.Error())
		}
	})
	defer settled.Stop()
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

// rateLimits builds the limiters' store: Redis when configured (limits shared by
// every instance), memory otherwise.
func rateLimits(cfg config.Config) (*server.Limits, func(), error) {
	l := &server.Limits{IP: cfg.RateLimitIP, Global: cfg.RateLimitGlobal, Key: cfg.RateLimitKey, FailOpen: cfg.RateLimitFailOpen}
	if cfg.RedisURL == "" {
		l.Store = memory.NewStore()
		return l, func() {}, nil
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("LEVQOR_REDIS_URL: %w", err)
	}
	client := redis.NewClient(opts)
	l.Store, err = sredis.NewStoreWithOptions(client, limiter.StoreOptions{Prefix: "levqor:ratelimit", MaxRetry: 3})
	if err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("rate-limit store on Redis: %w", err)
	}
	return l, func() { client.Close() }, nil
}

// openStore opens and migrates the configured database.
func openStore(ctx context.Context, cfg config.Config) (store.Store, error) {
	st, err := store.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return st, nil
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
