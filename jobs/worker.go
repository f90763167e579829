package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/stepinput"
)

// WorkerOptions tune a Worker.
type WorkerOptions struct {
	Concurrency int           // jobs run at once (LEVQOR_WORKERS)
	Lease       time.Duration // how long a claim holds without a heartbeat
	Poll        time.Duration // how often to look for due jobs without a wake-up
	// ClaimCooldown is the least time between two claims that did not fill the free
	// slots (default 5 ms; River's FetchCooldown is the same idea): under a stream of
	// single intakes, each waking the worker, jobs are claimed in groups instead of one
	// claim statement per job. A claim that filled them is followed at once.
	ClaimCooldown time.Duration
	// RescueAtStart returns every running job to the queue when the worker starts:
	// right for SQLite, where one process owns the data directory, so a running
	// job at start-up belongs to a process that died.
	RescueAtStart bool
	// JobMaxCostUSD is a job's AI spending limit when its guardrails set none
	// (LEVQOR_JOB_MAX_COST_USD, default 0.35).
	JobMaxCostUSD float64
	// StepConcurrency is how many steps of one graph job (and items of a for_each)
	// run at once when its guardrails set none (LEVQOR_JOB_STEP_CONCURRENCY, default 4).
	StepConcurrency int
	// RetryBase is the first wait before retrying a failed step (default 1 s); it
	// doubles with each attempt, up to 10 minutes, with jitter.
	RetryBase time.Duration
	// JobFailed, when set, is called in the job's goroutine after a job that failed
	// for good (its last attempt failed) was stored so, with the failing
	// step's error; it should return quickly. (Jobs the rescuer fails, whose worker
	// died on the last attempt, do not come through here, except those with an
	// on_failure step, which a worker runs before failing them.)
	JobFailed func(ctx context.Context, j Job, code, message string)
	// MaxBacklog is intake's flow control (LEVQOR_INTAKE_MAX_BACKLOG): while this
	// many due jobs that intake queued wait for this worker, intake of more due
	// jobs waits for claims to take some, up to BacklogWait, and is then refused
	// (unavailable, 503). 0 never holds intake.
	MaxBacklog  int
	BacklogWait time.Duration
}

// Worker claims due jobs in batches under a lease, runs their steps through the
// connectors, heartbeats its leases and writes completions in batches. The Engine
// runs its goroutines.
type Worker struct {
	store   Store
	reg     *connectors.Registry
	hub     *Hub
	budgets *budget.Service // owners' durable budgets; nil leaves only the per-job budget
	log     *slog.Logger
	opts    WorkerOptions
	token   string
	wake    chan struct{}
	done    chan finishReq
	now     func() time.Time

	finished atomic.Int64 // attempts this worker has finished (stored)
	busy     atomic.Int64 // jobs running now (at most Concurrency)
	ended    func()       // called after a batch that ended jobs with callback URLs for good (wakes the webhook dispatcher)
	observe  Observer
	attempts sync.Map // job id → attempt, from claim to the end of its goroutine (for observe)

	approvals *approvals // sends core.approval requests (set by NewEngine)

	// Jobs handed over at intake (Service.handOver) start on the claimer's terms:
	// launchMu guards launch, which is set while the claimer runs.
	launchMu sync.Mutex
	launch   *launcher
	// What intake may take for hand-overs without passing jobs that wait: backlog is
	// true while due jobs may wait beyond this process's count (the last claim filled
	// every slot it asked for, or failed; a rescue or a resumed wait), and waiting
	// counts the jobs this process's intake queued due since the claim that covered
	// them, to whom as many free slots are left.
	backlog atomic.Bool
	waiting atomic.Int64
	// room is closed, and replaced, after every claim: intake held by MaxBacklog
	// (Worker.admit) waits on it to look at waiting again.
	roomMu     sync.Mutex
	room       chan struct{}
	recounting sync.Mutex // one recount at a time

	// pending is the batch the completer is storing: kept across a restart of the
	// completer (Engine.Run), which stores it first. Only the completer touches it.
	pending  []finishReq
	unstored atomic.Int64  // ends handed to the completer and not yet stored
	gone     chan struct{} // closed when the completer has ended for good (made by Engine.Run)
}

// Finished returns how many job attempts this worker has finished since it started.
func (w *Worker) Finished() int64 { return w.finished.Load() }

