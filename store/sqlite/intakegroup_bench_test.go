package sqlite

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/sqlitedb"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store/internal/dbrow"
)

// BenchmarkIntakeGroup is the writer's share of single intakes under load, per job:
// each group inserts intakeGroupSize jobs handed over at intake (stored running under
// a lease) and ends the jobs of the group before, in one transaction, as the group
// committer sees them in the intake bench (about five of each, docs/benchmarks.md).
// It also reports the pages of the jobs table's indexes per 1,000 jobs (dbstat).
//
//	go test -run '^$' -bench IntakeGroup -benchtime 100000x -count 5 ./store/sqlite/
func BenchmarkIntakeGroup(b *testing.B) {
	const intakeGroupSize = 5
	db, _ := openMigrated(b)
	steps := []jobs.StepState{{Step: jobs.Step{ID: "a", Connector: "core", Action: "echo",
		Input: json.RawMessage(`{"x":"{{payload.n}}"}`)}, Status: jobs.StepRunning}}
	var prev []jobs.Job
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += intakeGroupSize {
		now := time.Now().UTC()
		lease := now.Add(time.Minute)
		group := make([]writeReq, 0, intakeGroupSize+1)
		cur := make([]jobs.Job, intakeGroupSize)
		for i := range cur {
			cur[i] = jobs.Job{ID: levqor.NewID("job"), Workflow: "bench", Status: jobs.StatusRunning,
				Priority: jobs.PriorityNormal, RunAt: now, Attempts: 1, MaxAttempts: 3, TimeoutS: 60,
				Payload: json.RawMessage(`{"n":1}`), Steps: steps, CreatedAt: now, UpdatedAt: now,
				LeaseToken: "tok_bench", LeaseExpiresAt: &lease, StartedAt: &now}
			p, err := dbrow.InsertJob(cur[i])
			if err != nil {
				b.Fatal(err)
			}
			group = append(group, writeReq{ps: []sqlitedb.InsertJobParams{p}})
		}
		if len(prev) > 0 {
			fin := make([]sqlitedb.FinishJobParams, len(prev))
			for i, j := range prev {
				st := append([]jobs.StepState(nil), j.Steps...)
				st[0].Status, st[0].Output, st[0].StartedAt, st[0].FinishedAt = jobs.StepSucceeded, json.RawMessage(`{"x":"1"}`), &now, &now
				p, err := dbrow.FinishJob(jobs.Finish{ID: j.ID, LeaseToken: j.LeaseToken, Status: jobs.StatusSucceeded, Steps: st,
					Result: st[0].Output, RunAt: j.RunAt, FinishedAt: &now}, now)
				if err != nil {
					b.Fatal(err)
				}
				fin[i] = p
			}
			group = append(group, writeReq{fin: fin})
		}
		res, err := db.writeGroup(group)
		if err != nil {
			b.Fatal(err)
		}
		if len(prev) > 0 && res[len(res)-1].finished != len(prev) {
			b.Fatalf("finished %d of %d", res[len(res)-1].finished, len(prev))
		}
		prev = cur
	}
	b.StopTimer()
	var pages int64
	if err := db.write.QueryRowContext(b.Context(),
		`SELECT count(*) FROM dbstat WHERE name IN (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs')`).Scan(&pages); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(pages)*1000/float64(b.N), "index-pages/1k-jobs")
}
