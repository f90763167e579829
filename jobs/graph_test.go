package jobs_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
)

// countingStore counts SaveSteps calls.
type countingStore struct {
	jobs.Store
	saves atomic.Int64
}

func (s *countingStore) SaveSteps(ctx context.Context, id, token string, steps []jobs.StepState, now time.Time) (bool, error) {
	s.saves.Add(1)
	return s.Store.SaveSteps(ctx, id, token, steps, now)
}

func waitTerminal(t *testing.T, st jobs.Store, id string) jobs.Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		got, err := st.GetJob(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if jobs.Terminal(got.Status) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("job %s did not end within 10 s", id)
	return jobs.Job{}
}

// jsonEq compares JSON by meaning (PostgreSQL's jsonb respaces and reorders).
func jsonEq(got json.RawMessage, want string) bool {
	var a, b any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func echo(id string, input string) jobs.StepState {
	return jobs.StepState{Step: jobs.Step{ID: id, Connector: "core", Action: "echo", Input: json.RawMessage(input)}, Status: jobs.StepPending}
}

// A graph job records each step's end before what it unblocks (SaveSteps per step but
// the last), and a step recorded as succeeded is never run again: its stored output is
// what its dependents read. A linear job writes no more than it always has.
func TestGraphStepsRecordedAndNeverRerun(t *testing.T) {
	for _, e := range []struct {
		name string
		open func(testing.TB) store.Store
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		t.Run(e.name, func(t *testing.T) {
			st := &countingStore{Store: e.open(t)}
			eng := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, core.New()),
				Worker: jobs.WorkerOptions{Lease: 5 * time.Second, Poll: 20 * time.Millisecond}})
			runEngine(t, eng)
			now := time.Now().UTC()
			none := []string{}
			done := echo("a", `{"fresh":true}`)
			done.Status, done.Attempts, done.Output = jobs.StepSucceeded, 1, json.RawMessage(`{"stored":true}`)
			b := echo("b", `{"a":"{{steps.a.output}}"}`)
			c := echo("c", `{"x":1}`)
			c.Needs = &none
			d := echo("d", `{"b":"{{steps.b.output}}","c":"{{steps.c.output}}"}`)
			d.Needs = &[]string{"b", "c"}
			j := jobs.Job{ID: "job_graph1", Workflow: "w", Status: jobs.StatusQueued, RunAt: now, MaxAttempts: 3, TimeoutS: 10,
				Payload: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now, Steps: []jobs.StepState{done, b, c, d}}
			if _, _, err := st.InsertJob(t.Context(), j); err != nil {
				t.Fatal(err)
			}
			got := waitTerminal(t, st, j.ID)
			if got.Status != jobs.StatusSucceeded || got.Steps[0].Attempts != 1 || !jsonEq(got.Steps[0].Output, `{"stored":true}`) {
				t.Fatalf("job %s, step a %+v: a succeeded step ran again", got.Status, got.Steps[0])
			}
			if !jsonEq(got.Result, `{"b":{"a":{"stored":true}},"c":{"x":1}}`) {
				t.Errorf("result %s", got.Result)
			}
			// b and c end before d (two saves); d's end goes with the completion.
			if n := st.saves.Load(); n != 2 {
				t.Errorf("%d SaveSteps for a graph of 3 steps to run, want 2", n)
			}

			st.saves.Store(0)
			lin := jobs.Job{ID: "job_linear1", Workflow: "w", Status: jobs.StatusQueued, RunAt: now, MaxAttempts: 3, TimeoutS: 10,
				Payload: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now, Steps: []jobs.StepState{echo("a", `{"x":1}`), echo("b", `{"y":2}`), echo("c", `{"z":3}`)}}
			if _, _, err := st.InsertJob(t.Context(), lin); err != nil {
				t.Fatal(err)
			}
			if got := waitTerminal(t, st, lin.ID); got.Status != jobs.StatusSucceeded {
				t.Fatalf("linear job %s", got.Status)
			}
			if n := st.saves.Load(); n != 2 {
				t.Errorf("%d SaveSteps for a linear job of 3 steps, want 2 (as before graphs)", n)
			}
		})
	}
}