type finishReq struct {
	f    Finish
	done chan struct{}
	a    attempt // the attempt's claim, for the observer (seen: known)
	seen bool
}

// jobListener is a store that can tell when other instances insert jobs
// (PostgreSQL's LISTEN/NOTIFY).
type jobListener interface {
	ListenForJobs(ctx context.Context, wake func())
}

// errAttemptPanicked is the error of an attempt whose code panicked: a defect, so
// the job fails (code internal) rather than retry into the same panic.
var errAttemptPanicked = errors.New("the attempt panicked")

// errCancelRequested marks a job context canceled because someone canceled the
// job (as opposed to the worker stopping).
var errCancelRequested = errors.New("job canceled by request")

// newWorker returns a Worker; ended is called after completions that ended jobs with callback URLs
// for good.
func newWorker(store Store, reg *connectors.Registry, hub *Hub, budgets *budget.Service, ended func(), log *slog.Logger, opts WorkerOptions) *Worker {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.Lease <= 0 {
		opts.Lease = 30 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = 250 * time.Millisecond
	}
	if opts.ClaimCooldown <= 0 {
		opts.ClaimCooldown = DefaultClaimCooldown
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = time.Second
	}
	if opts.StepConcurrency <= 0 {
		opts.StepConcurrency = DefaultStepConcurrency
	}
	if opts.JobMaxCostUSD <= 0 {
		opts.JobMaxCostUSD = DefaultJobMaxCostUSD
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	w := &Worker{store: store, reg: reg, hub: hub, budgets: budgets, log: log, opts: opts, token: hex.EncodeToString(b[:]),
		wake: make(chan struct{}, 1), done: make(chan finishReq, 1024), now: time.Now, ended: ended, observe: noObserver{},
		room: make(chan struct{})}
	w.backlog.Store(true) // until the first claim has looked
	return w
}

// Wake tells the worker that jobs may be due now that it does not know of (a rescue,
// a resumed wait): no hand-over until a claim has caught up with them.
func (w *Worker) Wake() {
	w.backlog.Store(true)
	w.signal()
}

// queued tells the worker that intake stored n jobs due now, queued.
func (w *Worker) queued(n int) {
	w.waiting.Add(int64(n))
	w.signal()
}

// signal wakes the claimer (a slot was freed, or another instance inserted jobs: a
// claim sees them; until then they may wait behind this instance's hand-overs).
func (w *Worker) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// claim claims due jobs while ctx lives and runs each in its own goroutine under
// jobCtx, at most Concurrency at once; running counts them.
func (w *Worker) claim(ctx, jobCtx context.Context, running *sync.WaitGroup) error {
	l := &launcher{w: w, ctx: jobCtx, running: running}
	w.launchMu.Lock()
	w.launch = l
	w.launchMu.Unlock()
	defer func() {
		w.launchMu.Lock()
		w.launch = nil // from now on nothing is handed over: Run waits for running
		w.launchMu.Unlock()
	}()
	poll := time.NewTicker(w.opts.Poll)
	defer poll.Stop()
	var last time.Time // when the last claim ran
	behind := false    // the last claim filled its slots, or failed: due jobs may wait
	for ctx.Err() == nil {
		free := w.opts.Concurrency - int(w.busy.Load())
		full := false // this claim took as many as it asked for: there may be more due now
		if free > 0 {
			last = time.Now() // the real clock: w.now may be a test's fake
			now := w.now().UTC()
			ask := min(free, 128)
			// Intake counts its queued jobs after they are stored, so those counted
			// now are visible to this claim, which takes them unless it fills up.
			covered := w.waiting.Load()
			w.backlog.Store(false) // a Wake from here on says there may be more
			list, err := w.store.ClaimJobs(ctx, w.token, now, now.Add(w.opts.Lease), ask)
			full = len(list) == ask
			behind = err != nil || full
			if behind {
				w.backlog.Store(true)
				if err != nil && ctx.Err() == nil {
					w.log.Error("claim jobs", "error", err.Error())
				}
				// Most of what it took is intake's (not all: retries, other
				// instances' jobs), so waiting stays a count for MaxBacklog while the
				// backlog lasts; the next claim that takes all it finds subtracts
				// only what it covered.
				took := int64(len(list))
				w.lowerWaiting(func(v int64) int64 { return max(0, v-took) })
			} else {
				w.waiting.Add(-covered)
			}
			w.roomChanged()
			for _, j := range list {
				w.busy.Add(1)
				running.Add(1)
				l.start(j, now)
			}
		}
		if full {
			continue
		}
		select {
		case <-ctx.Done():
		case <-w.wake:
		case <-poll.C:
		}
		w.cooldown(ctx, last, behind)
	}
	return nil
}

// cooldown lets what arrives before ClaimCooldown has passed since the last claim
// (at last) join the next one: under a stream of single intakes, each waking the
// worker, jobs are claimed in groups. Behind a backlog (behind: the last claim
// filled its slots) it ends as soon as a quarter of the slots are free: the
// jobs are there already, and waiting out the cooldown would cap the worker at
// Concurrency jobs a cooldown. A wake-up that arrives during the pause and is not
// taken here stays pending for the next round's select, so none is lost.
func (w *Worker) cooldown(ctx context.Context, last time.Time, behind bool) {
	wait := w.opts.ClaimCooldown - time.Since(last)
	if wait <= 0 {
		return
	}
	enough := max(1, w.opts.Concurrency/4)
	pause := time.NewTimer(wait)
	defer pause.Stop()
	for !behind || w.opts.Concurrency-int(w.busy.Load()) < enough {
		var wake <-chan struct{}
		if behind {
			wake = w.wake
		}
		select {
		case <-ctx.Done():
			return
		case <-pause.C:
			return
		case <-wake:
		}
	}
}

// lowerWaiting sets waiting to to(waiting), atomically; a value that is not
// lower leaves it as it is.
func (w *Worker) lowerWaiting(to func(v int64) int64) {
	for {
		v := w.waiting.Load()
		if n := to(v); n >= v || w.waiting.CompareAndSwap(v, n) {
			return
		}
	}
}

// roomChanged wakes the intakes held by MaxBacklog (admit) to look again.
func (w *Worker) roomChanged() {
	w.roomMu.Lock()
	close(w.room)
	w.room = make(chan struct{})
	w.roomMu.Unlock()
}

// admit holds an intake of jobs due now while MaxBacklog jobs that intake
// queued wait for this worker, until claims take enough of them. Past
// BacklogWait it refuses them (unavailable: the server answers 503 with
// Retry-After); past ctx it returns ctx's error.
func (w *Worker) admit(ctx context.Context) error {
	limit := int64(w.opts.MaxBacklog)
	if limit <= 0 || w.waiting.Load() < limit {
		return nil
	}
	deadline := time.NewTimer(w.opts.BacklogWait)
	defer deadline.Stop()
	recount := time.NewTicker(recountEvery)
	defer recount.Stop()
	for {
		w.roomMu.Lock()
		room := w.room
		w.roomMu.Unlock()
		if w.waiting.Load() < limit {
			return nil
		}
		select {
		case <-room:
		case <-recount.C:
			w.recount(ctx)
		case <-deadline.C:
			return levqor.Errorf(levqor.EUnavailable, "The job queue is over %d jobs behind on this instance; try again shortly.", limit)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// recountEvery is how often intake held by MaxBacklog has waiting checked
// against the database (Worker.recount).
const recountEvery = 500 * time.Millisecond

// recount lowers waiting to the jobs the database holds queued, and wakes the
// held intakes. With several instances (PostgreSQL) other instances' workers take
// jobs this one queued, which its own claims never learn while its slots are all
// busy: without it, intake would be held for jobs that no longer wait.
func (w *Worker) recount(ctx context.Context) {
	if !w.recounting.TryLock() {
		return // another held intake is at it
	}
	defer w.recounting.Unlock()
	st, err := w.store.QueueStats(ctx)
	if err != nil {
		return // held intakes wait for claims, as without it
	}
	queued := st.ByStatus[StatusQueued]
	w.lowerWaiting(func(v int64) int64 { return min(v, queued) })
	w.roomChanged()
}

// launcher starts the jobs of a running claimer: those it claimed, and those
// handed over at intake.
type launcher struct {
	w       *Worker
	ctx     context.Context // the jobs' context
	running *sync.WaitGroup // Engine.Run waits for it at shutdown
}

// start runs j, whose slot is taken (busy and running counted), in its own goroutine.
func (l *launcher) start(j Job, claimed time.Time) {
	w := l.w
	w.attempts.Store(j.ID, attempt{workflow: j.Workflow, claimed: claimed, callback: j.CallbackURL != ""})
	w.observe.JobClaimed(j.Workflow, max(0, claimed.Sub(j.RunAt)))
	go func() {
		defer func() { w.busy.Add(-1); l.running.Done(); w.attempts.Delete(j.ID); w.signal() }()
		w.runJob(l.ctx, j)
	}()
}

// handover is what jobs handed over at intake are stored under: this worker's
// lease, and the slots taken for them.
type handover struct {
	token       string
	at, leaseTo time.Time
	slots       int
	l           *launcher
}

// reserve takes up to n free slots for jobs handed over at intake while the
// claimer runs, leaving as many as there are jobs waiting in the queue that it
// knows of (waiting), and none while there may be more (backlog): jobs handed
// over do not pass jobs waiting. Each slot must be used by handover.start or given
// back by handover.release. It returns a handover with no slots when there is none.
func (w *Worker) reserve(n int) handover {
	w.launchMu.Lock()
	defer w.launchMu.Unlock()
	if w.launch == nil || n <= 0 || w.backlog.Load() {
		return handover{}
	}
	for {
		busy := w.busy.Load()
		k := min(n, w.opts.Concurrency-int(busy)-int(w.waiting.Load()))
		if k <= 0 {
			return handover{}
		}
		if w.busy.CompareAndSwap(busy, busy+int64(k)) {
			w.launch.running.Add(k)
			now := w.now().UTC()
			return handover{token: w.token, at: now, leaseTo: now.Add(w.opts.Lease), slots: k, l: w.launch}
		}
	}
}

// start runs j, stored running under h, on one of h's slots.
func (h *handover) start(j Job) {
	h.slots--
	h.l.start(j, h.at)
}

// release gives back the slots h did not use.
func (h *handover) release() {
	for ; h.slots > 0; h.slots-- {
		h.l.w.busy.Add(-1)
		h.l.running.Done()
	}
}

// DefaultClaimCooldown is WorkerOptions.ClaimCooldown's default.
const DefaultClaimCooldown = 5 * time.Millisecond

// runJob runs a claimed job's steps in order, skipping those that already
// succeeded, and hands the attempt's end to the completer.
func (w *Worker) runJob(ctx context.Context, j Job) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	unregister := w.hub.run(j.ID, func() { cancel(errCancelRequested) })
	defer unregister()
	if j.CancelRequested {
		cancel(errCancelRequested)
	}
	w.hub.Publish(j.ID)

	steps := append([]StepState(nil), j.Steps...)
	cur := 0 // the step running, for a panic's report
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("a job's attempt panicked; failing the job", "job_id", j.ID, "error", (&panicError{value: p, stack: debug.Stack()}).Error())
			w.failPanicked(ctx, j, steps, cur)
		}
	}()
	// The job's AI budget: its limit less what earlier attempts spent.
	jb, err := budget.NewJobBudget(max(0, jobLimit(j, w.opts.JobMaxCostUSD)-j.CostUSD()))
	if err != nil {
		w.log.Error("job budget", "job_id", j.ID, "error", err.Error())
		jb, _ = budget.NewJobBudget(0)
	}
	ownerLimits := w.ownerLimitsOnce(j)
	if finalizing(j) {
		w.finalize(ctx, j, steps, jb, ownerLimits)
		return
	}
	if !linear(steps) {
		w.runGraph(ctx, j, steps, jb, ownerLimits)
		return
	}
	outputs := map[string]json.RawMessage{}
	var last json.RawMessage
	for i := range steps {
		cur = i
		st := &steps[i]
		if st.Status == StepSucceeded {
			outputs[st.ID], last = st.Output, st.Output
			continue
		}
		if err := context.Cause(ctx); err != nil {
			w.endAttempt(ctx, j, steps, i, err)
			return
		}
		started := w.now().UTC()
		if st.WaitUntil == nil || st.StartedAt == nil { // a wait resumed keeps when it started
			st.StartedAt = &started
		}
		st.Status, st.Attempts, st.FinishedAt, st.Error, st.Output = StepRunning, st.Attempts+1, nil, nil, nil
		spentBefore := jb.SpentUSD()
		var stepBudget budget.Budget = jb
		if w.budgets != nil {
			// Reservations of a worker that dies are released when the step could no longer be running.
			ttl := time.Duration(j.TimeoutS)*time.Second + w.opts.Lease
			stepBudget = budget.NewAll(jb, w.budgets.OwnerDeferred(ownerLimits, j.OwnerID, j.ID, st.ID, ttl))
		}
		out, err := w.runStep(budget.WithBudget(ctx, stepBudget), j, st, outputs)
		var wait *waitError
		if errors.As(err, &wait) {
			st.Status = StepWaiting
			w.park(ctx, j, steps, wait.until, wait.signals)
			return
		}
		if err == nil {
			err = checkJobOutputs(steps, i, out)
		}
		st.CostUSD += jb.SpentUSD() - spentBefore
		finished := w.now().UTC()
		st.FinishedAt = &finished
		if err != nil {
			st.Output = failedOutput(err)
			w.endAttempt(ctx, j, steps, i, err)
			return
		}
		st.Status, st.Output = StepSucceeded, out
		outputs[st.ID], last = out, out
		if i < len(steps)-1 {
			// Record the success before the next step, so a retry after a crash never runs it again.
			ok, err := w.store.SaveSteps(context.WithoutCancel(ctx), j.ID, w.token, steps, finished)
			switch {
			case err != nil:
				// Not a lost lease: the heartbeat would keep a left job running for good.
				// Go on; the completion records every step (a crash before it reruns this one).
				w.log.Error("save step progress; continuing", "job_id", j.ID, "error", err.Error())
			case !ok:
				w.log.Error("lost a job's lease while it ran; leaving it", "job_id", j.ID)
				return
			default:
				w.hub.Publish(j.ID)
			}
		}
	}
	now := w.now().UTC()
	w.finish(Finish{ID: j.ID, LeaseToken: w.token, Status: StatusSucceeded, Steps: steps, Result: last, RunAt: j.RunAt, FinishedAt: &now})
}

// failPanicked ends the attempt of a job whose code panicked at step i as failed
// (errAttemptPanicked). A second panic while doing so leaves the job to its lease.
func (w *Worker) failPanicked(ctx context.Context, j Job, steps []StepState, i int) {
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("failing a panicked job panicked too; leaving it to its lease", "job_id", j.ID, "panic", fmt.Sprint(p))
		}
	}()
	if len(steps) == 0 {
		now := w.now().UTC()
		w.finish(Finish{ID: j.ID, LeaseToken: w.token, Status: StatusFailed, ErrorCode: "internal",
			ErrorMessage: "The job failed.", RunAt: j.RunAt, FinishedAt: &now})
		return
	}
	finished := w.now().UTC()
	steps[i].FinishedAt = &finished
	w.endAttempt(ctx, j, steps, i, errAttemptPanicked)
}

