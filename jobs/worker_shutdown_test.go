package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/outbound"
)

var errDatabaseDown = errors.New("database is down")

// downStore is a real store whose database "goes down" once the worker has claimed
// jobs: from then on every write the engine makes fails (fault injection; reads
// still reach the real store).
type downStore struct {
	jobs.Store
	down        atomic.Bool
	finishTries atomic.Int32
}

func (s *downStore) ClaimJobs(ctx context.Context, token string, now, leaseUntil time.Time, limit int) ([]jobs.Job, error) {
	if s.down.Load() {
		return nil, errDatabaseDown
	}
	list, err := s.Store.ClaimJobs(ctx, token, now, leaseUntil, limit)
	if len(list) > 0 {
		s.down.Store(true)
	}
	return list, err
}

func (s *downStore) ExtendLeases(context.Context, string, time.Time) ([]string, error) {
	return nil, errDatabaseDown
}

func (s *downStore) SaveSteps(context.Context, string, string, []jobs.StepState, time.Time) (bool, error) {
	return false, errDatabaseDown
}

func (s *downStore) FinishJobs(context.Context, time.Time, []jobs.Finish) (int, error) {
	s.finishTries.Add(1)
	return 0, errDatabaseDown
}

func (s *downStore) RescueExpired(context.Context, time.Time, time.Time) (int, error) {
	return 0, errDatabaseDown
}

func (s *downStore) ClaimCallbacks(context.Context, time.Time, time.Time, int) ([]jobs.Job, error) {
	return nil, errDatabaseDown
}

func (s *downStore) RecordCallback(context.Context, string, []jobs.CallbackAttempt, string, *time.Time, time.Time) error {
	return errDatabaseDown
}

// ListenForJobs keeps PostgreSQL's listener (and, on SQLite, stands in for one), so
// that its goroutine is among those that must end.
func (s *downStore) ListenForJobs(ctx context.Context, wake func()) {
	if l, ok := s.Store.(interface {
		ListenForJobs(context.Context, func())
	}); ok {
		l.ListenForJobs(ctx, wake)
		return
	}
	<-ctx.Done()
}

// engineGoroutines returns the stacks of goroutines running the engine's code.
func engineGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		s := string(g)
		for _, mark := range []string{"jobs.(*Worker)", "jobs.(*Dispatcher)", "jobs.(*Engine)", "ListenForJobs"} {
			if strings.Contains(s, mark) {
				out = append(out, s)
				break
			}
		}
	}
	return strings.Join(out, "\n\n")
}

// TestShutdownWithTheDatabaseDownEnds: with every write failing, the completer
// retries a completion it cannot store and a job sleeps on; shutdown still ends
// within LEVQOR_SHUTDOWN_TIMEOUT (drain), the unsaved completion and the stopped job
// are left to their leases (the jobs stay running in the database), and every
// goroutine the engine started — completer, heartbeat, rescuer, listener,
// dispatcher, jobs — has ended.
func TestShutdownWithTheDatabaseDownEnds(t *testing.T) {
	for _, engine := range bothEngines {
		t.Run(engine.name, func(t *testing.T) {
			real := engine.open(t)
			st := &downStore{Store: real}
			reg, err := connectors.NewRegistry(core.New())
			if err != nil {
				t.Fatal(err)
			}
			guard, err := outbound.NewGuard(nil)
			if err != nil {
				t.Fatal(err)
			}
			const drain = 500 * time.Millisecond
			e, err := jobs.NewEngine(jobs.Config{Store: st, Registry: reg, Guard: guard, ShutdownTimeout: drain,
				Worker: jobs.WorkerOptions{Lease: 600 * time.Millisecond, Poll: 20 * time.Millisecond},
				Encode: func(j jobs.Job) ([]byte, error) { return json.Marshal(j.ID) },
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			insert := func(id string, steps ...jobs.Step) {
				j := jobs.Job{ID: id, Workflow: "w", Status: jobs.StatusQueued, RunAt: now, MaxAttempts: 3, TimeoutS: 120,
					Payload: json.RawMessage(`{}`), CallbackURL: "https://example.com/hook", CreatedAt: now, UpdatedAt: now}
				for _, s := range steps {
					j.Steps = append(j.Steps, jobs.StepState{Step: s, Status: jobs.StepPending})
				}
				if _, _, err := real.InsertJob(t.Context(), j); err != nil {
					t.Fatal(err)
				}
			}
			// Its progress cannot be saved, nor its completion: the completer retries.
			insert("job_done", jobs.Step{ID: "a", Connector: "core", Action: "echo", Input: json.RawMessage(`{"x":1}`)},
				jobs.Step{ID: "b", Connector: "core", Action: "echo", Input: json.RawMessage(`{"y":2}`)})
			// Still running at the deadline: stopped, and left to its lease.
			insert("job_slow", jobs.Step{ID: "a", Connector: "core", Action: "sleep", Input: json.RawMessage(`{"ms":60000}`)})

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ran := make(chan error, 1)
			go func() { ran <- e.Run(ctx) }()

			deadline := time.Now().Add(10 * time.Second)
			for st.finishTries.Load() < 2 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if st.finishTries.Load() < 2 {
				t.Fatalf("the completer tried FinishJobs %d times in 10 s; want it retrying", st.finishTries.Load())
			}

			cancel()
			stopped := time.Now()
			select {
			case err := <-ran:
				if took := time.Since(stopped); took > drain+time.Second {
					t.Errorf("Run returned %s after ctx ended; want within drain %s (+1 s)", took, drain)
				}
				if err != nil {
					t.Errorf("Run: %v; want nil (every goroutine ended within the bound)", err)
				}
			case <-time.After(drain + 10*time.Second):
				t.Fatalf("Run did not return %s after ctx ended (drain %s); engine goroutines:\n%s", drain+10*time.Second, drain, engineGoroutines())
			}
			left := engineGoroutines()
			for end := time.Now().Add(time.Second); left != "" && time.Now().Before(end); left = engineGoroutines() {
				time.Sleep(10 * time.Millisecond)
			}
			if left != "" {
				t.Fatalf("engine goroutines still running after Run returned:\n%s", left)
			}
			for _, id := range []string{"job_done", "job_slow"} {
				j, err := real.GetJob(t.Context(), id)
				if err != nil {
					t.Fatal(err)
				}
				if j.Status != jobs.StatusRunning {
					t.Errorf("%s is %s; want running, left to its lease", id, j.Status)
				}
			}
		})
	}
}
