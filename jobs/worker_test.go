package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/store/storetest"
)

// The worker's state machine, driven through a real engine over a real SQLite
// store: claim, heartbeat and lease loss, retry with backoff, cancel, completion
// failures, shutdown and the supervision of the engine's goroutines.

// script is a connector whose one action does what its input says: fail its first
// "fail" calls of a job (retryably or not, with a Retry-After hint), sleep, then
// succeed. It records when each job's calls came.
type script struct {
	mu    sync.Mutex
	calls map[string][]time.Time // job id → call times
	// running counts calls in progress; most is the largest count seen.
	running, most atomic.Int64
}

func newScript() *script { return &script{calls: map[string][]time.Time{}} }

func (*script) Name() string { return "script" }
func (*script) Actions() []connectors.Action {
	return []connectors.Action{{Name: "run", Description: "Does what its input says.",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"fail":{"type":"integer"},"retryable":{"type":"boolean"},` +
			`"retry_after_ms":{"type":"integer"},"sleep_ms":{"type":"integer"}},"additionalProperties":false}`)}}
}

func (s *script) Run(ctx context.Context, _ string, input json.RawMessage) (json.RawMessage, error) {
	var in struct {
		Fail         int  `json:"fail"`
		Retryable    bool `json:"retryable"`
		RetryAfterMS int  `json:"retry_after_ms"`
		SleepMS      int  `json:"sleep_ms"`
	}
	if err := json.Unmarshal(input, &in); err != nil {
		return nil, err
	}
	st, _ := connectors.StepFrom(ctx)
	n := s.running.Add(1)
	defer s.running.Add(-1)
	for m := s.most.Load(); n > m && !s.most.CompareAndSwap(m, n); m = s.most.Load() {
	}
	s.mu.Lock()
	s.calls[st.JobID] = append(s.calls[st.JobID], time.Now())
	calls := len(s.calls[st.JobID])
	s.mu.Unlock()
	if calls <= in.Fail {
		return nil, &connectors.StepError{Code: "upstream_error", Message: fmt.Sprintf("call %d failed", calls),
			Retryable: in.Retryable, RetryAfter: time.Duration(in.RetryAfterMS) * time.Millisecond}
	}
	select {
	case <-time.After(time.Duration(in.SleepMS) * time.Millisecond):
	case <-ctx.Done():
		return nil, &connectors.StepError{Code: "canceled", Message: "stopped", Err: ctx.Err()}
	}
	return json.RawMessage(fmt.Sprintf(`{"call":%d}`, calls)), nil
}

func (s *script) callTimes(jobID string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.calls[jobID]...)
}

// queue stores a queued job of id, due now unless runAt is later, whose steps run
// the script with the inputs.
func queue(t *testing.T, st jobs.Store, id string, maxAttempts int, runAt time.Time, inputs ...string) {
	t.Helper()
	now := time.Now().UTC()
	if runAt.IsZero() {
		runAt = now
	}
	j := jobs.Job{ID: id, OwnerID: "usr_worker", Workflow: "w", Status: jobs.StatusQueued, RunAt: runAt, MaxAttempts: maxAttempts,
		TimeoutS: 60, Payload: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now}
	if runAt.After(now) {
		j.Status = jobs.StatusScheduled
	}
	for i, in := range inputs {
		j.Steps = append(j.Steps, jobs.StepState{Step: jobs.Step{ID: fmt.Sprintf("s%d", i+1), Connector: "script", Action: "run",
			Input: json.RawMessage(in)}, Status: jobs.StepPending})
	}
	if _, _, err := st.InsertJob(t.Context(), j); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls the stored job until ok says yes, failing the test after within.
func waitFor(t *testing.T, st jobs.Store, id string, within time.Duration, what string, ok func(jobs.Job) bool) jobs.Job {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		j, err := st.GetJob(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if ok(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s is %s (attempts %d, error %q) after %s", what, id, j.Status, j.Attempts, j.ErrorCode, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func terminal(j jobs.Job) bool { return jobs.Terminal(j.Status) }

// waitFinished waits up to a second for e.Finished() to reach want, and fails the test
// when it ends elsewhere. The count follows the store: a job's end is visible in the
// store as soon as its group commits, and counted once the completer hears of it.
func waitFinished(t *testing.T, e *jobs.Engine, want int64) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for e.Finished() < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := e.Finished(); got != want {
		t.Errorf("Finished() = %d, want %d", got, want)
	}
}

// TestWorkerClaimsDueJobsUpToConcurrency: due jobs are claimed and run to success,
// never more than Concurrency at once (steps in progress; a job whose end waits to be
// stored is still running in the store, but holds no slot); a job scheduled later is
// not claimed early.
func TestWorkerClaimsDueJobsUpToConcurrency(t *testing.T) {
	st := storetest.OpenSQLite(t)
	sc := newScript()
	e := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, sc),
		Worker: jobs.WorkerOptions{Concurrency: 2, Poll: 10 * time.Millisecond}})
	for i := range 5 {
		queue(t, st, fmt.Sprintf("job_claim%d", i), 1, time.Time{}, `{"sleep_ms":150}`)
	}
	queue(t, st, "job_later", 1, time.Now().Add(time.Hour), `{}`)
	runEngine(t, e)

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		done, _, err := st.ListJobs(t.Context(), jobs.ListFilter{AllOwners: true, Status: jobs.StatusSucceeded, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(done) == 5 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 5 {
		j, err := st.GetJob(t.Context(), fmt.Sprintf("job_claim%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != jobs.StatusSucceeded || j.Attempts != 1 || string(j.Result) != `{"call":1}` {
			t.Errorf("%s: %s after %d attempts, result %s; want succeeded after 1 with the step's output", j.ID, j.Status, j.Attempts, j.Result)
		}
	}
	if most := sc.most.Load(); most != 2 {
		t.Errorf("at most %d jobs ran at once; want Concurrency (2): 5 jobs of 150 ms were due together", most)
	}
	if j, _ := st.GetJob(t.Context(), "job_later"); j.Status != jobs.StatusScheduled || len(sc.callTimes("job_later")) != 0 {
		t.Errorf("job_later (due in an hour) is %s after %d calls; want scheduled and never run", j.Status, len(sc.callTimes("job_later")))
	}
	waitFinished(t, e, 5)
}

// TestHeartbeatKeepsLeasesOfLongJobs: a job running five times its lease keeps it
// (the heartbeat extends it every lease/3), so the rescuer never returns it and it
// succeeds on its first attempt.
func TestHeartbeatKeepsLeasesOfLongJobs(t *testing.T) {
	st := storetest.OpenSQLite(t)
	sc := newScript()
	e := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, sc),
		Worker: jobs.WorkerOptions{Lease: 300 * time.Millisecond, Poll: 10 * time.Millisecond}})
	queue(t, st, "job_long", 3, time.Time{}, `{"sleep_ms":1500}`)
	runEngine(t, e)
	j := waitFor(t, st, "job_long", 10*time.Second, "long job", terminal)
	if j.Status != jobs.StatusSucceeded || j.Attempts != 1 || j.Rescues != 0 || len(sc.callTimes("job_long")) != 1 {
		t.Errorf("long job: %s, attempts %d, rescues %d, %d calls; want succeeded at once, never rescued",
			j.Status, j.Attempts, j.Rescues, len(sc.callTimes("job_long")))
	}
}

// noHeartbeat is a real store whose lease extensions fail: the worker's heartbeat is lost.
type noHeartbeat struct{ jobs.Store }

func (noHeartbeat) ExtendLeases(context.Context, string, time.Time) ([]string, error) {
	return nil, errors.New("connection reset")
}

// TestLostHeartbeatLetsTheLeaseExpire: when its heartbeat cannot extend the lease,
// a job running past it is taken back by the rescuer (here failed lease_expired,
// its only attempt spent), and the late completion of the attempt that lost the
// lease does not overwrite that.
func TestLostHeartbeatLetsTheLeaseExpire(t *testing.T) {
	real := storetest.OpenSQLite(t)
	st := noHeartbeat{real}
	sc := newScript()
	e := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, sc),
		Worker: jobs.WorkerOptions{Lease: 300 * time.Millisecond, Poll: 10 * time.Millisecond}})
	queue(t, real, "job_orphan", 1, time.Time{}, `{"sleep_ms":1500}`)
	runEngine(t, e)
	j := waitFor(t, real, "job_orphan", 10*time.Second, "job without heartbeat", terminal)
	if j.Status != jobs.StatusFailed || j.ErrorCode != "lease_expired" {
		t.Fatalf("job without heartbeat: %s (%q); want failed lease_expired", j.Status, j.ErrorCode)
	}
	time.Sleep(1700 * time.Millisecond) // the attempt ends and hands in its completion
	if j := waitFor(t, real, "job_orphan", 0, "after the late completion", terminal); j.Status != jobs.StatusFailed || j.ErrorCode != "lease_expired" {
		t.Errorf("after the late completion: %s (%q); want it still failed lease_expired", j.Status, j.ErrorCode)
	}
}

// TestRescuedJobResumesAfterItsRecordedSteps: a job whose worker died after its
// first step's success was saved is returned to the queue when the lease expires;
// the engine runs it again from the second step (the first is not run twice).
func TestRescuedJobResumesAfterItsRecordedSteps(t *testing.T) {
	st := storetest.OpenSQLite(t)
	sc := newScript()
	queue(t, st, "job_resume", 3, time.Time{}, `{}`, `{}`)
	now := time.Now().UTC()
	claimed, err := st.ClaimJobs(t.Context(), "dead-worker", now, now.Add(100*time.Millisecond), 1)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %d jobs, %v", len(claimed), err)
	}
	steps := claimed[0].Steps
	done := now.Add(time.Millisecond)
	steps[0].Status, steps[0].Attempts, steps[0].Output, steps[0].StartedAt, steps[0].FinishedAt = jobs.StepSucceeded, 1, json.RawMessage(`{"call":"dead"}`), &now, &done
	if ok, err := st.SaveSteps(t.Context(), "job_resume", "dead-worker", steps, done); err != nil || !ok {
		t.Fatalf("SaveSteps: %v, %v", ok, err)
	}
	e := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, sc),
		Worker: jobs.WorkerOptions{Lease: time.Second, Poll: 10 * time.Millisecond}})
	runEngine(t, e)
	j := waitFor(t, st, "job_resume", 10*time.Second, "rescued job", terminal)
	if j.Status != jobs.StatusSucceeded || j.Attempts != 2 || j.Rescues != 1 {
		t.Fatalf("rescued job: %s, attempts %d, rescues %d; want succeeded on attempt 2 after 1 rescue", j.Status, j.Attempts, j.Rescues)
	}
	if string(j.Steps[0].Output) != `{"call":"dead"}` || j.Steps[0].Attempts != 1 {
		t.Errorf("step 1: output %s, %d attempts; want the dead worker's output, run once", j.Steps[0].Output, j.Steps[0].Attempts)
	}
	if n := len(sc.callTimes("job_resume")); n != 1 {
		t.Errorf("the script ran %d times; want once (step 2 only)", n)
	}
}

// TestRetryBacksOff: a retryable failure puts the job back as retrying, due after
// an exponential backoff from RetryBase (±20 %), until an attempt succeeds; a
// vendor's Retry-After wins when longer; a non-retryable failure, or the last
// attempt's, fails the job for good.
func TestRetryBacksOff(t *testing.T) {
	st := storetest.OpenSQLite(t)
	sc := newScript()
	const base = 200 * time.Millisecond
	e := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, sc),
		Worker: jobs.WorkerOptions{Poll: 10 * time.Millisecond, RetryBase: base}})
	queue(t, st, "job_backoff", 3, time.Time{}, `{"fail":2,"retryable":true}`)
	queue(t, st, "job_retry_after", 2, time.Time{}, `{"fail":1,"retryable":true,"retry_after_ms":900}`)
	queue(t, st, "job_final", 3, time.Time{}, `{"fail":1,"retryable":false}`)
	queue(t, st, "job_spent", 2, time.Time{}, `{"fail":5,"retryable":true}`)
	runEngine(t, e)

	j := waitFor(t, st, "job_backoff", 10*time.Second, "after its first failure", func(j jobs.Job) bool { return j.Status == jobs.StatusRetrying || terminal(j) })
	if j.Status != jobs.StatusRetrying || j.ErrorCode != "upstream_error" || j.Steps[0].Status != jobs.StepFailed {
		t.Errorf("after the first failure: %s (%q), step %s; want retrying upstream_error with the step failed", j.Status, j.ErrorCode, j.Steps[0].Status)
	}
	for _, id := range []string{"job_backoff", "job_retry_after", "job_final", "job_spent"} {
		waitFor(t, st, id, 10*time.Second, "retries", terminal)
	}
	checkJob := func(id, status, code string, attempts int) {
		t.Helper()
		j, err := st.GetJob(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != status || j.ErrorCode != code || j.Attempts != attempts || len(sc.callTimes(id)) != attempts {
			t.Errorf("%s: %s (%q) after %d attempts, %d calls; want %s (%q) after %d", id, j.Status, j.ErrorCode, j.Attempts, len(sc.callTimes(id)), status, code, attempts)
		}
	}
	checkJob("job_backoff", jobs.StatusSucceeded, "", 3)
	checkJob("job_retry_after", jobs.StatusSucceeded, "", 2)
	checkJob("job_final", jobs.StatusFailed, "upstream_error", 1)
	checkJob("job_spent", jobs.StatusFailed, "upstream_error", 2)

	calls := sc.callTimes("job_backoff")
	if len(calls) == 3 {
		if gap := calls[1].Sub(calls[0]); gap < base*8/10 {
			t.Errorf("retry 1 came %s after the failure; want at least %s (RetryBase less 20 %%)", gap, base*8/10)
		}
		if gap := calls[2].Sub(calls[1]); gap < 2*base*8/10 {
			t.Errorf("retry 2 came %s after the failure; want at least %s (twice RetryBase less 20 %%)", gap, 2*base*8/10)
		}
	}
	if calls := sc.callTimes("job_retry_after"); len(calls) == 2 && calls[1].Sub(calls[0]) < 900*time.Millisecond {
		t.Errorf("the retry came %s after a failure asking 900 ms (Retry-After); want at least that", calls[1].Sub(calls[0]))
	}
}

// TestCancel: a job that is not running is canceled at once and never runs; a
// running job is stopped mid-step and ends canceled, whether the cancel came through
// this engine's service or through the store (another instance), which the
// heartbeat hears.
func TestCancel(t *testing.T) {
	st := storetest.OpenSQLite(t)
	sc := newScript()
	e := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, sc, core.New()),
		Worker: jobs.WorkerOptions{Lease: 300 * time.Millisecond, Poll: 10 * time.Millisecond}})
	admin := keys.Principal{Scopes: []string{keys.ScopeAdmin}}
	queue(t, st, "job_scheduled", 1, time.Now().Add(time.Hour), `{}`)
	queue(t, st, "job_here", 1, time.Time{}, `{"sleep_ms":60000}`)
	queue(t, st, "job_elsewhere", 1, time.Time{}, `{"sleep_ms":60000}`)
	runEngine(t, e)

	got, err := e.Service.Cancel(t.Context(), admin, "job_scheduled")
	if err != nil || got.Status != jobs.StatusCanceled {
		t.Fatalf("cancel a scheduled job: %s, %v; want canceled at once", got.Status, err)
	}
	for _, id := range []string{"job_here", "job_elsewhere"} {
		waitFor(t, st, id, 10*time.Second, "start", func(j jobs.Job) bool { return j.Status == jobs.StatusRunning && len(sc.callTimes(id)) == 1 })
	}
	asked := time.Now()
	if _, err := e.Service.Cancel(t.Context(), admin, "job_here"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.RequestCancel(t.Context(), "job_elsewhere", time.Now().UTC()); err != nil || !ok {
		t.Fatalf("RequestCancel: %v, %v", ok, err)
	}
	for _, id := range []string{"job_here", "job_elsewhere"} {
		j := waitFor(t, st, id, 5*time.Second, "cancel", terminal)
		if j.Status != jobs.StatusCanceled || j.ErrorCode != "canceled" || j.Steps[0].Status != jobs.StepCanceled {
			t.Errorf("%s: %s (%q), step %s; want canceled with its step canceled", id, j.Status, j.ErrorCode, j.Steps[0].Status)
		}
	}
	if took := time.Since(asked); took > 3*time.Second {
		t.Errorf("cancels took %s to stop a 60 s step; want within a heartbeat or two", took)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(sc.callTimes("job_scheduled")); n != 0 {
		t.Errorf("the canceled scheduled job ran %d times", n)
	}
}

// flakyFinish is a real store whose first FinishJobs calls fail.
type flakyFinish struct {
	jobs.Store
	failures atomic.Int32 // left to fail
	tries    atomic.Int32
}

func (s *flakyFinish) FinishJobs(ctx context.Context, now time.Time, fs []jobs.Finish) (int, error) {
	s.tries.Add(1)
	if s.failures.Add(-1) >= 0 {
		return 0, errors.New("database is locked")
	}
	return s.Store.FinishJobs(ctx, now, fs)
}

// TestCompletionFailureIsRetried: a completion the store refuses is retried until
// it is stored; the job ends as its attempt did, and only then counts as finished.
func TestCompletionFailureIsRetried(t *testing.T) {
	st := &flakyFinish{Store: storetest.OpenSQLite(t)}
	st.failures.Store(3)
	e := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, newScript()),
		Worker: jobs.WorkerOptions{Poll: 10 * time.Millisecond}})
	queue(t, st, "job_completion", 1, time.Time{}, `{}`)
	runEngine(t, e)
	j := waitFor(t, st, "job_completion", 10*time.Second, "completion", terminal)
	if j.Status != jobs.StatusSucceeded || string(j.Result) != `{"call":1}` {
		t.Errorf("job: %s, result %s; want succeeded with the step's output", j.Status, j.Result)
	}
	if n := st.tries.Load(); n != 4 {
		t.Errorf("FinishJobs tried %d times; want 4 (3 failures, then stored)", n)
	}
	waitFinished(t, e, 1)
}

// TestShutdownDrainsRunningJobs: when Run's context ends, a job that ends within
// ShutdownTimeout is finished and stored before Run returns, and nothing new is
// claimed meanwhile.
func TestShutdownDrainsRunningJobs(t *testing.T) {
	st := storetest.OpenSQLite(t)
	sc := newScript()
	e := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, sc), ShutdownTimeout: 5 * time.Second,
		Worker: jobs.WorkerOptions{Poll: 10 * time.Millisecond}})
	queue(t, st, "job_draining", 1, time.Time{}, `{"sleep_ms":400}`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- e.Run(ctx) }()
	waitFor(t, st, "job_draining", 5*time.Second, "start", func(j jobs.Job) bool { return j.Status == jobs.StatusRunning })
	cancel()
	queue(t, st, "job_after_stop", 1, time.Time{}, `{}`)
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of ctx ending")
	}
	if j, _ := st.GetJob(t.Context(), "job_draining"); j.Status != jobs.StatusSucceeded {
		t.Errorf("the draining job is %s when Run returned; want succeeded (it ended within the bound)", j.Status)
	}
	if j, _ := st.GetJob(t.Context(), "job_after_stop"); j.Status != jobs.StatusQueued {
		t.Errorf("a job queued after shutdown began is %s; want queued, not claimed", j.Status)
	}
}

// panicky is a real store with a fault injected into one of the engine's loops.
type panicky struct {
	jobs.Store
	rescuePanics atomic.Int32 // RescueExpired panics this many more times
	extendPanics atomic.Bool  // ExtendLeases always panics
	savePanics   atomic.Bool  // SaveSteps always panics (inside a job's goroutine)
}

func (s *panicky) RescueExpired(ctx context.Context, cutoff, now time.Time) (int, error) {
	if s.rescuePanics.Add(-1) >= 0 {
		panic("rescue bug")
	}
	return s.Store.RescueExpired(ctx, cutoff, now)
}

func (s *panicky) ExtendLeases(ctx context.Context, token string, until time.Time) ([]string, error) {
	if s.extendPanics.Load() {
		panic("heartbeat bug")
	}
	return s.Store.ExtendLeases(ctx, token, until)
}

func (s *panicky) SaveSteps(ctx context.Context, id, token string, steps []jobs.StepState, now time.Time) (bool, error) {
	if s.savePanics.Load() {
		panic("save bug")
	}
	return s.Store.SaveSteps(ctx, id, token, steps, now)
}

// TestPanickingLoopIsRestarted: the rescuer panics twice; it is restarted and
// rescues the job of a dead worker all the same, and the engine keeps running.
func TestPanickingLoopIsRestarted(t *testing.T) {
	st := &panicky{Store: storetest.OpenSQLite(t)}
	st.rescuePanics.Store(2)
	queue(t, st, "job_dead", 2, time.Time{}, `{}`)
	now := time.Now().UTC()
	if got, err := st.ClaimJobs(t.Context(), "dead-worker", now, now.Add(50*time.Millisecond), 1); err != nil || len(got) != 1 {
		t.Fatalf("claim: %d jobs, %v", len(got), err)
	}
	e := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, newScript()),
		Worker: jobs.WorkerOptions{Poll: 10 * time.Millisecond}})
	ran := runEngine(t, e)
	j := waitFor(t, st, "job_dead", 15*time.Second, "rescue by a restarted rescuer", terminal)
	if j.Status != jobs.StatusSucceeded || j.Rescues != 1 {
		t.Errorf("job_dead: %s, rescues %d; want succeeded after 1 rescue", j.Status, j.Rescues)
	}
	if st.rescuePanics.Load() >= 0 {
		t.Errorf("the rescuer panicked %d times; want both injected panics taken", 2-st.rescuePanics.Load()-1)
	}
	select {
	case err := <-ran:
		t.Fatalf("Run returned %v after two panics; want it running", err)
	default:
	}
}

// TestRepeatedPanicsStopTheEngine: a heartbeat that panics every time stops the
// engine with an error naming it, without Run's context ending.
func TestRepeatedPanicsStopTheEngine(t *testing.T) {
	st := &panicky{Store: storetest.OpenSQLite(t)}
	st.extendPanics.Store(true)
	e := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, newScript()),
		Worker: jobs.WorkerOptions{Lease: 150 * time.Millisecond, Poll: 10 * time.Millisecond}})
	ran := runEngine(t, e)
	select {
	case err := <-ran:
		if err == nil || !strings.Contains(err.Error(), "heartbeat") || !strings.Contains(err.Error(), "heartbeat bug") {
			t.Errorf("Run = %v; want an error naming the heartbeat and its panic", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run still running 15 s after the heartbeat began panicking")
	}
}

// TestPanickingAttemptFailsTheJob: a panic in a job's goroutine (here while its
// first step's success is saved) fails that job with code internal; the engine
// goes on running other jobs.
func TestPanickingAttemptFailsTheJob(t *testing.T) {
	st := &panicky{Store: storetest.OpenSQLite(t)}
	st.savePanics.Store(true)
	e := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, newScript()),
		Worker: jobs.WorkerOptions{Poll: 10 * time.Millisecond}})
	queue(t, st, "job_panics", 3, time.Time{}, `{}`, `{}`)
	ran := runEngine(t, e)
	j := waitFor(t, st, "job_panics", 10*time.Second, "panicking attempt", terminal)
	if j.Status != jobs.StatusFailed || j.ErrorCode != "internal" || j.Attempts != 1 {
		t.Errorf("job_panics: %s (%q) after %d attempts; want failed internal after 1", j.Status, j.ErrorCode, j.Attempts)
	}
	st.savePanics.Store(false)
	queue(t, st, "job_after", 1, time.Time{}, `{}`, `{}`)
	if j := waitFor(t, st, "job_after", 10*time.Second, "next job", terminal); j.Status != jobs.StatusSucceeded {
		t.Errorf("the next job: %s; want succeeded", j.Status)
	}
	select {
	case err := <-ran:
		t.Fatalf("Run returned %v; want it running", err)
	default:
	}
}

// TestNewEngineRefusesIncompleteConfig: a missing dependency is an error at
// construction, not a nil dereference later.
func TestNewEngineRefusesIncompleteConfig(t *testing.T) {
	st := storetest.OpenSQLite(t)
	reg := mustRegistry(t, newScript())
	for name, cfg := range map[string]jobs.Config{
		"no store":            {Registry: reg, ShutdownTimeout: time.Second},
		"no shutdown timeout": {Store: st, Registry: reg},
	} {
		full := newEngineConfig(t, cfg)
		if name == "no shutdown timeout" {
			full.ShutdownTimeout = 0
		}
		if _, err := jobs.NewEngine(full); err == nil {
			t.Errorf("%s: NewEngine succeeded; want an error", name)
		}
	}
	if _, err := jobs.NewEngine(newEngineConfig(t, jobs.Config{Store: st, Registry: reg})); err != nil {
		t.Errorf("complete config: %v", err)
	}
}