// runStep resolves the step's references and runs it within the job's time limit.
func (w *Worker) runStep(ctx context.Context, j Job, st *StepState, outputs map[string]json.RawMessage) (json.RawMessage, error) {
	input := st.Input
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	input, err := stepinput.Resolve(input, j.Payload, outputs)
	if err != nil {
		return nil, inputError(err)
	}
	if engineStep(st.Step) {
		return w.runWait(ctx, j, st, input)
	}
	return w.runInput(ctx, j, st, input)
}

// inputError is the step error of an input whose references could not be filled in.
func inputError(err error) error {
	var tooLarge *stepinput.SizeError
	if errors.As(err, &tooLarge) {
		return &connectors.StepError{Code: connectors.CodeInvalidInput, Message: err.Error()}
	}
	return &connectors.StepError{Code: "invalid_reference", Message: err.Error()}
}

// runInput runs the step with its resolved input within the job's time limit.
func (w *Worker) runInput(ctx context.Context, j Job, st *StepState, input json.RawMessage) (json.RawMessage, error) {
	ctx = connectors.WithStep(ctx, connectors.Step{JobID: j.ID, StepID: st.ID, OwnerID: j.OwnerID, Attempt: st.Attempts})
	stepCtx, cancel := context.WithTimeout(ctx, time.Duration(j.TimeoutS)*time.Second)
	defer cancel()
	return w.reg.Run(stepCtx, st.Connector, st.Action, input)
}

