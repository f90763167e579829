package jobs_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/outbound"
)

// newEngine builds an engine from newEngineConfig(cfg).
func newEngine(t *testing.T, cfg jobs.Config) *jobs.Engine {
	t.Helper()
	e, err := jobs.NewEngine(newEngineConfig(t, cfg))
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e
}

// newEngineConfig is cfg with what the test left unset filled in: a guard that
// exempts nothing, an encoder of the job's id, a discarding logger and a 1 s
// shutdown bound.
func newEngineConfig(t testing.TB, cfg jobs.Config) jobs.Config {
	t.Helper()
	if cfg.Guard == nil {
		guard, err := outbound.NewGuard(nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Guard = guard
	}
	if cfg.Encode == nil {
		cfg.Encode = func(j jobs.Job) ([]byte, error) { return json.Marshal(j.ID) }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = time.Second
	}
	return cfg
}

// runEngine runs e until the test ends; the returned channel gets Run's result.
func runEngine(t *testing.T, e *jobs.Engine) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ran, done := make(chan error, 1), make(chan struct{})
	go func() { defer close(done); ran <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the engine did not stop within 10 s")
		}
	})
	return ran
}

// mustRegistry returns a registry of the connectors.
func mustRegistry(t testing.TB, conns ...connectors.Connector) *connectors.Registry {
	t.Helper()
	reg, err := connectors.NewRegistry(conns...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}
