package main

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
)

// TestServePrunesOldJobs: serve runs retention at start: finished jobs older than
// LEVQOR_JOB_RETENTION are gone, recent ones stay (real binary, real SQLite file).
func TestServePrunesOldJobs(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	if _, errOut, code := runLevqor(t, t.TempDir(), cleanEnv("LEVQOR_DATA_DIR="+dataDir), "migrate"); code != 0 {
		t.Fatal(errOut)
	}
	st, err := store.Open(t.Context(), store.Options{Engine: "sqlite", SQLitePath: filepath.Join(dataDir, "levqor.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var oldIDs, newIDs []string
	for i, at := range []time.Time{now.Add(-50 * 24 * time.Hour), now.Add(-49 * 24 * time.Hour), now.Add(-2 * time.Hour)} {
		j := jobs.Job{ID: levqor.NewID("job"), OwnerID: "usr_r", Workflow: "w", Status: jobs.StatusQueued, RunAt: at,
			MaxAttempts: 1, TimeoutS: 10, Payload: json.RawMessage(`{}`), CreatedAt: at, UpdatedAt: at,
			Steps: []jobs.StepState{{Step: jobs.Step{ID: "a", Connector: "core", Action: "echo", Input: json.RawMessage(`{}`)}, Status: jobs.StepPending}}}
		if _, _, err := st.InsertJob(t.Context(), j); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := st.CancelQueued(t.Context(), j.ID, at); err != nil || !ok {
			t.Fatalf("cancel: %v %v", ok, err)
		}
		if i < 2 {
			oldIDs = append(oldIDs, j.ID)
		} else {
			newIDs = append(newIDs, j.ID)
		}
	}
	st.Close()

	srv := startServe(t, dataDir, jobsTestEnv("LEVQOR_JOB_RETENTION=720h")...)
	line := srv.waitLog(t, "pruned", 20*time.Second)
	if line["jobs"] != float64(2) {
		t.Errorf("pruned line %v, want 2 jobs", line)
	}
	api := newAPIClient(srv)
	var v jobView
	for _, id := range oldIDs {
		if code := api.getJSON(t, "/api/v1/jobs/"+id, &v); code != 404 {
			t.Errorf("old job %s: %d, want 404", id, code)
		}
	}
	for _, id := range newIDs {
		if code := api.getJSON(t, "/api/v1/jobs/"+id, &v); code != 200 {
			t.Errorf("recent job %s: %d, want 200", id, code)
		}
	}
}
