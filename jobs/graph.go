package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/stepinput"
	"github.com/levqor/levqor/workflow"
)

// DefaultStepConcurrency is how many steps of one job run at once unless configured
// otherwise (LEVQOR_JOB_STEP_CONCURRENCY) or set by the job's guardrails.concurrency.
const DefaultStepConcurrency = 4

// MaxStepConcurrency bounds guardrails.concurrency (and the setting).
const MaxStepConcurrency = 32

// linear reports whether a job's steps form a plain sequence, which runJob runs as
// it always has: one step after another, with no extra work or writes.
func linear(steps []StepState) bool {
	for i := range steps {
		if !workflow.Linear([]Step{steps[i].Step}) {
			return false
		}
	}
	return true
}

// stepConcurrency is the job's guardrails.concurrency, or def.
func stepConcurrency(j Job, def int) int {
	var g struct {
		Concurrency *int `json:"concurrency"`
	}
	if len(j.Guardrails) > 0 && json.Unmarshal(j.Guardrails, &g) == nil && g.Concurrency != nil {
		return min(max(*g.Concurrency, 1), MaxStepConcurrency)
	}
	return def
}

var (
	// errSiblingFailed stops a graph job's running steps when another one failed
	// the attempt: they run again in the next attempt, if any.
	errSiblingFailed = errors.New("another step of the job failed")
	// errLeaseLost stops a graph job whose lease another worker took.
	errLeaseLost = errors.New("the job's lease was lost")
)

// Step error codes of the graph.
const (
	codeInvalidWorkflow  = "invalid_workflow"
	codeInvalidCondition = "invalid_condition"
	codeInvalidForEach   = "invalid_for_each"
)

// graphRun is one attempt of a job whose workflow is a graph: the scheduler (run)
// starts steps whose needs have ended, up to the job's concurrency, and records
// each step's end before starting what it unblocks.
type graphRun struct {
	w           *Worker
	j           Job
	g           *workflow.Graph
	jb          *budget.JobBudget
	ownerLimits func(context.Context) budget.Limits // read once, at the first step that spends
	conc        int
	main        int // steps other than the on_failure step

	mu    sync.Mutex
	steps []StepState // guarded by mu
}

// runGraph runs one attempt of a graph job and hands its end to the completer.
func (w *Worker) runGraph(ctx context.Context, j Job, steps []StepState, jb *budget.JobBudget, ownerLimits func(context.Context) budget.Limits) {
	specs := make([]Step, len(steps))
	for i := range steps {
		specs[i] = steps[i].Step
	}
	g, err := workflow.Parse(specs, "/steps")
	if err != nil {
		// Checked at intake: only a job stored under older rules gets here; it fails
		// rather than run in a way nobody validated.
		now := w.now().UTC()
		w.finish(Finish{ID: j.ID, LeaseToken: w.token, Status: StatusFailed, Steps: steps, ErrorCode: codeInvalidWorkflow,
			ErrorMessage: "The job's workflow is no longer valid: " + err.Error(), RunAt: j.RunAt, FinishedAt: &now})
		return
	}
	r := &graphRun{w: w, j: j, g: g, jb: jb, ownerLimits: ownerLimits, steps: steps, main: len(steps),
		conc: stepConcurrency(j, w.opts.StepConcurrency)}
	if g.OnFailure >= 0 {
		r.main = g.OnFailure
	}
	failedAt, err := r.run(ctx)
	var wait *waitError
	switch {
	case errors.As(err, &wait):
		w.park(ctx, j, r.steps, wait.until, wait.signals)
		return
	case errors.Is(err, errLeaseLost):
		w.log.Error("lost a job's lease while it ran; leaving it", "job_id", j.ID)
		return
	case err != nil:
		if context.Cause(ctx) == nil && g.OnFailure >= 0 && !w.willRetry(j, err) {
			r.runOnFailure(ctx)
		}
		w.endAttempt(ctx, j, r.steps, failedAt, err)
		return
	}
	now := w.now().UTC()
	w.finish(Finish{ID: j.ID, LeaseToken: w.token, Status: StatusSucceeded, Steps: r.steps, Result: r.steps[r.main-1].Output,
		RunAt: j.RunAt, FinishedAt: &now})
}

