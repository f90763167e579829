package sqlite

import (
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/sqlitedb"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store/internal/dbrow"
)

// A claim shares its group's transaction: it runs after the group's inserts, so it
// takes the jobs queued in the same group, and the rows it returns are those the
// transaction committed. The status counters agree with the table afterwards,
// on a database where no job was ever counted as queued.
func TestGroupClaimTakesTheGroupsInserts(t *testing.T) {
	db, _ := openMigrated(t)
	now := time.Now().UTC()
	var group []writeReq
	ids := map[string]bool{}
	for range 3 {
		j := jobs.Job{ID: levqor.NewID("job"), Workflow: "w", Status: jobs.StatusQueued, Priority: jobs.PriorityNormal,
			RunAt: now, MaxAttempts: 3, TimeoutS: 60, Payload: json.RawMessage(`{}`),
			Steps:     []jobs.StepState{{Step: jobs.Step{ID: "a", Connector: "core", Action: "echo", Input: json.RawMessage(`{}`)}}},
			CreatedAt: now, UpdatedAt: now}
		p, err := dbrow.InsertJob(j)
		if err != nil {
			t.Fatal(err)
		}
		group = append(group, writeReq{ps: []sqlitedb.InsertJobParams{p}})
		ids[j.ID] = true
	}
	lease := now.Add(time.Minute)
	group = append(group, writeReq{claim: &sqlitedb.ClaimJobsParams{LeaseToken: "tok", LeaseExpiresAt: dbrow.NullTime(&lease), Now: now, MaxRows: 10}})
	if w := group[len(group)-1].rows(); w != 10 {
		t.Errorf("a claim of up to 10 jobs weighs %d rows in a group, want 10", w)
	}
	res, err := db.writeGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	claimed := res[len(res)-1].claimed
	if len(claimed) != len(ids) {
		t.Fatalf("the claim took %d jobs, want the group's %d", len(claimed), len(ids))
	}
	for _, r := range claimed {
		if !ids[r.ID] || r.Status != string(jobs.StatusRunning) || r.LeaseToken != "tok" || r.Attempts != 1 {
			t.Errorf("claimed %s: status %q, lease %q, attempts %d; want one of the group's jobs, running under tok, attempt 1", r.ID, r.Status, r.LeaseToken, r.Attempts)
		}
		got, err := db.GetJob(t.Context(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != jobs.StatusRunning || got.LeaseToken != "tok" {
			t.Errorf("%s as stored: status %q, lease %q; want running under tok", r.ID, got.Status, got.LeaseToken)
		}
	}
	st, err := db.QueueStats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	scan, err := db.CountJobsScan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(st.ByStatus, scan) {
		t.Errorf("status counters %v, the table %v", st.ByStatus, scan)
	}
}
