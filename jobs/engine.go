package jobs

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/outbound"
)

// Engine is the job machinery of one process, wired together: the service the API
// calls, the worker that runs jobs, the webhook dispatcher and the hub between them.
type Engine struct {
	Service    *Service
	Hub        *Hub
	Worker     *Worker
	Dispatcher *Dispatcher
}

// EngineOptions configure an Engine.
type EngineOptions struct {
	Worker WorkerOptions
	// Budgets, when set, are owners' durable budgets: AI steps reserve on them and
	// intake refuses AI jobs of owners without budget left.
	Budgets *budget.Service
	// CallbackRetryBase scales the backoff between failed webhook deliveries (default 5 s).
	CallbackRetryBase time.Duration
	// Encode renders a job for completion webhooks, as the API shows it.
	Encode func(Job) ([]byte, error)
	// Sealer seals owners' webhook signing secrets at rest. `levqor serve` always
	// sets it; nil keeps them in clear (tests).
	Sealer SecretSealer
	Logger *slog.Logger
}

// NewEngine wires an Engine over store, with the connectors of reg and the outbound
// guard for callback URLs.
func NewEngine(store Store, reg *connectors.Registry, guard *outbound.Guard, opts EngineOptions) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.Worker.Logger = opts.Logger
	opts.Worker.Budgets = opts.Budgets
	hub := NewHub()
	w := NewWorker(store, reg, hub, opts.Worker)
	d := NewDispatcher(store, guard.Client(callbackTimeout), opts.Encode, opts.Logger)
	if opts.CallbackRetryBase > 0 {
		d.RetryBase = opts.CallbackRetryBase
	}
	d.sealer = opts.Sealer
	w.ended = d.Wake
	svc := NewService(store, reg, guard, hub, w.Wake)
	svc.budgets = opts.Budgets
	svc.sealer = opts.Sealer
	return &Engine{Service: svc, Hub: hub, Worker: w, Dispatcher: d}
}

// Run runs the worker and the dispatcher until ctx ends; running jobs then get
// drain to finish before they are left to their leases. The worker returns within
// drain plus stopGrace (see Worker.Run); the dispatcher, which stops as soon as ctx
// ends unless a store call holds it, is waited for stopGrace more at most.
func (e *Engine) Run(ctx context.Context, drain time.Duration) error {
	dispatched := make(chan struct{})
	go func() { defer close(dispatched); e.Dispatcher.Run(ctx) }()
	err := e.Worker.Run(ctx, drain)
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
	select {
	case <-dispatched:
	case <-grace.C:
		err = errors.Join(err, errors.New("webhook dispatcher still running after the shutdown bound; its deliveries are left to their leases"))
	}
	return err
}