// willRetry reports whether endAttempt would retry the job after err.
func (w *Worker) willRetry(j Job, err error) bool {
	var se *connectors.StepError
	return errors.As(err, &se) && se.Retryable && j.Attempts < j.MaxAttempts
}

// run runs the graph's steps and returns the step that ended the attempt and why,
// or -1 and nil when every step ended (succeeded, skipped, or failed and continuing).
func (r *graphRun) run(ctx context.Context) (int, error) {
	ended := make([]bool, r.main)
	started := make([]bool, r.main)
	for i := range r.main {
		switch r.steps[i].Status {
		case StepSucceeded, StepSkipped:
			ended[i], started[i] = true, true // never run again
		default:
			r.steps[i].Status = StepPending // did not end well in an earlier attempt: runs again
		}
	}
	stepCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	type result struct {
		i   int
		err error
	}
	results := make(chan result, r.main)
	running, failedAt := 0, -1
	var failErr error
	var parked *waitError // the steps that wait: the job parks once the others have ended
	for {
		if failErr == nil && context.Cause(ctx) == nil {
			for i := 0; i < r.main && running < r.conc; i++ {
				if started[i] || !r.ready(i, ended) {
					continue
				}
				started[i] = true
				running++
				go func() { results <- result{i, r.runStep(stepCtx, i)} }()
			}
		}
		if running == 0 {
			break
		}
		res := <-results
		running--
		var wait *waitError
		switch {
		case res.err != nil && failErr != nil:
			// Stopped because another step failed the attempt (or failed too): it runs again.
			r.reset(res.i)
			continue
		case errors.As(res.err, &wait):
			if parked == nil {
				parked = &waitError{until: wait.until}
			}
			parked.until = minTime(parked.until, wait.until)
			parked.signals = append(parked.signals, wait.signals...)
			continue
		case res.err != nil && (!r.g.Steps[res.i].ContinueOnError || context.Cause(ctx) != nil || errors.Is(res.err, errAttemptPanicked)):
			failErr, failedAt = res.err, res.i
			stop(errSiblingFailed)
			continue
		}
		ended[res.i] = true
		if running > 0 || !r.allEnded(ended) {
			// Record the end before what it unblocks runs, so a retry after a crash never runs it again.
			if err := r.save(ctx); err != nil {
				stop(err)
				for ; running > 0; running-- {
					<-results
				}
				return -1, err
			}
		}
	}
	if failErr != nil {
		return failedAt, failErr
	}
	if cause := context.Cause(ctx); cause != nil && !r.allEnded(ended) {
		// Canceled or stopping between steps: the first step that has not ended takes it.
		for i := range r.main {
			if !ended[i] {
				return i, cause
			}
		}
	}
	if parked != nil {
		return -1, parked
	}
	return -1, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// wait runs step i, a core.wait or core.wait_for_signal (jobs/wait.go): it ends, or
// is left waiting with a *waitError.
func (r *graphRun) wait(ctx context.Context, i int, input json.RawMessage) error {
	var st StepState
	r.update(i, func(s *StepState) { s.Attempts++; st = *s })
	out, err := r.w.runWait(ctx, r.j, &st, input)
	r.update(i, func(s *StepState) { s.WaitUntil = st.WaitUntil })
	var wait *waitError
	if errors.As(err, &wait) {
		r.update(i, func(s *StepState) { s.Status = StepWaiting })
		return err
	}
	return r.end(i, out, err)
}

func (r *graphRun) allEnded(ended []bool) bool {
	for _, e := range ended {
		if !e {
			return false
		}
	}
	return true
}

// ready reports whether every need of step i has ended.
func (r *graphRun) ready(i int, ended []bool) bool {
	for _, j := range r.g.Needs[i] {
		if !ended[j] {
			return false
		}
	}
	return true
}

// reset returns step i, stopped by another step's failure, to pending.
func (r *graphRun) reset(i int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &r.steps[i]
	st.Status, st.Error, st.Output, st.FinishedAt, st.Iterations = StepPending, nil, nil, nil, nil
}

// save records the steps' progress while the worker holds the job's lease.
func (r *graphRun) save(ctx context.Context) error {
	snap := r.snapshot()
	ok, err := r.w.store.SaveSteps(context.WithoutCancel(ctx), r.j.ID, r.w.token, snap, r.w.now().UTC())
	switch {
	case err != nil:
		// As in runJob: go on; the completion records every step.
		r.w.log.Error("save step progress; continuing", "job_id", r.j.ID, "error", err.Error())
	case !ok:
		return errLeaseLost
	default:
		r.w.hub.Publish(r.j.ID)
	}
	return nil
}

// snapshot copies the steps (iterations included) for the store.
func (r *graphRun) snapshot() []StepState {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]StepState(nil), r.steps...)
	for i := range out {
		out[i].Iterations = append([]Iteration(nil), out[i].Iterations...)
	}
	return out
}

