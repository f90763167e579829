package jobs_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	levqor "github.com/levqor/levqor"
	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/sqlite"
	"github.com/levqor/levqor/store/storetest"
)

// startEngine runs an engine on st until the returned stop is called (or the test ends).
func startEngine(t *testing.T, st jobs.Store) (*jobs.Engine, func()) {
	t.Helper()
	eng := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, core.New()),
		Worker: jobs.WorkerOptions{Lease: 5 * time.Second, Poll: 20 * time.Millisecond, RescueAtStart: st.(store.Store).Engine() == "sqlite"}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = eng.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("the engine did not stop within 10 s")
			}
		})
	}
	t.Cleanup(stop)
	return eng, stop
}

// waitStatus polls job id until it has status, for up to 10 s.
func waitStatus(t *testing.T, st jobs.Store, id, status string) jobs.Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		got, err := st.GetJob(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == status {
			return got
		}
		if jobs.Terminal(got.Status) {
			t.Fatalf("job %s ended %s (%s: %s), want %s", id, got.Status, got.ErrorCode, got.ErrorMessage, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("job %s not %s within 10 s", id, status)
	return jobs.Job{}
}

func engineStep(id, action, input string, needs ...string) jobs.StepState {
	s := jobs.StepState{Step: jobs.Step{ID: id, Connector: "core", Action: action, Input: json.RawMessage(input)}, Status: jobs.StepPending}
	if needs != nil {
		n := append([]string{}, needs...)
		if len(needs) == 1 && needs[0] == "" {
			n = []string{}
		}
		s.Needs = &n
	}
	return s
}

func newJob(id, owner string, steps ...jobs.StepState) jobs.Job {
	now := time.Now().UTC()
	return jobs.Job{ID: id, OwnerID: owner, Workflow: "w", Status: jobs.StatusQueued, RunAt: now, MaxAttempts: 1, TimeoutS: 10,
		Payload: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now, Steps: steps}
}

// A core.wait parks the job (waiting, no lease, its attempt given back, due at the
// wake time), survives the engine stopping and a new one starting on the same data
// (a new SQLite store on the same file), and resumes on time without rerunning the
// steps that succeeded — for a linear job and a graph job.
func TestWaitSurvivesRestart(t *testing.T) {
	for _, e := range []struct {
		name   string
		open   func(testing.TB) store.Store
		reopen bool
	}{{"sqlite", nil, true}, {"postgres", storetest.OpenPostgres, false}} {
		t.Run(e.name, func(t *testing.T) {
			var st store.Store
			path := filepath.Join(t.TempDir(), "levqor.db")
			if e.reopen {
				db, err := sqlite.Open(t.Context(), path)
				if err != nil {
					t.Fatal(err)
				}
				if err := db.Migrate(t.Context()); err != nil {
					t.Fatal(err)
				}
				st = db
			} else {
				st = e.open(t)
			}
			_, stop := startEngine(t, st)
			lin := newJob("job_wait_lin", "o1", echo("a", `{"x":1}`), engineStep("w", "wait", `{"for":"1500ms"}`), echo("b", `{"w":"{{steps.w.output}}"}`))
			graph := newJob("job_wait_graph", "o1", echo("a", `{"x":1}`), engineStep("w", "wait", `{"for":1.5}`, ""),
				echo("b", `{"w":"{{steps.w.output}}"}`))
			graph.Steps[2].Needs = &[]string{"a", "w"}
			for _, j := range []jobs.Job{lin, graph} {
				if _, _, err := st.InsertJob(t.Context(), j); err != nil {
					t.Fatal(err)
				}
			}
			parked := map[string]jobs.Job{}
			for _, id := range []string{lin.ID, graph.ID} {
				got := waitStatus(t, st, id, jobs.StatusWaiting)
				w := got.Steps[1]
				if w.Status != jobs.StepWaiting || w.WaitUntil == nil || got.LeaseToken != "" || got.Attempts != 0 ||
					!got.RunAt.Equal(*w.WaitUntil) || got.Steps[0].Status != jobs.StepSucceeded {
					t.Fatalf("parked job %s: run_at %v attempts %d lease %q, steps %+v", id, got.RunAt, got.Attempts, got.LeaseToken, got.Steps)
				}
				parked[id] = got
			}
			stop()
			if e.reopen {
				if err := st.Close(); err != nil {
					t.Fatal(err)
				}
				db, err := sqlite.Open(t.Context(), path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = db.Close() })
				if err := db.Migrate(t.Context()); err != nil {
					t.Fatal(err)
				}
				st = db
			}
			startEngine(t, st)
			for _, id := range []string{lin.ID, graph.ID} {
				got := waitTerminal(t, st, id)
				until := *parked[id].Steps[1].WaitUntil
				if got.Status != jobs.StatusSucceeded || got.Steps[0].Attempts != 1 || got.Steps[1].Status != jobs.StepSucceeded ||
					got.FinishedAt.Before(until) {
					t.Fatalf("job %s %s (%s) finished %v, wake %v, steps %+v", id, got.Status, got.ErrorMessage, got.FinishedAt, until, got.Steps)
				}
				var out struct {
					WaitedUntil time.Time `json:"waited_until"`
				}
				if err := json.Unmarshal(got.Steps[1].Output, &out); err != nil || !out.WaitedUntil.Equal(until) {
					t.Errorf("job %s wait output %s, want waited_until %v", id, got.Steps[1].Output, until)
				}
				if got.Attempts != 1 {
					t.Errorf("job %s attempts %d, want 1 (a wait is no try)", id, got.Attempts)
				}
				if s, p := got.Steps[1].StartedAt, parked[id].Steps[1].StartedAt; s == nil || p == nil || !s.Equal(*p) {
					t.Errorf("job %s: the wait started %v, parked with %v: resuming must keep it", id, s, p)
				}
			}
		})
	}
}

// A signal posted ten times at once is applied once (one delivery, nine
// conflicts); its data is the step's output; another owner's job is not found; a
// signal the job does not wait for is a conflict; a wait_for_signal whose timeout
// passes fails the step.
func TestSignal(t *testing.T) {
	for _, e := range []struct {
		name string
		open func(testing.TB) store.Store
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		t.Run(e.name, func(t *testing.T) {
			st := e.open(t)
			eng, _ := startEngine(t, st)
			owner := keys.Principal{OwnerID: "o1", Scopes: []string{keys.ScopeJobsWrite}}
			j := newJob("job_sig1", "o1", engineStep("s", "wait_for_signal", `{"name":"approve","timeout":"1m"}`),
				echo("b", `{"got":"{{steps.s.output}}"}`))
			if _, _, err := st.InsertJob(t.Context(), j); err != nil {
				t.Fatal(err)
			}
			waitStatus(t, st, j.ID, jobs.StatusWaiting)

			if _, err := eng.Service.Signal(t.Context(), keys.Principal{OwnerID: "o2", Scopes: []string{keys.ScopeJobsWrite}}, j.ID, "approve", json.RawMessage(`{}`)); levqor.ErrorCode(err) != levqor.ENotFound {
				t.Errorf("another owner's signal: %v, want not found", err)
			}
			if _, err := eng.Service.Signal(t.Context(), owner, j.ID, "other", json.RawMessage(`{}`)); levqor.ErrorCode(err) != levqor.EConflict {
				t.Errorf("a signal the job does not wait for: %v, want conflict", err)
			}
			var wg sync.WaitGroup
			errs := make([]error, 10)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = eng.Service.Signal(context.Background(), owner, j.ID, "approve", json.RawMessage(`{"ok":true,"n":`+string(rune('0'+i))+`}`))
				}()
			}
			wg.Wait()
			applied := -1
			for i, err := range errs {
				switch {
				case err == nil && applied >= 0:
					t.Fatalf("signals %d and %d both applied", applied, i)
				case err == nil:
					applied = i
				case levqor.ErrorCode(err) != levqor.EConflict:
					t.Fatalf("signal %d: %v, want conflict", i, err)
				}
			}
			if applied < 0 {
				t.Fatal("no signal applied")
			}
			got := waitTerminal(t, st, j.ID)
			want := `{"ok":true,"n":` + string(rune('0'+applied)) + `}`
			if got.Status != jobs.StatusSucceeded || !jsonEq(got.Steps[0].Output, want) || !jsonEq(got.Result, `{"got":`+want+`}`) {
				t.Fatalf("job %s (%s), signal step output %s, result %s; want %s", got.Status, got.ErrorMessage, got.Steps[0].Output, got.Result, want)
			}
			if _, err := eng.Service.Signal(t.Context(), owner, j.ID, "approve", json.RawMessage(`{}`)); levqor.ErrorCode(err) != levqor.EConflict {
				t.Errorf("a signal to an ended job: %v, want conflict", err)
			}

			// A waiting job can be canceled: at once, as it holds no worker.
			parked := newJob("job_sig3", "o1", engineStep("s", "wait_for_signal", `{"name":"approve"}`))
			if _, _, err := st.InsertJob(t.Context(), parked); err != nil {
				t.Fatal(err)
			}
			waitStatus(t, st, parked.ID, jobs.StatusWaiting)
			if got, err := eng.Service.Cancel(t.Context(), owner, parked.ID); err != nil || got.Status != jobs.StatusCanceled {
				t.Fatalf("cancel a waiting job: %s, %v; want canceled", got.Status, err)
			}

			late := newJob("job_sig2", "o1", engineStep("s", "wait_for_signal", `{"name":"approve","timeout":0.3}`))
			if _, _, err := st.InsertJob(t.Context(), late); err != nil {
				t.Fatal(err)
			}
			got = waitTerminal(t, st, late.ID)
			if got.Status != jobs.StatusFailed || got.ErrorCode != jobs.CodeSignalTimeout {
				t.Fatalf("job without its signal: %s %s, want failed %s", got.Status, got.ErrorCode, jobs.CodeSignalTimeout)
			}
		})
	}
}
