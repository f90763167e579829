package storetest

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
)

// runJobsList checks listing jobs (filters, limits, the cursor walk) and the queue statistics.
func runJobsList(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("ListJobs", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		const ann, bob = "usr_ann", "usr_bob"
		at := jobOf
		// Newest first: j7, j6, j5, j4 and j3 (the same instant, so by id), j2, j1, j0.
		// j7 is a microsecond newer than j6; j0 belongs to no owner (a bootstrap admin's).
		j0 := at("job_00", "", "w1", jobs.StatusQueued, 0)
		j1 := at("job_01", ann, "w1", jobs.StatusQueued, time.Second)
		j2 := at("job_02", ann, "w2", jobs.StatusQueued, 2*time.Second)
		j3 := at("job_03", ann, "w1", jobs.StatusQueued, 3*time.Second)
		j4 := at("job_04", bob, "w1", jobs.StatusQueued, 3*time.Second)
		j5 := at("job_05", ann, "w1", jobs.StatusScheduled, 4*time.Second)
		j6 := at("job_06", bob, "w2", jobs.StatusQueued, 5*time.Second)
		j7 := at("job_07", ann, "w1", jobs.StatusQueued, 5*time.Second+time.Microsecond)
		// Inserted neither in list order nor its reverse.
		for _, j := range []jobs.Job{j3, j1, j6, j4, j0, j7, j2, j5} {
			insertJob(t, s, j)
		}
		ids := func(js ...jobs.Job) []string { return jobIDs(js) }

		for _, tc := range []struct {
			name string
			f    jobs.ListFilter
			want []string
		}{
			{"AllOwners", jobs.ListFilter{AllOwners: true}, ids(j7, j6, j5, j4, j3, j2, j1, j0)},
			{"AllOwnersIgnoresOwnerID", jobs.ListFilter{AllOwners: true, OwnerID: bob}, ids(j7, j6, j5, j4, j3, j2, j1, j0)},
			{"Owner", jobs.ListFilter{OwnerID: ann}, ids(j7, j5, j3, j2, j1)},
			{"OtherOwner", jobs.ListFilter{OwnerID: bob}, ids(j6, j4)},
			{"NoOwner", jobs.ListFilter{}, ids(j0)},
			{"UnknownOwner", jobs.ListFilter{OwnerID: "usr_nobody"}, nil},
			{"Status", jobs.ListFilter{AllOwners: true, Status: jobs.StatusScheduled}, ids(j5)},
			{"OwnerStatus", jobs.ListFilter{OwnerID: ann, Status: jobs.StatusQueued}, ids(j7, j3, j2, j1)},
			{"Workflow", jobs.ListFilter{AllOwners: true, Workflow: "w2"}, ids(j6, j2)},
			{"OwnerWorkflow", jobs.ListFilter{OwnerID: bob, Workflow: "w1"}, ids(j4)},
			{"UnknownWorkflow", jobs.ListFilter{AllOwners: true, Workflow: "nope"}, nil},
			// Bounds in zones other than UTC: the same instants must select the same jobs.
			{"CreatedAfterInclusive", jobs.ListFilter{AllOwners: true, CreatedAfter: jobAt.Add(3 * time.Second).In(zoneHST)}, ids(j7, j6, j5, j4, j3)},
			{"CreatedAfterMicrosecond", jobs.ListFilter{AllOwners: true, CreatedAfter: jobAt.Add(5*time.Second + time.Microsecond).In(zoneIST)}, ids(j7)},
			{"CreatedBeforeExclusive", jobs.ListFilter{AllOwners: true, CreatedBefore: jobAt.Add(3 * time.Second).In(zoneIST)}, ids(j2, j1, j0)},
			{"CreatedBetween", jobs.ListFilter{AllOwners: true, CreatedAfter: jobAt.Add(2 * time.Second).In(zoneHST), CreatedBefore: jobAt.Add(5 * time.Second).UTC()}, ids(j5, j4, j3, j2)},
			{"Everything", jobs.ListFilter{OwnerID: ann, Status: jobs.StatusQueued, Workflow: "w1", CreatedAfter: jobAt.Add(time.Second), CreatedBefore: jobAt.Add(5 * time.Second)}, ids(j3, j1)},
			{"Limit", jobs.ListFilter{AllOwners: true, Limit: 3}, ids(j7, j6, j5)},
			{"LimitOne", jobs.ListFilter{OwnerID: bob, Limit: 1}, ids(j6)},
			// The cursor is the last job of a page, here given in another zone.
			{"CursorInTie", jobs.ListFilter{AllOwners: true, CursorCreatedAt: j4.CreatedAt.In(zoneHST), CursorID: j4.ID}, ids(j3, j2, j1, j0)},
			{"CursorBeforeTie", jobs.ListFilter{AllOwners: true, CursorCreatedAt: j5.CreatedAt, CursorID: j5.ID, Limit: 2}, ids(j4, j3)},
			{"CursorOwner", jobs.ListFilter{OwnerID: ann, CursorCreatedAt: j7.CreatedAt.UTC(), CursorID: j7.ID}, ids(j5, j3, j2, j1)},
			{"CursorLast", jobs.ListFilter{AllOwners: true, CursorCreatedAt: j0.CreatedAt, CursorID: j0.ID}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, _, err := s.ListJobs(ctx, tc.f)
				if err != nil {
					t.Fatalf("ListJobs: %v", err)
				}
				if !slices.Equal(jobIDs(got), tc.want) {
					t.Fatalf("ListJobs(%+v) = %q, want %q", tc.f, jobIDs(got), tc.want)
				}
			})
		}

		got, _, err := s.ListJobs(ctx, jobs.ListFilter{OwnerID: ann, Status: jobs.StatusScheduled})
		if err != nil || len(got) != 1 {
			t.Fatalf("ListJobs of j5: %d jobs, err %v; want 1", len(got), err)
		}
		checkJob(t, "ListJobs", got[0], j5)
	})

	t.Run("ListJobsDefaultLimit", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		var want []string
		for i := range 51 {
			j := insertJob(t, s, jobAtOffset("usr_many", fmt.Sprintf("job_%03d", i), time.Duration(i)*time.Millisecond))
			want = append(want, j.ID)
		}
		slices.Reverse(want)
		got, more, err := s.ListJobs(ctx, jobs.ListFilter{OwnerID: "usr_many"})
		if err != nil {
			t.Fatalf("ListJobs: %v", err)
		}
		if !more {
			t.Errorf("ListJobs of 50 of 51 jobs: more = false, want true")
		}
		if !slices.Equal(jobIDs(got), want[:50]) {
			t.Errorf("ListJobs without a limit = %q, want the newest 50 %q", jobIDs(got), want[:50])
		}
	})

	t.Run("ListJobsCursorWalk", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		const owner = "usr_walk"
		// Pairs share an instant, so that pages end inside ties: newest first, the
		// order is c09, c08, …, c00.
		var want []string
		var originals []jobs.Job
		for i := range 10 {
			j := jobAtOffset(owner, fmt.Sprintf("job_c%02d", i), time.Duration(i/2)*time.Second)
			originals = append(originals, j)
			want = append(want, j.ID)
		}
		slices.Reverse(want)
		for _, i := range []int{4, 9, 0, 6, 2, 7, 1, 5, 8, 3} {
			insertJob(t, s, originals[i])
		}
		// Another owner's jobs in between must not show.
		insertJob(t, s, jobAtOffset("usr_else", "job_c05x", 2*time.Second))

		var seen []string
		f := jobs.ListFilter{OwnerID: owner, Limit: 3}
		for page := 0; ; page++ {
			if page > 10 {
				t.Fatalf("still walking after %d pages: %q", page, seen)
			}
			got, more, err := s.ListJobs(ctx, f)
			if err != nil {
				t.Fatalf("ListJobs page %d: %v", page, err)
			}
			if len(got) > 3 || more != (len(got) == 3 && page < 3) {
				t.Fatalf("ListJobs page %d has %d jobs, more = %v; want 3 and more on pages 0-2, 1 and no more on page 3", page, len(got), more)
			}
			seen = append(seen, jobIDs(got)...)
			if !more {
				break
			}
			last := got[len(got)-1]
			// Jobs that arrive while the client pages are newer than its cursor:
			// one at the cursor's instant with a higher id, and one later.
			insertJob(t, s, jobAtOffset(owner, fmt.Sprintf("job_z%02d", page), last.CreatedAt.Sub(jobAt)))
			insertJob(t, s, jobAtOffset(owner, levqor.NewID("job"), time.Hour+time.Duration(page)*time.Second))
			f.CursorCreatedAt, f.CursorID = last.CreatedAt.In(zoneIST), last.ID
		}
		if !slices.Equal(seen, want) {
			t.Errorf("walk with page size 3 = %q, want each original once, in order: %q", seen, want)
		}
	})

	t.Run("QueueStats", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		st, err := s.QueueStats(ctx)
		if err != nil {
			t.Fatalf("QueueStats of an empty store: %v", err)
		}
		if len(st.ByStatus) != 0 || st.OldestDueAt != nil {
			t.Errorf("QueueStats of an empty store = %v, oldest %v; want no counts, nil", st.ByStatus, st.OldestDueAt)
		}

		// jobAt is in the past: QueueStats reads the real clock, so a job due at
		// jobAt+d has waited; one due an hour from the real now has not.
		now := jobAt.Add(time.Hour)
		add := func(status string, priority int, runAt time.Time) jobs.Job {
			j := jobAtOffset("usr_stats", levqor.NewID("job"), 0)
			j.Status, j.Priority, j.RunAt = status, priority, runAt
			return insertJob(t, s, j)
		}
		due := func(d time.Duration) time.Time { return jobAt.Add(d) }
		// Jobs that do not wait for a worker: they must not count as the oldest due.
		add(jobs.StatusSucceeded, jobs.PriorityNormal, due(-2*time.Hour))
		add(jobs.StatusFailed, jobs.PriorityNormal, due(-2*time.Hour))
		add(jobs.StatusCanceled, jobs.PriorityNormal, due(-2*time.Hour))
		running := add(jobs.StatusQueued, jobs.PriorityHigh, due(-90*time.Minute))
		add(jobs.StatusQueued, jobs.PriorityHigh, time.Now().Add(time.Hour))     // not due yet
		add(jobs.StatusScheduled, jobs.PriorityLow, time.Now().Add(2*time.Hour)) // not due yet
		oldest := add(jobs.StatusQueued, jobs.PriorityLow, due(-40*time.Minute)) // behind every other priority
		add(jobs.StatusQueued, jobs.PriorityNormal, due(-30*time.Minute))
		add(jobs.StatusRetrying, jobs.PriorityNormal, due(-20*time.Minute))
		add(jobs.StatusScheduled, jobs.PriorityHigh, due(-10*time.Minute))
		if got := claimJobs(t, s, "tok_a", now, now.Add(time.Hour), 1); !slices.Equal(jobIDs(got), []string{running.ID}) {
			t.Fatalf("ClaimJobs = %q, want [%s]", jobIDs(got), running.ID)
		}

		st, err = s.QueueStats(ctx)
		if err != nil {
			t.Fatalf("QueueStats: %v", err)
		}
		want := map[string]int64{
			jobs.StatusQueued: 3, jobs.StatusRetrying: 1, jobs.StatusScheduled: 2, jobs.StatusRunning: 1,
			jobs.StatusSucceeded: 1, jobs.StatusFailed: 1, jobs.StatusCanceled: 1,
		}
		if !reflect.DeepEqual(st.ByStatus, want) {
			t.Errorf("QueueStats.ByStatus = %v, want %v", st.ByStatus, want)
		}
		checkTime(t, "QueueStats", "OldestDueAt", st.OldestDueAt, &oldest.RunAt)
	})

}
