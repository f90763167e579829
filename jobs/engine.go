package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/outbound"
)

// Engine is the job machinery of one process, wired together: the service the API
// calls, the worker that runs jobs, the webhook dispatcher and the hub between them.
// NewEngine builds it; Run runs it.
type Engine struct {
	// Service is what the API calls: intake, reads, cancel, workflows, webhook secrets.
	Service *Service
	// Hub tells event streams about job changes, and running jobs about cancels.
	Hub *Hub

	worker     *Worker
	dispatcher *Dispatcher
	log        *slog.Logger
	drain      time.Duration
	ran        atomic.Bool
	running    atomic.Bool // between Run's start-up and its return: /ready asks
}

// Running reports whether Run has started the engine's loops and not yet returned.
func (e *Engine) Running() bool { return e.running.Load() }

// Config is everything an Engine needs.
type Config struct {
	Store    Store                // required
	Registry *connectors.Registry // required: the connectors steps run through
	// Guard checks callback URLs at intake and dials completion webhooks (required).
	Guard *outbound.Guard
	// Encode renders a job for completion webhooks, as the API shows it (required).
	Encode func(Job) ([]byte, error)
	// ShutdownTimeout (LEVQOR_SHUTDOWN_TIMEOUT, required) bounds the shutdown: running
	// jobs and their completions get this long once Run's context ends; Run returns
	// within it plus stopGrace.
	ShutdownTimeout time.Duration
	// Budgets, when set, are owners' durable budgets: AI steps reserve on them and
	// intake refuses AI jobs of owners without budget left.
	Budgets *budget.Service
	// Sealer seals owners' webhook signing secrets at rest. `levqor serve` always
	// sets it; nil keeps them in clear (tests).
	Sealer SecretSealer
	// CallbackRetryBase scales the backoff between failed webhook deliveries (default 5 s).
	CallbackRetryBase time.Duration
	Worker            WorkerOptions
	Logger            *slog.Logger // nil: slog.Default()
	// Observer, when set, sees intake, attempts and webhook deliveries (metrics).
	Observer Observer
	// Approvals configures core.approval steps: the key signing their links, the
	// site root and the mailer.
	Approvals ApprovalOptions
}