// env is what step i's expressions read: the payload and its ancestors that ended.
func (r *graphRun) env(i int) (workflow.Env, map[string]json.RawMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	env := workflow.Env{Payload: r.j.Payload, Steps: map[string]workflow.Result{}}
	outputs := map[string]json.RawMessage{}
	for k := range r.steps {
		st := r.steps[k]
		if k == i || !r.g.Ancestor(i, k) {
			continue
		}
		switch st.Status {
		case StepSucceeded:
			env.Steps[st.ID] = workflow.Result{Status: st.Status, Output: st.Output}
			outputs[st.ID] = st.Output
		case StepSkipped, StepFailed:
			env.Steps[st.ID] = workflow.Result{Status: st.Status}
		}
	}
	return env, outputs
}

// needSkipped reports whether a need of step i was skipped.
func (r *graphRun) needSkipped(i int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, j := range r.g.Needs[i] {
		if r.steps[j].Status == StepSkipped {
			return true
		}
	}
	return false
}

// update changes step i under the lock.
func (r *graphRun) update(i int, f func(st *StepState)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.steps[i])
}

// runStep decides and runs step i: skipped, once, or once per item.
func (r *graphRun) runStep(ctx context.Context, i int) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.w.log.Error("a job's step panicked; failing the job", "job_id", r.j.ID, "error", (&panicError{value: p, stack: debug.Stack()}).Error())
			r.end(i, nil, errAttemptPanicked)
			err = errAttemptPanicked
		}
	}()
	spec := r.g.Steps[i]
	now := r.w.now().UTC()
	r.update(i, func(st *StepState) {
		if st.WaitUntil == nil || st.StartedAt == nil { // a wait resumed keeps when it started
			st.StartedAt = &now
		}
		st.Status, st.FinishedAt, st.Error, st.Output, st.Iterations = StepRunning, nil, nil, nil, nil
	})
	if spec.If == "" && r.needSkipped(i) {
		r.skip(i)
		return nil
	}
	env, outputs := r.env(i)
	if spec.ForEach != "" {
		out, err := r.runEach(ctx, i, env, outputs)
		return r.end(i, out, err)
	}
	ok, err := r.g.Cond(i, env)
	if err != nil {
		return r.end(i, nil, &connectors.StepError{Code: codeInvalidCondition, Message: err.Error()})
	}
	if !ok {
		r.skip(i)
		return nil
	}
	input := spec.Input
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	resolved, err := stepinput.Resolve(input, r.j.Payload, outputs)
	if err != nil {
		return r.end(i, nil, inputError(err))
	}
	if engineStep(spec) {
		return r.wait(ctx, i, resolved)
	}
	out, err := r.try(ctx, i, -1, resolved)
	if err == nil {
		r.mu.Lock()
		err = checkOutputs(r.steps, i, r.main-1, out)
		r.mu.Unlock()
	}
	return r.end(i, out, err)
}

