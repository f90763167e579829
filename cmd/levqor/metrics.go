package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"time"

	"github.com/levqor/levqor/backup"
	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/config"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/metrics"
	"github.com/levqor/levqor/store"
)

// newMetrics builds the Prometheus metrics when LEVQOR_METRICS_ADDR is set, else nil.
func newMetrics(cfg config.Config, st store.Store) *metrics.Metrics {
	if cfg.MetricsAddr == "" {
		return nil
	}
	return metrics.New(metrics.Options{QueueDepth: st.QueueStats, BackupDir: filepath.Join(cfg.DataDir, "backups")})
}

// jobObserver is m as the engine's observer; nil (no interface holding a nil
// pointer) without metrics.
func jobObserver(m *metrics.Metrics) jobs.Observer {
	if m == nil {
		return nil
	}
	return m
}

// requestObserver is m's request hook for server.Options.Observed, or nil.
func requestObserver(m *metrics.Metrics) func(method, route string, status int, errCode string, d time.Duration) {
	if m == nil {
		return nil
	}
	return m.Request
}

// spendObserver is m's hook for budget.Service.OnSpend, or nil.
func spendObserver(m *metrics.Metrics) func(model string, actual budget.Nanos) {
	if m == nil {
		return nil
	}
	return m.AISpend
}

// backupObserver is m's hook for backup.Options.OnResult, or nil.
func backupObserver(m *metrics.Metrics) func(backup.Result, error) {
	if m == nil {
		return nil
	}
	return m.BackupResult
}

// startMetrics serves GET /metrics on LEVQOR_METRICS_ADDR, a listener of its own: it
// is not part of the API (nor of its spec), carries no authentication, and belongs on
// a private interface. stop shuts it down.
func startMetrics(cfg config.Config, m *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
	if m == nil {
		return func() {}, nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	if cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (LEVQOR_METRICS_ADDR): %w", cfg.MetricsAddr, err)
	}
	log.Info("metrics listening", "addr", ln.Addr().String())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener", "error", err.Error())
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
