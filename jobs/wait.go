package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/workflow"
)

// MaxWait bounds a core.wait and a core.wait_for_signal timeout (and is the
// latter's default): a job parked longer is more likely forgotten than awaited.
const MaxWait = 30 * 24 * time.Hour

// MaxSignalBytes bounds a signal's JSON data (it becomes a step's output).
const MaxSignalBytes = 64 << 10

// CodeSignalTimeout is the error code of a core.wait_for_signal step whose
// timeout passed without the signal.
const CodeSignalTimeout = "signal_timeout"

// waitError parks the job until `until`: a core.wait step that has not reached its
// time, or a core.wait_for_signal step without its signal yet (signal names it).
type waitError struct {
	until   time.Time
	signals []string
}

func (e *waitError) Error() string { return "the step waits until " + e.until.Format(time.RFC3339) }

// engineStep reports whether the job engine itself runs the step (it parks the job).
func engineStep(st Step) bool {
	return st.Connector == core.Name && (st.Action == "wait" || st.Action == "wait_for_signal" || st.Action == "approval")
}

// runWait runs a core.wait, core.wait_for_signal or core.approval (jobs/approval.go)
// step with its resolved input: its output when the wait is over, a *waitError to
// park the job, or a step error. The first run fixes st.WaitUntil.
func (w *Worker) runWait(ctx context.Context, j Job, st *StepState, input json.RawMessage) (json.RawMessage, error) {
	if st.Action == "approval" {
		return w.runApproval(ctx, j, st, input)
	}
	now := w.now().UTC()
	var in struct {
		For     json.RawMessage `json:"for"`
		Until   string          `json:"until"`
		Name    string          `json:"name"`
		Timeout json.RawMessage `json:"timeout"`
	}
	if err := json.Unmarshal(input, &in); err != nil {
		return nil, &connectors.StepError{Code: connectors.CodeInvalidInput, Message: "the input is not a JSON object", Err: err}
	}
	if st.WaitUntil == nil {
		until, err := waitUntil(st.Action, now, in.For, in.Until, in.Timeout)
		if err != nil {
			return nil, &connectors.StepError{Code: connectors.CodeInvalidInput, Message: err.Error()}
		}
		// To the microsecond, as PostgreSQL keeps run_at: the job wakes when the wait ends.
		until = until.Truncate(time.Microsecond)
		st.WaitUntil = &until
	}
	until := st.WaitUntil.UTC()
	if st.Action == "wait" {
		if now.Before(until) {
			return nil, &waitError{until: until}
		}
		return json.Marshal(map[string]time.Time{"waited_until": until})
	}
	data, ok, err := w.store.Signal(ctx, j.ID, in.Name)
	switch {
	case err != nil:
		return nil, &connectors.StepError{Code: "internal", Message: "Could not read the job's signals.", Retryable: true, Err: err}
	case ok:
		return data, nil
	case !now.Before(until):
		return nil, &connectors.StepError{Code: CodeSignalTimeout, Message: fmt.Sprintf("No signal %q came before %s.", in.Name, until.Format(time.RFC3339))}
	}
	return nil, &waitError{until: until, signals: []string{in.Name}}
}

// waitUntil is the end of a wait (action "wait": `for` or `until`) or a signal's
// timeout (action "wait_for_signal": `timeout`, default MaxWait), from now.
func waitUntil(action string, now time.Time, forV json.RawMessage, until string, timeout json.RawMessage) (time.Time, error) {
	if action == "wait_for_signal" {
		if len(timeout) == 0 {
			return now.Add(MaxWait), nil
		}
		d, err := parseWait(timeout)
		if err != nil {
			return time.Time{}, fmt.Errorf("timeout: %w", err)
		}
		return now.Add(d), nil
	}
	switch {
	case len(forV) > 0 && until != "":
		return time.Time{}, errors.New("give for or until, not both")
	case until != "":
		t, err := time.Parse(time.RFC3339, until)
		if err != nil {
			return time.Time{}, errors.New("until must be an RFC 3339 time")
		}
		if t.Sub(now) > MaxWait {
			return time.Time{}, fmt.Errorf("until is more than %v ahead", MaxWait)
		}
		return t.UTC(), nil
	case len(forV) > 0:
		d, err := parseWait(forV)
		if err != nil {
			return time.Time{}, fmt.Errorf("for: %w", err)
		}
		return now.Add(d), nil
	}
	return time.Time{}, errors.New("give for (a duration) or until (a time)")
}

