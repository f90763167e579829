package triggers_test

import (
	"crypto/rand"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/outbound"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
	"github.com/levqor/levqor/triggers"
)

// engines runs a test against each storage engine.
var engines = []struct {
	name string
	open func(testing.TB) store.Store
}{
	{"sqlite", storetest.OpenSQLite},
	{"postgres", storetest.OpenPostgres},
}

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// bundle is what a trigger test needs: a store, the jobs intake over it (no workers
// run, so created jobs stay queued and countable), the triggers service and a clock.
type bundle struct {
	Store    store.Store
	Jobs     *jobs.Service
	Triggers *triggers.Service
	Clock    *clock
	Owner    keys.Principal
}

var testKey = func() credentials.Key {
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	k, err := credentials.NewKey(raw[:])
	if err != nil {
		panic(err)
	}
	return k
}()

func encodeJob(j jobs.Job) ([]byte, error) { return json.Marshal(j) }

// setup builds the services over st with owner usr_ann's workflow "sync" saved.
func setup(t *testing.T, st store.Store, start time.Time) *bundle {
	t.Helper()
	guard, err := outbound.NewGuard(nil)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := connectors.NewRegistry(core.New())
	if err != nil {
		t.Fatal(err)
	}
	creds := credentials.NewService(st, testKey, nil)
	engine, err := jobs.NewEngine(jobs.Config{Store: st, Registry: reg, Guard: guard, ShutdownTimeout: time.Second, Encode: encodeJob, Sealer: creds})
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: start}
	b := &bundle{Store: st, Jobs: engine.Service, Clock: c, Owner: keys.Principal{OwnerID: "usr_ann", KeyID: "key_ann", Scopes: []string{"jobs:read", "jobs:write"}}}
	b.Triggers = triggers.NewService(st, engine.Service, creds).WithClock(c.Now)
	steps := []jobs.Step{{ID: "echo", Connector: "core", Action: "echo", Input: json.RawMessage(`{"message": "{{payload.msg}}"}`)}}
	if _, err := engine.Service.PutWorkflow(t.Context(), b.Owner, "sync", "", steps, nil); err != nil {
		t.Fatalf("PutWorkflow: %v", err)
	}
	return b
}

// scheduler returns a scheduler over b's store named instance, on b's clock.
func (b *bundle) scheduler(instance string) *triggers.Scheduler {
	return triggers.NewScheduler(triggers.SchedulerConfig{Store: b.Store, Intake: b.Jobs, Instance: instance, Now: b.Clock.Now})
}

// jobs lists the owner's jobs of workflow sync, oldest first.
func (b *bundle) jobs(t *testing.T) []jobs.Job {
	t.Helper()
	list, _, err := b.Jobs.List(t.Context(), b.Owner, jobs.ListQuery{Workflow: "sync", Limit: 200})
	if err != nil {
		t.Fatalf("list jobs: %v", err)
	}
	for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
		list[i], list[j] = list[j], list[i]
	}
	return list
}