// endAttempt records why step i stopped: canceled by request, interrupted by
// shutdown (left to the lease), or failed — retried with backoff when it may succeed.
func (w *Worker) endAttempt(ctx context.Context, j Job, steps []StepState, i int, err error) {
	now := w.now().UTC()
	st := &steps[i]
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, errCancelRequested):
		st.Status, st.Error = StepCanceled, &StepError{Code: "canceled", Message: "Canceled by request."}
		EndWaits(steps, now, StepError{Code: "canceled", Message: "Canceled by request."})
		w.finish(Finish{ID: j.ID, LeaseToken: w.token, Status: StatusCanceled, Steps: steps, ErrorCode: "canceled",
			ErrorMessage: "Canceled by request.", RunAt: j.RunAt, FinishedAt: &now})
		return
	case cause != nil:
		return // the worker is stopping: the lease returns the job to the queue
	}
	se := &connectors.StepError{Code: "internal", Message: "The step failed."}
	if !errors.As(err, &se) {
		w.log.Error("step failed without a step error", "job_id", j.ID, "step", st.ID, "error", err.Error())
	}
	st.Status, st.Error = StepFailed, &StepError{Code: se.Code, Message: se.Message}
	msg := fmt.Sprintf("Step %q failed: %s", st.ID, se.Message)
	if se.Retryable && j.Attempts < j.MaxAttempts {
		w.finish(Finish{ID: j.ID, LeaseToken: w.token, Status: StatusRetrying, Steps: steps, ErrorCode: se.Code,
			ErrorMessage: msg, RunAt: now.Add(max(scale(backoff(j.Attempts, 0), w.opts.RetryBase), se.RetryAfter))})
		return
	}
	EndWaits(steps, now, StepError{Code: "canceled", Message: "The job failed before this step's wait ended."})
	stored := w.finish(Finish{ID: j.ID, LeaseToken: w.token, Status: StatusFailed, Steps: steps, ErrorCode: se.Code,
		ErrorMessage: msg, RunAt: j.RunAt, FinishedAt: &now})
	if w.opts.JobFailed != nil {
		stored()
		w.opts.JobFailed(context.WithoutCancel(ctx), j, se.Code, msg)
	}
}