// parseWait reads a duration: a Go duration string ("90s", "2h30m") or seconds.
func parseWait(raw json.RawMessage) (time.Duration, error) {
	var d time.Duration
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if d, err = time.ParseDuration(s); err != nil {
			return 0, errors.New(`not a duration such as "90s" or "2h"`)
		}
	} else {
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || f > MaxWait.Seconds() {
			return 0, fmt.Errorf("must be a duration string or seconds, at most %v", MaxWait)
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d < 0 || d > MaxWait {
		return 0, fmt.Errorf("must be between 0 and %v", MaxWait)
	}
	return d, nil
}

// park ends the attempt with the job waiting until `until`, holding no worker. A
// signal delivered while the job was still running (its wake found the job not
// waiting) is seen here, after the job is stored waiting, and wakes it.
func (w *Worker) park(ctx context.Context, j Job, steps []StepState, until time.Time, signals []string) {
	w.finish(Finish{ID: j.ID, LeaseToken: w.token, Status: StatusWaiting, Steps: steps, RunAt: until})()
	for _, name := range signals {
		_, ok, err := w.store.Signal(context.WithoutCancel(ctx), j.ID, name)
		if err != nil {
			w.log.Error("read a parked job's signal; it wakes at its timeout", "job_id", j.ID, "error", err.Error())
			continue
		}
		if ok {
			if _, err := w.store.WakeJob(context.WithoutCancel(ctx), j.ID, w.now().UTC()); err != nil {
				w.log.Error("wake a signaled job; it wakes at its timeout", "job_id", j.ID, "error", err.Error())
			}
			w.Wake()
			return
		}
	}
}

// checkEngineStep checks what the input schema cannot of a core.wait,
// core.wait_for_signal or core.approval step at save: it runs once (no for_each),
// its duration, time or timeout (unless a reference fills it in) and its `if`.
func checkEngineStep(st Step, input json.RawMessage) error {
	if st.ForEach != "" {
		return fmt.Errorf("core.%s runs once: it cannot have for_each", st.Action)
	}
	if st.Action == "approval" {
		return checkApproval(input)
	}
	var in struct {
		For     json.RawMessage `json:"for"`
		Until   string          `json:"until"`
		Timeout json.RawMessage `json:"timeout"`
		If      string          `json:"if"`
	}
	if json.Unmarshal(input, &in) != nil {
		return nil // the input schema says why
	}
	if in.If != "" {
		if _, err := workflow.CompileSignalCond(in.If); err != nil {
			return fmt.Errorf("if: %w", err)
		}
	}
	if bytes.Contains(input, []byte("{{")) {
		return nil // checked when the step runs, once resolved
	}
	if _, err := waitUntil(st.Action, time.Now(), in.For, in.Until, in.Timeout); err != nil {
		return err
	}
	return nil
}

// EndWaits marks the steps of a job that ends for good while they wait (canceled,
// or failed by another step) canceled with why: nothing will wake them, and a
// finished job must not show a step waiting. It reports whether it changed one.
func EndWaits(steps []StepState, now time.Time, why StepError) bool {
	changed := false
	for i := range steps {
		if st := &steps[i]; st.Status == StepWaiting {
			e := why
			st.Status, st.Error, st.FinishedAt, changed = StepCanceled, &e, &now, true
		}
	}
	return changed
}
