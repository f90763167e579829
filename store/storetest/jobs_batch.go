package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
)

// runJobsBatch checks InsertJobs: every field round-trips in batch order, the
// status counters count the batch, and idempotency keys hold per item — against
// jobs already stored, between items of one batch, and per scope.
func runJobsBatch(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("InsertJobs", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		hash := strings.Repeat("cd", 32)
		earlier := newJob("usr_batch")
		earlier.IdemScope, earlier.IdemKey, earlier.IdemHash = "key_batch", "k-earlier", hash
		earlier = insertJob(t, s, earlier)

		before, err := s.QueueStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var batch []jobs.Job
		for i := range 5 {
			j := newJob("usr_batch")
			if i == 3 {
				j.Status = jobs.StatusScheduled
			}
			batch = append(batch, j)
		}
		// Item 1 repeats a stored key, items 2 and 4 share a new key (2 wins), item 3 has
		// the same key as 2 in another scope (its own job).
		batch[1].IdemScope, batch[1].IdemKey, batch[1].IdemHash = "key_batch", "k-earlier", hash
		batch[2].IdemScope, batch[2].IdemKey, batch[2].IdemHash = "key_batch", "k-new", hash
		batch[3].IdemScope, batch[3].IdemKey, batch[3].IdemHash = "key_other", "k-new", hash
		batch[4].IdemScope, batch[4].IdemKey, batch[4].IdemHash = "key_batch", "k-new", hash

		got, err := s.InsertJobs(ctx, batch)
		if err != nil {
			t.Fatalf("InsertJobs: %v", err)
		}
		if len(got) != len(batch) {
			t.Fatalf("InsertJobs returned %d results, want %d", len(got), len(batch))
		}
		wantInserted := []bool{true, false, true, true, false}
		wantJob := []jobs.Job{insertJobWant(batch[0]), earlier, insertJobWant(batch[2]), insertJobWant(batch[3]), insertJobWant(batch[2])}
		for i := range batch {
			if got[i].Inserted != wantInserted[i] {
				t.Errorf("item %d: Inserted = %v, want %v", i, got[i].Inserted, wantInserted[i])
			}
			checkJob(t, "InsertJobs item", got[i].Job, wantJob[i])
		}
		for _, i := range []int{0, 2, 3} {
			checkJob(t, "GetJob after InsertJobs", getJob(t, s, batch[i].ID), insertJobWant(batch[i]))
		}
		for _, i := range []int{1, 4} {
			if _, err := s.GetJob(ctx, batch[i].ID); err == nil {
				t.Errorf("item %d (a repeated key) was stored under its own id", i)
			}
		}
		after, err := s.QueueStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d := after.ByStatus[jobs.StatusQueued] - before.ByStatus[jobs.StatusQueued]; d != 2 {
			t.Errorf("queued count grew by %d, want 2", d)
		}
		if d := after.ByStatus[jobs.StatusScheduled] - before.ByStatus[jobs.StatusScheduled]; d != 1 {
			t.Errorf("scheduled count grew by %d, want 1", d)
		}

		// The whole batch again: every item is a repeat of the job it got the first time.
		again := make([]jobs.Job, len(batch))
		for i, j := range batch {
			j.ID = newJob("usr_batch").ID
			again[i] = j
		}
		again[0].IdemScope, again[0].IdemKey, again[0].IdemHash = "", "", "" // no key: a new job
		got2, err := s.InsertJobs(ctx, again)
		if err != nil {
			t.Fatalf("InsertJobs again: %v", err)
		}
		for i := 1; i < len(again); i++ {
			if got2[i].Inserted || got2[i].Job.ID != got[i].Job.ID {
				t.Errorf("again, item %d: inserted=%v id=%s, want the repeat of %s", i, got2[i].Inserted, got2[i].Job.ID, got[i].Job.ID)
			}
		}
		if !got2[0].Inserted || got2[0].Job.ID != again[0].ID {
			t.Errorf("again, item 0 (no key): inserted=%v id=%s, want a new job %s", got2[0].Inserted, got2[0].Job.ID, again[0].ID)
		}

		if out, err := s.InsertJobs(ctx, nil); err != nil || len(out) != 0 {
			t.Errorf("InsertJobs(nil) = %d results, %v; want none, no error", len(out), err)
		}
	})

	// What InsertJob and InsertJobs return for a new job is what GetJob reads back
	// (SQLite builds it from what it bound and from the steps as given instead of
	// reading the row): every kind of insert, times off UTC and below the microsecond,
	// JSON with spaces, a NUL escape and HTML characters. Exactly, but for the JSON
	// within the steps, which is the same JSON (sameAsStored).
	t.Run("InsertedAsRead", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		at := time.Date(2026, 3, 4, 5, 6, 7, 891234567, zoneNPT)
		kinds := map[string]func(*jobs.Job){
			"queued": func(*jobs.Job) {},
			"scheduled": func(j *jobs.Job) {
				j.Status, j.RunAt = jobs.StatusScheduled, at.Add(time.Hour)
			},
			"idempotent": func(j *jobs.Job) {
				j.IdemScope, j.IdemKey, j.IdemHash = "key_read", "k-"+j.ID, strings.Repeat("ab", 32)
			},
			"handed over": func(j *jobs.Job) {
				until := at.Add(30 * time.Second)
				j.Status, j.Attempts, j.LeaseToken, j.LeaseExpiresAt, j.StartedAt = jobs.StatusRunning, 1, "tok_read", &until, &at
			},
			"dry run": func(j *jobs.Job) {
				j.DryRun, j.Status, j.Result, j.StartedAt, j.FinishedAt = true, jobs.StatusSucceeded, json.RawMessage(`{"ok": true, "nul": "a\u0000b"}`), &at, &at
			},
			"replay": func(j *jobs.Job) { j.ReplayOf, j.CallbackURL, j.Priority = "job_original", "", jobs.PriorityHigh },
		}
		for name, set := range kinds {
			one, many := newJob("usr_read"), newJob("usr_read")
			for _, j := range []*jobs.Job{&one, &many} {
				j.CreatedAt, j.RunAt = at, at
				j.Payload = json.RawMessage(`{ "text": "tab\there \u0000 nul", "n": 1.50 }`)
				j.Steps[1].Input = json.RawMessage(`{ "text": "<b>{{steps.fetch.output.body}}</b> & co" }`)
				set(j)
			}
			got, inserted, err := s.InsertJob(ctx, one)
			if err != nil || !inserted {
				t.Fatalf("%s: InsertJob: inserted %v, %v", name, inserted, err)
			}
			if read := getJob(t, s, one.ID); !sameAsStored(t, got, read) {
				t.Errorf("%s: InsertJob returned\n%+v\nGetJob reads\n%+v", name, got, read)
			}
			res, err := s.InsertJobs(ctx, []jobs.Job{many})
			if err != nil || len(res) != 1 || !res[0].Inserted {
				t.Fatalf("%s: InsertJobs: %+v, %v", name, res, err)
			}
			if read := getJob(t, s, many.ID); !sameAsStored(t, res[0].Job, read) {
				t.Errorf("%s: InsertJobs returned\n%+v\nGetJob reads\n%+v", name, res[0].Job, read)
			}
		}
	})

	t.Run("InsertJobsConcurrentKeys", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		const n = 8
		ids := make([]string, n)
		inserted := make([]bool, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for g := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				j, other := newJob("usr_race"), newJob("usr_race")
				j.IdemScope, j.IdemKey, j.IdemHash = "key_race", "same", "h"
				got, err := s.InsertJobs(ctx, []jobs.Job{other, j})
				if err != nil {
					errs[g] = err
					return
				}
				ids[g], inserted[g] = got[1].Job.ID, got[1].Inserted
				if !got[0].Inserted {
					errs[g] = fmt.Errorf("the unkeyed job of batch %d was not inserted", g)
				}
			}()
		}
		wg.Wait()
		wins := 0
		for g := range n {
			if errs[g] != nil {
				t.Fatalf("batch %d: %v", g, errs[g])
			}
			if inserted[g] {
				wins++
			}
			if ids[g] != ids[0] {
				t.Errorf("batch %d got job %s for the key, batch 0 got %s", g, ids[g], ids[0])
			}
		}
		if wins != 1 {
			t.Errorf("%d concurrent batches inserted the keyed job, want exactly 1", wins)
		}
	})
}

// sameAsStored tells whether a and b are the same job, the JSON within their steps
// compared as the store encodes it (compacted, HTML characters escaped).
func sameAsStored(t *testing.T, a, b jobs.Job) bool {
	t.Helper()
	ea, err := json.Marshal(a.Steps)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := json.Marshal(b.Steps)
	if err != nil {
		t.Fatal(err)
	}
	a.Steps, b.Steps = nil, nil
	return bytes.Equal(ea, eb) && reflect.DeepEqual(a, b)
}