// skip marks step i skipped.
func (r *graphRun) skip(i int) {
	now := r.w.now().UTC()
	r.update(i, func(st *StepState) { st.Status, st.FinishedAt = StepSkipped, &now })
}

// end records step i's end: succeeded with out, or failed with err (returned).
func (r *graphRun) end(i int, out json.RawMessage, err error) error {
	now := r.w.now().UTC()
	r.update(i, func(st *StepState) {
		st.FinishedAt = &now
		if err == nil {
			st.Status, st.Output = StepSucceeded, out
			return
		}
		se := &connectors.StepError{Code: "internal", Message: "The step failed."}
		errors.As(err, &se)
		st.Status, st.Error, st.Output = StepFailed, &StepError{Code: se.Code, Message: se.Message}, failedOutput(err)
	})
	return err
}

// runEach runs step i once per item of its for_each, at most max_concurrency at
// once; its output is the array of the items' outputs (null for skipped items).
// The first item that fails stops the others and fails the step.
func (r *graphRun) runEach(ctx context.Context, i int, env workflow.Env, outputs map[string]json.RawMessage) (json.RawMessage, error) {
	spec := r.g.Steps[i]
	items, err := r.g.Items(i, env)
	if err != nil {
		return nil, &connectors.StepError{Code: codeInvalidForEach, Message: err.Error()}
	}
	if spec.If != "" {
		if env, err = env.Prepare(); err != nil {
			return nil, &connectors.StepError{Code: codeInvalidCondition, Message: err.Error()}
		}
	}
	r.update(i, func(st *StepState) {
		st.Iterations = make([]Iteration, len(items))
		for k := range st.Iterations {
			st.Iterations[k] = Iteration{Index: k, Status: StepPending}
		}
	})
	conc := spec.MaxConcurrency
	if conc <= 0 {
		conc = r.conc
	}
	input := spec.Input
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	itemCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	outs := make([]json.RawMessage, len(items))
	sem := make(chan struct{}, conc)
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
		size     int // bytes of the items' outputs so far
	)
	fail := func(err error) {
		once.Do(func() { firstErr = err; stop(errSiblingFailed) })
	}
	for k, item := range items {
		select {
		case sem <- struct{}{}:
		case <-itemCtx.Done():
		}
		if itemCtx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			defer func() {
				if p := recover(); p != nil {
					r.w.log.Error("a for_each item panicked; failing the job", "job_id", r.j.ID, "error", (&panicError{value: p, stack: debug.Stack()}).Error())
					fail(errAttemptPanicked)
				}
			}()
			out, err := r.runItem(itemCtx, i, k, item, input, env, outputs)
			if err == nil && out != nil {
				r.mu.Lock()
				size += len(out) + 1
				err = checkOutputSize(r.steps, i, r.main-1, size)
				r.mu.Unlock()
			}
			if err != nil {
				fail(err)
				return
			}
			outs[k] = out
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for k, out := range outs {
		if k > 0 {
			b.WriteByte(',')
		}
		if out == nil {
			out = json.RawMessage("null")
		}
		b.Write(out)
	}
	b.WriteByte(']')
	out := json.RawMessage(b.Bytes())
	r.mu.Lock()
	err = checkOutputs(r.steps, i, r.main-1, out)
	r.mu.Unlock()
	return out, err
}

