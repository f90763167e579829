package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPeerRunsJobs: the peer answers an intake and a batch as levqor does (202
// with "status":"queued"; 200 with "failed":0 and a result per job), River works
// the three jobs, and the status route counts them as succeeded under levqor's
// names. It needs PostgreSQL (LEVQOR_TEST_POSTGRES_URL) and runs with
// `go test` in this directory, outside Levqor's module.
func TestPeerRunsJobs(t *testing.T) {
	base := os.Getenv("LEVQOR_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("set LEVQOR_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	ctx := t.Context()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "riverpeer_" + hex.EncodeToString(b[:])
	exec := func(ctx context.Context, sql string) error {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})

	p, err := start(ctx, config{databaseURL: base, schema: schema, workers: 4, fetchCooldown: 2 * time.Millisecond, fetchPoll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	srv := httptest.NewServer(p.routes())
	defer srv.Close()

	post := func(path, body string, status int, want string) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != status || !strings.Contains(string(got), want) || resp.ContentLength != int64(len(got)) {
			t.Fatalf("POST %s = %d %s (Content-Length %d), want %d containing %s with a Content-Length", path, resp.StatusCode, got, resp.ContentLength, status, want)
		}
	}
	job := `{"workflow":"bench","payload":{"n":1},"steps":[{"id":"a","connector":"core","action":"echo","input":{"x":"{{payload.n}}"}}]}`
	post("/api/v1/intake", job, http.StatusAccepted, `"status":"queued"`)
	post("/api/v1/intake/batch", `{"jobs":[{"job":`+job+`},{"job":`+job+`}]}`, http.StatusOK, `"failed":0`)
	post("/api/v1/intake", `{"workflow":"bench","unknown":1}`, http.StatusBadRequest, "")
	post("/api/v1/intake", `{"payload":{}}`, http.StatusBadRequest, "")

	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(srv.URL + "/api/v1/admin/status")
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Queue struct {
				Depth        map[string]int `json:"depth"`
				FinishedHere int            `json:"finished_here"`
			} `json:"queue"`
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if st.Queue.Depth["succeeded"] == 3 && len(st.Queue.Depth) == 1 && st.Queue.FinishedHere == 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v 10 s after three jobs, want 3 succeeded and nothing else", st.Queue)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