// NewEngine wires an Engine from cfg. Nothing is started until Run.
func NewEngine(cfg Config) (*Engine, error) {
	var missing []string
	for _, need := range []struct {
		name   string
		absent bool
	}{{"Store", cfg.Store == nil}, {"Registry", cfg.Registry == nil}, {"Guard", cfg.Guard == nil}, {"Encode", cfg.Encode == nil}} {
		if need.absent {
			missing = append(missing, need.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("jobs: engine config lacks %s", strings.Join(missing, ", "))
	}
	if cfg.ShutdownTimeout <= 0 {
		return nil, fmt.Errorf("jobs: engine ShutdownTimeout must be positive, got %s", cfg.ShutdownTimeout)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	hub := NewHub()
	d := newDispatcher(cfg.Store, cfg.Guard.Client(callbackTimeout), cfg.Encode, cfg.Sealer, cfg.CallbackRetryBase, cfg.Logger)
	w := newWorker(cfg.Store, cfg.Registry, hub, cfg.Budgets, d.Wake, cfg.Logger, cfg.Worker)
	svc := newService(cfg.Store, cfg.Registry, cfg.Guard, hub, w.Wake, cfg.Budgets, cfg.Sealer)
	svc.reserve, svc.queued, svc.admit = w.reserve, w.queued, w.admit
	w.approvals = newApprovals(cfg.Approvals)
	svc.approvals = w.approvals
	if cfg.Observer != nil {
		svc.observe, w.observe, d.observe = cfg.Observer, cfg.Observer, cfg.Observer
	}
	return &Engine{Service: svc, Hub: hub, worker: w, dispatcher: d, log: cfg.Logger, drain: cfg.ShutdownTimeout}, nil
}

// Finished returns how many job attempts this engine has finished since it started.
func (e *Engine) Finished() int64 { return e.worker.Finished() }

// Run runs the engine until ctx ends or one of its goroutines fails for good, then
// shuts it down: claiming and webhook deliveries stop at once, running jobs and
// their completions get ShutdownTimeout to end and be stored, then they are
// stopped and left to their leases (ADR 0005). Run returns within ShutdownTimeout
// plus stopGrace, with nil when everything it started has ended and no goroutine
// failed for good.
//
// Every goroutine Run starts is supervised (see restartPause): a panic or an early
// return is logged and the goroutine restarted, and repeated failures stop the
// engine with an error. A job's attempt that panics fails the job (code internal).
// Run may be called once.
func (e *Engine) Run(ctx context.Context) error {
	if !e.ran.CompareAndSwap(false, true) {
		return errors.New("jobs: Engine.Run called twice")
	}
	w := e.worker
	if w.opts.RescueAtStart {
		now := w.now().UTC()
		if n, err := w.store.RescueExpired(ctx, now.Add(100*365*24*time.Hour), now); err != nil {
			return fmt.Errorf("rescue jobs of a previous process: %w", err)
		} else if n > 0 {
			e.log.Warn("returned jobs of a stopped process to the queue", "jobs", n)
		}
	}
	e.running.Store(true)
	defer e.running.Store(false)
	sup := newSupervisor(e.log)
	base := context.WithoutCancel(ctx)
	// Each group of goroutines stops at its own point of the shutdown: claiming and
	// deliveries at once; jobs and the completer at the drain deadline; the heartbeat
	// (which keeps draining jobs' leases), the rescuer and the listener when jobs end.
	claimCtx, stopClaiming := context.WithCancel(base)
	defer stopClaiming()
	jobCtx, stopJobs := context.WithCancelCause(base)
	defer stopJobs(errWorkerStopped)
	bgCtx, stopBackground := context.WithCancel(base)
	defer stopBackground()
	completeCtx, stopCompleting := context.WithCancel(bgCtx)
	defer stopCompleting()

	if l, ok := w.store.(jobListener); ok {
		sup.goLoop(bgCtx, "listener", func(ctx context.Context) error { l.ListenForJobs(ctx, w.signal); return nil }, nil)
	}
	w.gone = make(chan struct{})
	sup.goLoop(completeCtx, "completer", w.complete, func() { close(w.gone) })
	sup.goLoop(bgCtx, "heartbeat", w.heartbeat, nil)
	sup.goLoop(bgCtx, "rescuer", w.rescue, nil)
	sup.goLoop(claimCtx, "webhook dispatcher", e.dispatcher.run, nil)
	var running sync.WaitGroup // the jobs' goroutines, which only the claimer starts
	claimed := make(chan struct{})
	sup.goLoop(claimCtx, "claimer", func(ctx context.Context) error { return w.claim(ctx, jobCtx, &running) }, func() { close(claimed) })

	var err error
	select {
	case <-ctx.Done():
	case err = <-sup.fatal:
	}
	stopClaiming()

	// Shutdown is bounded by drain (LEVQOR_SHUTDOWN_TIMEOUT) as a whole: running jobs
	// have until then to end and have their completions stored; then they are stopped
	// and the completer gives up retrying. Whatever was not stored is left to the
	// leases, which return the jobs to the queue (ADR 0005).
	finished := make(chan struct{})
	go func() { <-claimed; running.Wait(); w.awaitStored(); close(finished) }()
	deadline := time.NewTimer(e.drain)
	defer deadline.Stop()
	select {
	case <-finished:
	case <-deadline.C:
		e.log.Warn("jobs still running at shutdown are left to their leases")
		stopJobs(errWorkerStopped)
		stopCompleting()
	}
	// What is left has only to notice that its context ended: it gets stopGrace, after
	// which Run returns without it rather than hold the process (a store call that
	// hangs instead of failing).
	stopped := make(chan struct{})
	go func() { <-finished; stopBackground(); sup.wg.Wait(); close(stopped) }()
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
	select {
	case <-stopped:
		return err
	case <-grace.C:
		stopJobs(errWorkerStopped)
		stopBackground()
		left := sup.left()
		select {
		case <-finished:
		default:
			left = append(left, "jobs")
		}
		return errors.Join(err, fmt.Errorf("job engine goroutines still running %s after the shutdown deadline, left to the leases: %s",
			stopGrace, strings.Join(left, ", ")))
	}
}

// stopGrace is how long, once shutdown has stopped them, jobs and the engine's
// goroutines get to return before Run returns without them.
const stopGrace = 2 * time.Second

// errWorkerStopped is the cause of jobs' contexts when the engine stops them.
var errWorkerStopped = errors.New("worker stopped")