// runItem runs item k of for_each step i: skipped (nil output) when the step's `if`
// is false for it.
func (r *graphRun) runItem(ctx context.Context, i, k int, item, input json.RawMessage, env workflow.Env, outputs map[string]json.RawMessage) (json.RawMessage, error) {
	now := r.w.now().UTC()
	r.update(i, func(st *StepState) {
		st.Iterations[k].Status, st.Iterations[k].StartedAt = StepRunning, &now
	})
	endItem := func(status string, err error) {
		fin := r.w.now().UTC()
		r.update(i, func(st *StepState) {
			it := &st.Iterations[k]
			it.Status, it.FinishedAt = status, &fin
			if err != nil {
				se := &connectors.StepError{Code: "internal", Message: "The step failed."}
				errors.As(err, &se)
				it.Error = &StepError{Code: se.Code, Message: se.Message}
			}
		})
	}
	env.Item, env.Index = item, k
	ok, err := r.g.Cond(i, env)
	if err != nil {
		err = &connectors.StepError{Code: codeInvalidCondition, Message: err.Error()}
		endItem(StepFailed, err)
		return nil, err
	}
	if !ok {
		endItem(StepSkipped, nil)
		return nil, nil
	}
	resolved, err := stepinput.ResolveItem(input, r.j.Payload, outputs, item, k)
	if err != nil {
		err = inputError(err)
		endItem(StepFailed, err)
		return nil, err
	}
	out, err := r.try(ctx, i, k, resolved)
	switch {
	case err == nil:
		endItem(StepSucceeded, nil)
	case errors.Is(context.Cause(ctx), errSiblingFailed):
		endItem(StepCanceled, nil)
	default:
		endItem(StepFailed, err)
	}
	return out, err
}

