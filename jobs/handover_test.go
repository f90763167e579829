package jobs_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/store/storetest"
)

// Jobs handed over at intake (ADR 0023): stored running under the worker's lease
// and started without a claim when the worker has a free slot and has caught up
// with the queue; queued as before otherwise.

// claimRecorder records the jobs ClaimJobs returned.
type claimRecorder struct {
	jobs.Store
	mu      sync.Mutex
	claimed map[string]bool
}

func (s *claimRecorder) ClaimJobs(ctx context.Context, token string, now, leaseUntil time.Time, limit int) ([]jobs.Job, error) {
	list, err := s.Store.ClaimJobs(ctx, token, now, leaseUntil, limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range list {
		s.claimed[j.ID] = true
	}
	return list, err
}

func (s *claimRecorder) wasClaimed(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claimed[id]
}

var handoverOwner = keys.Principal{OwnerID: "usr_handover", KeyID: "key_handover", Scopes: []string{keys.ScopeJobsWrite}}

// scriptIntake is a one-step job of the script connector with input.
func scriptIntake(input string) jobs.Intake {
	return jobs.Intake{Workflow: "w", Payload: json.RawMessage(`{}`),
		Steps: []jobs.Step{{ID: "s1", Connector: "script", Action: "run", Input: json.RawMessage(input)}}}
}

// waitCaughtUp waits until the worker has caught up with the queue and has free
// slots free, so that intake hands over that many jobs.
func waitCaughtUp(t *testing.T, e *jobs.Engine, free int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !e.FreeAndCaughtUp(free) {
		if time.Now().After(deadline) {
			t.Fatalf("the worker never caught up with the queue with %d slots free", free)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestIntakeHandsOverToAFreeWorker(t *testing.T) {
	for _, engine := range bothEngines {
		t.Run(engine.name, func(t *testing.T) {
			st := &claimRecorder{Store: engine.open(t), claimed: map[string]bool{}}
			sc := newScript()
			e := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, sc),
				Worker: jobs.WorkerOptions{Concurrency: 1, Poll: 20 * time.Millisecond}})
			runEngine(t, e)
			waitCaughtUp(t, e, 1)

			// The one slot is free: the job is stored running, attempt 1, under a lease.
			first, created, err := e.Service.Submit(t.Context(), handoverOwner, scriptIntake(`{"sleep_ms":300}`))
			if err != nil || !created {
				t.Fatalf("Submit: created %v, %v", created, err)
			}
			if first.Status != jobs.StatusRunning || first.Attempts != 1 || first.LeaseToken == "" || first.LeaseExpiresAt == nil || first.StartedAt == nil {
				t.Fatalf("handed-over job: status %s, attempts %d, lease %q until %v, started %v; want running, 1, a lease, started",
					first.Status, first.Attempts, first.LeaseToken, first.LeaseExpiresAt, first.StartedAt)
			}
			// The slot is taken: the next job is queued, and the claimer runs it later.
			second, _, err := e.Service.Submit(t.Context(), handoverOwner, scriptIntake(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			if second.Status != jobs.StatusQueued || second.Attempts != 0 || second.LeaseToken != "" {
				t.Fatalf("job submitted while the only slot is busy: %s, attempts %d, lease %q; want queued", second.Status, second.Attempts, second.LeaseToken)
			}
			for _, id := range []string{first.ID, second.ID} {
				j := waitFor(t, st, id, 10*time.Second, "job", terminal)
				if j.Status != jobs.StatusSucceeded || j.Attempts != 1 || len(sc.callTimes(id)) != 1 {
					t.Errorf("%s: %s after %d attempts and %d calls; want succeeded after 1", id, j.Status, j.Attempts, len(sc.callTimes(id)))
				}
			}
			if st.wasClaimed(first.ID) {
				t.Errorf("the handed-over job was claimed as well")
			}
			if !st.wasClaimed(second.ID) {
				t.Errorf("the queued job succeeded without a claim")
			}
			waitFinished(t, e, 2)
		})
	}
}

// TestHandOverGivesBackUnusedSlots: an idempotent repeat stores nothing, so the
// slot reserved for it is given back, and a batch hands over only as many jobs as
// there are free slots.
func TestHandOverGivesBackUnusedSlots(t *testing.T) {
	st := &claimRecorder{Store: storetest.OpenSQLite(t), claimed: map[string]bool{}}
	sc := newScript()
	e := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, sc),
		Worker: jobs.WorkerOptions{Concurrency: 2, Poll: 20 * time.Millisecond}})
	runEngine(t, e)
	waitCaughtUp(t, e, 2)

	in := scriptIntake(`{}`)
	in.IdempotencyKey, in.BodyHash = "k1", "h1"
	j1, _, err := e.Service.Submit(t.Context(), handoverOwner, in)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, st, j1.ID, 10*time.Second, "job", terminal)
	waitCaughtUp(t, e, 2)
	again, created, err := e.Service.Submit(t.Context(), handoverOwner, in)
	if err != nil || created || again.ID != j1.ID {
		t.Fatalf("repeat: %s created %v, %v; want %s again", again.ID, created, err, j1.ID)
	}
	// Both slots must be free again: a batch of three hands over two.
	out, err := e.Service.SubmitBatch(t.Context(), handoverOwner, []jobs.Intake{
		scriptIntake(`{"sleep_ms":200}`), scriptIntake(`{"sleep_ms":200}`), scriptIntake(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	var running, queued int
	for _, r := range out {
		switch r.Job.Status {
		case jobs.StatusRunning:
			running++
		case jobs.StatusQueued:
			queued++
		}
	}
	if running != 2 || queued != 1 {
		t.Errorf("batch of 3 with 2 free slots: %d handed over, %d queued; want 2 and 1", running, queued)
	}
	for _, r := range out {
		j := waitFor(t, st, r.Job.ID, 10*time.Second, "job", terminal)
		if j.Status != jobs.StatusSucceeded || len(sc.callTimes(j.ID)) != 1 {
			t.Errorf("%s: %s after %d calls; want succeeded after 1", j.ID, j.Status, len(sc.callTimes(j.ID)))
		}
		if st.wasClaimed(j.ID) == (r.Job.Status == jobs.StatusRunning) {
			t.Errorf("%s: stored %s, claimed %v; want exactly the queued ones claimed", j.ID, r.Job.Status, st.wasClaimed(j.ID))
		}
	}
}

// TestNoHandOverWithoutARunningWorker: before Run and after it returned, intake
// queues as before.
func TestNoHandOverWithoutARunningWorker(t *testing.T) {
	st := storetest.OpenSQLite(t)
	e := newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, newScript()), Worker: jobs.WorkerOptions{Concurrency: 2}})
	j, _, err := e.Service.Submit(t.Context(), handoverOwner, scriptIntake(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != jobs.StatusQueued {
		t.Fatalf("submitted before the engine runs: %s, want queued", j.Status)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- e.Run(ctx) }()
	waitFor(t, st, j.ID, 10*time.Second, "job", terminal)
	waitCaughtUp(t, e, 2)
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	after, _, err := e.Service.Submit(t.Context(), handoverOwner, scriptIntake(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != jobs.StatusQueued {
		t.Fatalf("submitted after the engine stopped: %s, want queued", after.Status)
	}
}