// Steps of one job run at most guardrails.concurrency at once.
func TestGraphConcurrencyBound(t *testing.T) {
	st := storetest.OpenSQLite(t)
	eng := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, core.New()),
		Worker: jobs.WorkerOptions{Lease: 5 * time.Second, Poll: 20 * time.Millisecond}})
	runEngine(t, eng)
	now := time.Now().UTC()
	none := []string{}
	var steps []jobs.StepState
	for _, id := range []string{"a", "b", "c", "d"} {
		s := jobs.StepState{Step: jobs.Step{ID: id, Connector: "core", Action: "sleep", Input: json.RawMessage(`{"ms":300}`), Needs: &none}, Status: jobs.StepPending}
		steps = append(steps, s)
	}
	j := jobs.Job{ID: "job_conc1", Workflow: "w", Status: jobs.StatusQueued, RunAt: now, MaxAttempts: 1, TimeoutS: 10,
		Payload: json.RawMessage(`{}`), Guardrails: json.RawMessage(`{"concurrency":2}`), CreatedAt: now, UpdatedAt: now, Steps: steps}
	if _, _, err := st.InsertJob(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	got := waitTerminal(t, st, j.ID)
	if got.Status != jobs.StatusSucceeded {
		t.Fatalf("job %s", got.Status)
	}
	// At most 2 at once: at every step's start, fewer than 2 others are running.
	for i, s := range got.Steps {
		running := 0
		for k, o := range got.Steps {
			if k != i && !o.StartedAt.After(*s.StartedAt) && o.FinishedAt.After(*s.StartedAt) {
				running++
			}
		}
		if running >= 2 {
			t.Errorf("step %s started with %d others running; concurrency is 2", s.ID, running)
		}
	}
	span := got.Steps[0].StartedAt
	last := got.Steps[0].FinishedAt
	for _, s := range got.Steps {
		if s.StartedAt.Before(*span) {
			span = s.StartedAt
		}
		if s.FinishedAt.After(*last) {
			last = s.FinishedAt
		}
	}
	if d := last.Sub(*span); d < 600*time.Millisecond || d > 1100*time.Millisecond {
		t.Errorf("4 steps of 300 ms, 2 at once, took %v; want about 600 ms", d)
	}
}

// Canceling a graph job stops its running steps at once: the job ends canceled, the
// step that reports first canceled and the others back to pending, nothing after them started.
func TestGraphCancel(t *testing.T) {
	st := storetest.OpenSQLite(t)
	eng := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, core.New()),
		Worker: jobs.WorkerOptions{Lease: 5 * time.Second, Poll: 20 * time.Millisecond}})
	runEngine(t, eng)
	now := time.Now().UTC()
	none := []string{}
	slow := func(id string) jobs.StepState {
		return jobs.StepState{Step: jobs.Step{ID: id, Connector: "core", Action: "sleep", Input: json.RawMessage(`{"ms":20000}`), Needs: &none}, Status: jobs.StepPending}
	}
	after := echo("after", `{"x":1}`)
	after.Needs = &[]string{"a", "b"}
	j := jobs.Job{ID: "job_cancel1", Workflow: "w", Status: jobs.StatusQueued, RunAt: now, MaxAttempts: 3, TimeoutS: 60,
		Payload: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now, Steps: []jobs.StepState{slow("a"), slow("b"), after}}
	if _, _, err := st.InsertJob(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, err := st.GetJob(t.Context(), j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == jobs.StatusRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job is %s after 5 s", got.Status)
		}
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if _, err := eng.Service.Cancel(t.Context(), keys.Principal{Scopes: []string{keys.ScopeAdmin}}, j.ID); err != nil {
		t.Fatal(err)
	}
	got := waitTerminal(t, st, j.ID)
	if got.Status != jobs.StatusCanceled || time.Since(start) > 3*time.Second {
		t.Fatalf("job %s %v after cancel, want canceled at once", got.Status, time.Since(start))
	}
	statuses := map[string]int{}
	for _, s := range got.Steps {
		statuses[s.Status]++
	}
	if statuses[jobs.StepCanceled] != 1 || statuses[jobs.StepPending] != 2 || got.Steps[2].Attempts != 0 {
		t.Fatalf("steps %+v, want one canceled and two pending (after never started)", statuses)
	}
}