// try runs step i (item k, or -1) with its resolved input, again after a failure
// while its retry policy allows, waiting backoff_s, then twice that, and so on.
func (r *graphRun) try(ctx context.Context, i, k int, input json.RawMessage) (json.RawMessage, error) {
	spec := r.g.Steps[i]
	tries, wait := 1, time.Duration(0)
	if spec.Retry != nil {
		tries, wait = spec.Retry.Attempts, time.Duration(spec.Retry.BackoffS*float64(time.Second))
	}
	for n := 1; ; n++ {
		out, err := r.call(ctx, i, k, input)
		if err == nil || n >= tries || context.Cause(ctx) != nil || !retryable(err) {
			return out, err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
		wait *= 2
	}
}

// retryable reports whether trying a failed step again might help: not when its
// input or output is the problem.
func retryable(err error) bool {
	var se *connectors.StepError
	if !errors.As(err, &se) {
		return true
	}
	switch se.Code {
	case connectors.CodeInvalidInput, "invalid_reference", CodeOutputTooLarge, codeInvalidCondition, codeInvalidForEach:
		return false
	}
	return true
}

// call makes one try of step i (item k, or -1) under the job's and owner's budgets
// (reserved and settled per call, as for a linear job), counting its cost.
func (r *graphRun) call(ctx context.Context, i, k int, input json.RawMessage) (json.RawMessage, error) {
	var st StepState
	r.update(i, func(s *StepState) {
		s.Attempts++
		if k >= 0 {
			s.Iterations[k].Attempts++
		}
		st = *s
	})
	m := &costMeter{Budget: r.jb}
	if r.w.budgets != nil {
		ttl := time.Duration(r.j.TimeoutS)*time.Second + r.w.opts.Lease
		m.Budget = budget.NewAll(r.jb, r.w.budgets.OwnerDeferred(r.ownerLimits, r.j.OwnerID, r.j.ID, st.ID, ttl))
	}
	if k >= 0 {
		st.ID += "[" + strconv.Itoa(k) + "]" // each item is its own call for the connector
		st.Attempts = st.Iterations[k].Attempts
	}
	out, err := r.w.runInput(budget.WithBudget(ctx, m), r.j, &st, input)
	r.update(i, func(s *StepState) { s.CostUSD += m.spent() })
	return out, err
}

// runOnFailure runs the workflow's on_failure step once, its references reading
// every step that succeeded. It is recorded running before it runs, so that a
// worker dying during it does not make the rescuer have it run again (see
// Worker.finalize). Its failure is recorded on it and logged; the job fails either way.
func (r *graphRun) runOnFailure(ctx context.Context) {
	i := r.g.OnFailure
	if r.steps[i].Status != StepPending {
		return // it ran, or began to
	}
	now := r.w.now().UTC()
	r.update(i, func(st *StepState) { st.Status, st.StartedAt = StepRunning, &now })
	if errors.Is(r.save(ctx), errLeaseLost) {
		return
	}
	if err := r.runStep(ctx, i); err != nil {
		r.w.log.Warn("a job's on_failure step failed", "job_id", r.j.ID, "error", fmt.Sprint(err))
	}
}

// finalizing reports whether the rescuer sent j back only to run its on_failure
// step: a claim never takes a job past its attempts or its rescues otherwise.
func finalizing(j Job) bool {
	return j.Attempts > j.MaxAttempts || j.Rescues >= MaxRescues
}

// finalize ends a job the rescuer sent back to run its on_failure step: its worker
// died on the job's last attempt, or once too often (Store.RescueExpired). The steps
// that were running then fail with the rescuer's reason, the on_failure step runs
// (once: runOnFailure records it running first), and the job fails as the rescuer
// would have failed it, its attempts as they were.
func (w *Worker) finalize(ctx context.Context, j Job, steps []StepState, jb *budget.JobBudget, ownerLimits func(context.Context) budget.Limits) {
	code, msg := CodeLeaseExpired, "The worker running this job stopped and no attempt is left."
	if j.Rescues >= MaxRescues {
		code, msg = CodeCrashed, fmt.Sprintf("The worker running this job stopped %d times while running it; it is not run again.", j.Rescues)
	}
	now := w.now().UTC()
	for i := range steps {
		if st := &steps[i]; st.Status == StepRunning && !st.OnFailure {
			st.Status, st.Error, st.FinishedAt = StepFailed, &StepError{Code: code, Message: msg}, &now
		}
	}
	EndWaits(steps, now, StepError{Code: "canceled", Message: "The job failed before this step's wait ended."})
	specs := make([]Step, len(steps))
	for i := range steps {
		specs[i] = steps[i].Step
	}
	if g, err := workflow.Parse(specs, "/steps"); err == nil && g.OnFailure >= 0 && context.Cause(ctx) == nil {
		r := &graphRun{w: w, j: j, g: g, jb: jb, ownerLimits: ownerLimits, steps: steps, main: g.OnFailure,
			conc: stepConcurrency(j, w.opts.StepConcurrency)}
		r.runOnFailure(ctx)
		steps = r.snapshot()
	}
	if context.Cause(ctx) != nil && !errors.Is(context.Cause(ctx), errCancelRequested) {
		return // the worker is stopping: the lease returns the job, whose on_failure step is recorded if it began
	}
	fin := w.now().UTC()
	stored := w.finish(Finish{ID: j.ID, LeaseToken: w.token, Status: StatusFailed, Steps: steps, ErrorCode: code, ErrorMessage: msg,
		RunAt: j.RunAt, FinishedAt: &fin, GiveBackAttempt: true})
	if w.opts.JobFailed != nil {
		stored()
		w.opts.JobFailed(context.WithoutCancel(ctx), j, code, msg)
	}
}

// costMeter counts what a step's calls settle, so that steps running at once each
// record their own cost.
type costMeter struct {
	budget.Budget
	mu  sync.Mutex
	usd float64
}

// ReserveModel passes the model on to budgets that record it.
func (m *costMeter) ReserveModel(ctx context.Context, model string, usd float64) (budget.Reservation, error) {
	return budget.Reserve(ctx, m.Budget, model, usd)
}

// Settle settles r and counts actualUSD (spent, whatever the settlement says).
func (m *costMeter) Settle(ctx context.Context, r budget.Reservation, actualUSD float64) error {
	m.mu.Lock()
	m.usd += actualUSD
	m.mu.Unlock()
	return m.Budget.Settle(ctx, r, actualUSD)
}

func (m *costMeter) spent() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.usd
}
