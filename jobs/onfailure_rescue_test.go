package jobs_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
)

// bothEngines are the stores the engine tests that differ by engine run on.
var bothEngines = []struct {
	name string
	open func(testing.TB) store.Store
}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}}

// insertJobs stores js.
func insertJobs(t *testing.T, st jobs.Store, js ...jobs.Job) {
	t.Helper()
	for _, j := range js {
		if _, _, err := st.InsertJob(t.Context(), j); err != nil {
			t.Fatal(err)
		}
	}
}

// onFailureStep is a workflow's on_failure step.
func onFailureStep(id, input string) jobs.StepState {
	s := echo(id, input)
	s.OnFailure = true
	return s
}

// A job whose worker died on its last attempt still runs its on_failure step, once:
// the rescuer returns it to the queue for that, the worker that claims it runs only
// that step, and the job fails lease_expired with its attempts as they were and the
// failed-job hook called once. The step that was running fails with the rescue's
// reason; what succeeded stays. A job whose worker died while running its
// on_failure step is failed without running it again.
func TestOnFailureAfterWorkerDied(t *testing.T) {
	for _, e := range bothEngines {
		t.Run(e.name, func(t *testing.T) {
			st := e.open(t)
			ctx := t.Context()
			now := time.Now().UTC()
			done := echo("done", `{"x":1}`)
			done.Status, done.Output = jobs.StepSucceeded, json.RawMessage(`{"x":1}`)
			work := echo("work", `{"y":2}`)
			work.Status, work.StartedAt = jobs.StepRunning, &now // as the dead worker's last save left it
			died := newJob("job_died", "o1", done, work, onFailureStep("tell", `{"order":"{{payload.order}}","done":"{{steps.done.output.x}}"}`))
			died.Payload = json.RawMessage(`{"order":"A-17"}`)
			began := newJob("job_began", "o1", done, echo("work", `{"y":2}`), onFailureStep("tell", `{"order":"x"}`))
			began.Steps[1].Status = jobs.StepFailed
			began.Steps[2].Status, began.Steps[2].StartedAt = jobs.StepRunning, &now
			insertJobs(t, st, died, began)
			// A worker claims both (their only attempt) and dies: its lease has run out.
			if got, err := st.ClaimJobs(ctx, "tok_dead", time.Now().Add(time.Second), now.Add(-time.Millisecond), 10); err != nil || len(got) != 2 {
				t.Fatalf("ClaimJobs = %d, %v", len(got), err)
			}

			var mu sync.Mutex
			failed := map[string][]string{}
			eng := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, core.New()),
				Worker: jobs.WorkerOptions{Lease: 5 * time.Second, Poll: 20 * time.Millisecond, RescueAtStart: st.Engine() == "sqlite",
					JobFailed: func(_ context.Context, j jobs.Job, code, _ string) {
						mu.Lock()
						defer mu.Unlock()
						failed[j.ID] = append(failed[j.ID], code)
					}}})
			runEngine(t, eng)

			got := waitTerminal(t, st, died.ID)
			tell := got.Steps[2]
			if got.Status != jobs.StatusFailed || got.ErrorCode != jobs.CodeLeaseExpired || got.Attempts != 1 || got.Rescues != 1 {
				t.Fatalf("job %s %s after %d attempts, %d rescues; want failed %s after 1 attempt", got.Status, got.ErrorCode, got.Attempts, got.Rescues, jobs.CodeLeaseExpired)
			}
			if tell.Status != jobs.StepSucceeded || tell.Attempts != 1 || !jsonEq(tell.Output, `{"order":"A-17","done":1}`) {
				t.Errorf("on_failure step %s after %d attempts, output %s; want it run once", tell.Status, tell.Attempts, tell.Output)
			}
			if w := got.Steps[1]; w.Status != jobs.StepFailed || w.Error == nil || w.Error.Code != jobs.CodeLeaseExpired {
				t.Errorf("the step running when the worker died: %+v", w)
			}
			if got.Steps[0].Status != jobs.StepSucceeded || got.Steps[0].Attempts != 0 {
				t.Errorf("a step that had succeeded ran again: %+v", got.Steps[0])
			}
			other := waitTerminal(t, st, began.ID)
			if other.Status != jobs.StatusFailed || other.ErrorCode != jobs.CodeLeaseExpired || other.Steps[2].Attempts != 0 || other.Steps[2].Output != nil {
				t.Errorf("job whose worker died in its on_failure step: %s %s, step %+v; want failed without running it again",
					other.Status, other.ErrorCode, other.Steps[2])
			}
			if n, err := st.RescueExpired(ctx, now.Add(time.Hour), now.Add(time.Hour)); err != nil || n != 0 {
				t.Errorf("a later rescue touched %d jobs (%v)", n, err)
			}
			time.Sleep(100 * time.Millisecond) // a second run would have shown by now
			mu.Lock()
			defer mu.Unlock()
			if len(failed[died.ID]) != 1 || failed[died.ID][0] != jobs.CodeLeaseExpired {
				t.Errorf("the failed-job hook saw %v for the job, want [%s] once", failed[died.ID], jobs.CodeLeaseExpired)
			}
			if again := getJob(t, st, died.ID); again.Steps[2].Attempts != 1 || again.UpdatedAt != got.UpdatedAt {
				t.Errorf("the job changed after it failed: %+v", again.Steps[2])
			}
		})
	}
}

// A job canceled while a step waits does not show the step waiting: a parked job
// (canceled in the store) and a graph job whose waiting step sits beside a running
// one (canceled by its worker) both end with the step canceled.
func TestCancelWhileWaiting(t *testing.T) {
	for _, e := range bothEngines {
		t.Run(e.name, func(t *testing.T) {
			st := e.open(t)
			eng, _ := startEngine(t, st)
			owner := keys.Principal{OwnerID: "o1", Scopes: []string{keys.ScopeJobsWrite}}
			parked := newJob("job_cw_parked", "o1", echo("a", `{}`), engineStep("s", "wait_for_signal", `{"name":"go"}`))
			beside := newJob("job_cw_graph", "o1", engineStep("nap", "sleep", `{"ms":60000}`, ""), engineStep("s", "wait_for_signal", `{"name":"go"}`, ""))
			insertJobs(t, st, parked, beside)
			waitStatus(t, st, parked.ID, jobs.StatusWaiting)
			// The graph job records no progress until a step ends: give its wait a
			// moment to begin beside the sleep.
			waitStatus(t, st, beside.ID, jobs.StatusRunning)
			time.Sleep(300 * time.Millisecond)
			for _, id := range []string{parked.ID, beside.ID} {
				if _, err := eng.Service.Cancel(t.Context(), owner, id); err != nil {
					t.Fatalf("cancel %s: %v", id, err)
				}
				got := waitTerminal(t, st, id)
				for _, s := range got.Steps {
					if s.Status == jobs.StepWaiting || s.Status == jobs.StepRunning {
						t.Errorf("job %s %s: step %s still %s", id, got.Status, s.ID, s.Status)
					}
				}
				if s := got.Steps[1]; got.Status != jobs.StatusCanceled || s.Status != jobs.StepCanceled || s.Error == nil || s.Error.Code != "canceled" || s.FinishedAt == nil {
					t.Errorf("job %s %s, its waiting step %+v; want canceled", id, got.Status, s)
				}
			}
		})
	}
}