// backoff is the wait before retry n+1: exponential from 1 s, capped at 10 min, with
// ±20% jitter; a vendor's Retry-After wins when longer.
func backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := time.Duration(math.Min(float64(time.Second)*math.Pow(2, float64(attempt-1)), float64(10*time.Minute)))
	d = time.Duration(float64(d) * (0.8 + 0.4*mrand.Float64()))
	return max(d, retryAfter)
}

// ownerLimitsOnce returns the reader of the job owner's limits (override, plan or
// defaults) for one attempt: it reads them at the first step that spends, once, so
// jobs without AI steps read nothing. On a store error they are zero: nothing may be
// spent (fail closed).
func (w *Worker) ownerLimitsOnce(j Job) func(context.Context) budget.Limits {
	var (
		once sync.Once
		l    budget.Limits
	)
	return func(ctx context.Context) budget.Limits {
		once.Do(func() {
			if w.budgets == nil {
				return
			}
			var err error
			if l, err = w.budgets.Limits(ctx, j.OwnerID); err != nil {
				l = budget.Limits{}
				w.log.Error("owner budget limits; the job's AI steps will be refused", "job_id", j.ID, "error", err.Error())
			}
		})
		return l
	}
}

// DefaultJobMaxCostUSD is a job's AI spending limit unless configured otherwise.
const DefaultJobMaxCostUSD = 0.35

