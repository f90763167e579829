package jobs_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/store/storetest"
)

// claimCounter counts ClaimJobs calls and the jobs they claimed.
type claimCounter struct {
	jobs.Store
	claims, claimed atomic.Int64
}

func (s *claimCounter) ClaimJobs(ctx context.Context, token string, now, leaseUntil time.Time, limit int) ([]jobs.Job, error) {
	s.claims.Add(1)
	list, err := s.Store.ClaimJobs(ctx, token, now, leaseUntil, limit)
	s.claimed.Add(int64(len(list)))
	return list, err
}

// BenchmarkEngineEcho: b.N one-step core.echo jobs submitted one at a time through
// Service.Submit by 32 goroutines to a running engine (64 workers) on a real SQLite
// file, until every one has succeeded. Besides ns/op it reports the process's CPU per
// job (user+system, from getrusage: less sensitive than wall time to a busy machine),
// claim statements per job, and the share of jobs claimed (the others were handed
// over to the worker at intake, ADR 0023).
//
//	go test -run '^$' -bench EngineEcho -benchtime 20000x -count 5 ./jobs/
func BenchmarkEngineEcho(b *testing.B) {
	st := &claimCounter{Store: storetest.OpenSQLite(b)}
	cfg := newEngineConfig(b, jobs.Config{Store: st, Registry: mustRegistry(b, core.New()),
		Worker: jobs.WorkerOptions{Concurrency: 64}})
	eng, err := jobs.NewEngine(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- eng.Run(ctx) }()
	defer func() { cancel(); <-ran }()

	p := keys.Principal{OwnerID: "usr_bench", KeyID: "key_bench", Scopes: []string{keys.ScopeJobsWrite}}
	in := jobs.Intake{Workflow: "echo", Payload: json.RawMessage(`{"n":1}`),
		Steps: []jobs.Step{{ID: "echo", Connector: "core", Action: "echo", Input: json.RawMessage(`{"message":"{{payload.n}}"}`)}}}
	before := eng.Finished()
	cpu0 := cpuTime()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, _, err := eng.Service.Submit(ctx, p, in); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for eng.Finished()-before < int64(b.N) && !b.Failed() {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/job")
	b.ReportMetric(float64(st.claims.Load())/float64(b.N), "claims/job")
	b.ReportMetric(float64(st.claimed.Load())/float64(b.N), "claimed/job") // the rest were handed over at intake
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
