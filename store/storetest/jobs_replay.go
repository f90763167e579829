package storetest

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
)

// runJobsReplays checks what dry runs and replays keep (migration 0018): a dry run
// is stored finished with its result and times and never claimed nor delivered; a
// replay keeps the job it replays, through InsertJob and InsertJobs alike; and
// ReplayCandidates finds the jobs a bulk replay may take.
func runJobsReplays(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("DryRun", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		done := jobAt.Add(time.Second)
		dry := newJob("usr_dry")
		dry.Status, dry.DryRun, dry.StartedAt, dry.FinishedAt = jobs.StatusSucceeded, true, &done, &done
		dry.Result = json.RawMessage(`{"ok": true, "n": 1.5}`)
		dry.Steps[0].Status, dry.Steps[0].Output = jobs.StepSucceeded, json.RawMessage(`{"status": 200}`)
		dry.Steps[0].ResolvedInput = json.RawMessage(`{"url": "https://api.example.com/c/42", "headers": {}}`)
		got := insertJob(t, s, dry)
		checkJob(t, "InsertJob (dry run)", got, insertJobWant(dry))
		checkJob(t, "GetJob (dry run)", getJob(t, s, dry.ID), insertJobWant(dry))
		if got.CallbackState != jobs.CallbackNone {
			t.Errorf("a dry run's callback state = %q, want none", got.CallbackState)
		}
		// A job to run keeps no result or times, whatever it carries.
		queued := newJob("usr_dry")
		queued.Result, queued.StartedAt, queued.FinishedAt = json.RawMessage(`{"forged": 1}`), &done, &done
		want := insertJobWant(queued)
		want.Result, want.StartedAt, want.FinishedAt = nil, nil, nil
		checkJob(t, "InsertJob (queued, with a result)", insertJob(t, s, queued), want)

		later := jobAt.Add(time.Hour)
		claimed := claimJobs(t, s, "tok_dry", later, later.Add(time.Minute), 10)
		if slices.Contains(jobIDs(claimed), dry.ID) || len(claimed) != 1 {
			t.Errorf("ClaimJobs took %v; want only the queued job, never the dry run", jobIDs(claimed))
		}
		if cbs := claimCallbacks(t, s, later, later.Add(time.Minute), 10); len(cbs) != 0 {
			t.Errorf("ClaimCallbacks took %v; a dry run sends no webhook", jobIDs(cbs))
		}
	})

	t.Run("ReplayOf", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		orig := newJob("usr_rep")
		orig.Status = jobs.StatusFailed
		insertJob(t, s, orig)
		one := newJob("usr_rep")
		one.ReplayOf = orig.ID
		one.Steps[0].Status, one.Steps[0].Output, one.Steps[0].Reused = jobs.StepSucceeded, json.RawMessage(`{"status": 200}`), true
		checkJob(t, "InsertJob (replay)", insertJob(t, s, one), insertJobWant(one))
		checkJob(t, "GetJob (replay)", getJob(t, s, one.ID), insertJobWant(one))

		// InsertJobs stores each as InsertJob would: a replay, a dry run, a plain job.
		batch := []jobs.Job{newJob("usr_rep"), newJob("usr_rep"), newJob("usr_rep")}
		batch[0].ReplayOf = orig.ID
		done := jobAt.Add(2 * time.Second)
		batch[1].Status, batch[1].DryRun, batch[1].Result, batch[1].StartedAt, batch[1].FinishedAt = jobs.StatusSucceeded, true, json.RawMessage(`[1, "two"]`), &done, &done
		res, err := s.InsertJobs(ctx, batch)
		if err != nil || len(res) != len(batch) {
			t.Fatalf("InsertJobs: %d results, %v", len(res), err)
		}
		for i, r := range res {
			if !r.Inserted {
				t.Fatalf("InsertJobs: job %d not inserted", i)
			}
			checkJob(t, "InsertJobs", r.Job, insertJobWant(batch[i]))
			checkJob(t, "GetJob after InsertJobs", getJob(t, s, batch[i].ID), insertJobWant(batch[i]))
		}
	})

	t.Run("ReplayCandidates", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		const ann, bob = "usr_ann", "usr_bob"
		at := jobOf
		// Oldest first: f0 … f7.
		f0 := at("job_f0", ann, "w1", jobs.StatusFailed, 0)
		f1 := at("job_f1", ann, "w2", jobs.StatusFailed, time.Second)
		f2 := at("job_f2", ann, "w1", jobs.StatusCanceled, 2*time.Second)
		f3 := at("job_f3", bob, "w1", jobs.StatusFailed, 3*time.Second)
		f4 := at("job_f4", ann, "w1", jobs.StatusFailed, 4*time.Second) // replayed by f5
		f5 := at("job_f5", ann, "w1", jobs.StatusFailed, 5*time.Second)
		f5.ReplayOf = f4.ID
		f6 := at("job_f6", ann, "w1", jobs.StatusSucceeded, 6*time.Second) // a dry run
		f6.DryRun = true
		f7 := at("job_f7", ann, "w1", jobs.StatusFailed, 7*time.Second) // replayed by a batch-inserted job
		f8 := at("job_f8", ann, "w1", jobs.StatusQueued, 8*time.Second)
		f8.ReplayOf = f7.ID
		f9 := at("job_f9", ann, "w1", jobs.StatusFailed, 9*time.Second)
		for _, j := range []jobs.Job{f5, f2, f0, f6, f3, f9, f1, f4, f7} {
			insertJob(t, s, j)
		}
		if _, err := s.InsertJobs(ctx, []jobs.Job{f8}); err != nil {
			t.Fatal(err)
		}
		ids := func(js ...jobs.Job) []string { return jobIDs(js) }
		for _, tc := range []struct {
			name string
			f    jobs.ListFilter
			want []string
		}{
			{"FailedOfOwner", jobs.ListFilter{OwnerID: ann, Status: jobs.StatusFailed, Limit: 100}, ids(f0, f1, f5, f9)},
			{"Limit", jobs.ListFilter{OwnerID: ann, Status: jobs.StatusFailed, Limit: 2}, ids(f0, f1)},
			{"Workflow", jobs.ListFilter{OwnerID: ann, Status: jobs.StatusFailed, Workflow: "w2", Limit: 100}, ids(f1)},
			{"Canceled", jobs.ListFilter{OwnerID: ann, Status: jobs.StatusCanceled, Limit: 100}, ids(f2)},
			{"NoDryRuns", jobs.ListFilter{OwnerID: ann, Status: jobs.StatusSucceeded, Limit: 100}, nil},
			{"OtherOwner", jobs.ListFilter{OwnerID: bob, Status: jobs.StatusFailed, Limit: 100}, ids(f3)},
			{"AllOwners", jobs.ListFilter{AllOwners: true, Status: jobs.StatusFailed, Limit: 100}, ids(f0, f1, f3, f5, f9)},
			{"CreatedRange", jobs.ListFilter{OwnerID: ann, Status: jobs.StatusFailed, Limit: 100,
				CreatedAfter: jobAt.Add(time.Second).In(zoneHST), CreatedBefore: jobAt.Add(9 * time.Second).In(zoneIST)}, ids(f1, f5)},
		} {
			got, err := s.ReplayCandidates(ctx, tc.f)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s: ReplayCandidates = %v, want %v", tc.name, got, tc.want)
			}
		}
	})
}