// jobLimit is the job's guardrails.max_cost_usd, or def.
func jobLimit(j Job, def float64) float64 {
	var g struct {
		MaxCostUSD *float64 `json:"max_cost_usd"`
	}
	if len(j.Guardrails) > 0 && string(j.Guardrails) != "{}" && json.Unmarshal(j.Guardrails, &g) == nil && g.MaxCostUSD != nil {
		return *g.MaxCostUSD
	}
	return def
}

// scale stretches a backoff computed for a 1 s base to another base.
func scale(d, base time.Duration) time.Duration {
	return time.Duration(float64(d) * base.Seconds())
}

// finish hands an attempt's end to the completer, which stores it with others in
// one transaction, and returns at once: the job's slot is free for another job
// meanwhile (as River frees it when Work returns), and the lease, which the
// heartbeat keeps extending, holds the job until its end is stored. It blocks only
// while the completer's queue (cap(w.done)) is full. stored waits until the end is
// stored, or the completer is gone (it gave up at shutdown: the lease returns the
// job), for callers whose next step needs it stored.
func (w *Worker) finish(f Finish) (stored func()) {
	req := finishReq{f: f, done: make(chan struct{})}
	if a, ok := w.attempts.Load(f.ID); ok {
		req.a, req.seen = a.(attempt), true
	}
	w.unstored.Add(1)
	select {
	case w.done <- req:
	case <-w.gone:
		w.unstored.Add(-1)
		return func() {}
	}
	return func() {
		select {
		case <-req.done:
		case <-w.gone:
		}
	}
}

