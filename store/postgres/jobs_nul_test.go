package postgres_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store/storetest"
)

// JSON with a \u0000 escape is valid JSON, and SQLite stores it; PostgreSQL's JSONB refuses it.
func TestNulEscapeInJSON(t *testing.T) {
	s := storetest.OpenPostgres(t)
	now := time.Now().UTC()
	j := jobs.Job{ID: "job_nul", Workflow: "w", Status: jobs.StatusQueued, RunAt: now, MaxAttempts: 1, TimeoutS: 10,
		Payload: json.RawMessage(`{"s":"a\u0000b"}`), CreatedAt: now, UpdatedAt: now}
	_, _, err := s.InsertJob(t.Context(), j)
	if err != nil {
		t.Errorf("InsertJob with \\u0000 in payload: %v", err)
	}
	j.ID, j.Payload = "job_ok", json.RawMessage(`{}`)
	if _, _, err := s.InsertJob(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	list, err := s.ClaimJobs(t.Context(), "tok", now.Add(time.Second), now.Add(time.Minute), 10)
	if err != nil || len(list) == 0 {
		t.Fatalf("claim: %v %d", err, len(list))
	}
	_, err = s.FinishJobs(t.Context(), now, []jobs.Finish{{ID: "job_ok", LeaseToken: "tok", Status: jobs.StatusSucceeded,
		Result: json.RawMessage(`{"s":"a\u0000b"}`), FinishedAt: &now}})
	if err != nil {
		t.Fatalf("FinishJobs with a \\u0000 result: %v", err)
	}
}
