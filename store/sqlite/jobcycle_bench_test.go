package sqlite_test

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store/sqlite"
)

// BenchmarkJobCycle is the store's share of one core.echo job's life on SQLite, per
// job: inserted in batches of 128 (as batch intake does), claimed 128 at a time,
// finished 128 to a transaction (as the worker's completer does).
//
//	go test -run '^$' -bench JobCycle -benchtime 20000x -count 5 ./store/sqlite/
func BenchmarkJobCycle(b *testing.B) {
	db, err := openBench(b)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 128
	ctx := b.Context()
	steps := []jobs.StepState{{Step: jobs.Step{ID: "echo", Connector: "core", Action: "echo",
		Input: json.RawMessage(`{"message":"{{payload.n}}"}`)}, Status: jobs.StepPending}}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		now := time.Now().UTC()
		js := make([]jobs.Job, batch)
		for i := range js {
			js[i] = jobs.Job{ID: levqor.NewID("job"), OwnerID: "usr_bench", Workflow: "echo", Status: jobs.StatusQueued,
				Priority: jobs.PriorityNormal, RunAt: now, MaxAttempts: 3, TimeoutS: 60,
				Payload: json.RawMessage(`{"n":1}`), Steps: steps, CreatedAt: now, UpdatedAt: now}
		}
		if _, err := db.InsertJobs(ctx, js); err != nil {
			b.Fatal(err)
		}
		claimed, err := db.ClaimJobs(ctx, "tok", now, now.Add(time.Minute), batch)
		if err != nil || len(claimed) != batch {
			b.Fatalf("claimed %d of %d: %v", len(claimed), batch, err)
		}
		fs := make([]jobs.Finish, len(claimed))
		end := time.Now().UTC()
		for i, j := range claimed {
			st := append([]jobs.StepState(nil), j.Steps...)
			st[0].Status, st[0].Output, st[0].StartedAt, st[0].FinishedAt = jobs.StepSucceeded, json.RawMessage(`{"message":"1"}`), &end, &end
			fs[i] = jobs.Finish{ID: j.ID, LeaseToken: "tok", Status: jobs.StatusSucceeded, Steps: st,
				Result: st[0].Output, RunAt: j.RunAt, FinishedAt: &end}
		}
		if n, err := db.FinishJobs(ctx, end, fs); err != nil || n != batch {
			b.Fatalf("finished %d of %d: %v", n, batch, err)
		}
	}
}

func openBench(b *testing.B) (*sqlite.DB, error) {
	db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		return nil, err
	}
	b.Cleanup(func() { db.Close() })
	return db, db.Migrate(b.Context())
}