// awaitStored waits until every end handed to the completer is stored, or the
// completer is gone (Engine.Run's shutdown, once no job runs).
func (w *Worker) awaitStored() {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for w.unstored.Load() > 0 {
		select {
		case <-w.gone:
			return
		case <-tick.C:
		}
	}
}

// complete writes attempt ends in batches: whatever has queued up while the
// previous batch was being written goes in one transaction. A batch that fails is
// retried until it is stored or ctx ends (the shutdown deadline): then it is left to
// the leases and complete returns.
func (w *Worker) complete(ctx context.Context) error {
	for {
		batch := w.pending // a batch a failed completer left: stored first
		if len(batch) == 0 {
			select {
			case first := <-w.done:
				batch = append(batch, first)
			case <-ctx.Done():
				return nil
			}
		}
	drain:
		for len(batch) < 256 {
			select {
			case r := <-w.done:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		w.pending = batch
		fs := make([]Finish, len(batch))
		for i, r := range batch {
			fs[i] = r.f
		}
		for attempt := 0; ; attempt++ {
			_, err := w.store.FinishJobs(ctx, w.now().UTC(), fs)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				w.log.Warn("job completions not stored at shutdown are left to their leases", "jobs", len(fs), "error", err.Error())
				return nil
			}
			w.log.Error("store job completions; retrying", "jobs", len(fs), "error", err.Error())
			retry := time.NewTimer(min(time.Duration(attempt+1)*100*time.Millisecond, 5*time.Second))
			select {
			case <-retry.C:
			case <-ctx.Done():
				retry.Stop()
			}
		}
		w.pending = nil
		w.finished.Add(int64(len(batch)))
		w.unstored.Add(-int64(len(batch)))
		stored := w.now().UTC()
		for _, r := range batch {
			if r.seen {
				w.observe.AttemptEnded(r.a.workflow, r.f.Status, r.f.FinishedAt != nil, stored.Sub(r.a.claimed))
			}
		}
		delivery := false // a job with a callback URL ended: its webhook is due now
		for _, r := range batch {
			delivery = delivery || r.f.FinishedAt != nil && (r.a.callback || !r.seen)
		}
		if delivery && w.ended != nil {
			w.ended()
		}
		for _, r := range batch {
			w.hub.Publish(r.f.ID)
			close(r.done)
		}
	}
}

// heartbeat extends this worker's leases and stops jobs whose cancellation was
// requested (possibly through another instance).
func (w *Worker) heartbeat(ctx context.Context) error {
	t := time.NewTicker(w.opts.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cancel, err := w.store.ExtendLeases(ctx, w.token, w.now().UTC().Add(w.opts.Lease))
		if err != nil {
			if ctx.Err() == nil {
				w.log.Error("extend leases", "error", err.Error())
			}
			continue
		}
		for _, id := range cancel {
			w.hub.Cancel(id)
		}
	}
}

// rescue returns jobs whose worker died (expired leases) to the queue.
func (w *Worker) rescue(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := w.now().UTC()
		if w.budgets != nil {
			if _, err := w.budgets.Expire(ctx); err != nil && ctx.Err() == nil {
				w.log.Error("release expired budget reservations", "error", err.Error())
			}
		}
		n, err := w.store.RescueExpired(ctx, now, now)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Error("rescue expired leases", "error", err.Error())
			}
			continue
		}
		if n > 0 {
			w.log.Warn("returned jobs with expired leases to the queue", "jobs", n)
			w.hub.PublishAll() // the rescued jobs' streams: RescueExpired does not say which
			w.Wake()
		}
	}
}
