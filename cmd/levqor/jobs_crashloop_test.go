package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/jobs"
)

// TestCrashLoopFailsJobSQLite: a job whose process dies while running it every time
// (SIGKILL here, out of memory in the wild) is failed "crashed" by the start-up rescue
// once it has been rescued jobs.MaxRescues times, though attempts are left, so the
// next restart serves again instead of running it into the ground once more.
func TestCrashLoopFailsJobSQLite(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	env := jobsTestEnv("LEVQOR_JOB_LEASE=30s")
	srv := startServe(t, dataDir, env...)
	api := newAPIClient(srv)
	id, status, err := api.submit([]byte(`{"workflow":"crash-loop","payload":{},"max_attempts":25,
		"steps":[{"id":"nap","connector":"core","action":"sleep","input":{"ms":60000}}]}`))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("intake: %d, %v", status, err)
	}
	for kill := 1; kill <= jobs.MaxRescues; kill++ {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if j, _ := api.job(t, id); j.Status == jobs.StatusRunning && j.Attempts == kill {
				break
			}
			if time.Now().After(deadline) {
				j, _ := api.job(t, id)
				t.Fatalf("kill %d: job %s is %s at attempt %d, want running attempt %d:\n%s", kill, id, j.Status, j.Attempts, kill, srv.output())
			}
		}
		if err := srv.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-srv.exited
		srv = startServe(t, dataDir, env...)
		api = newAPIClient(srv)
	}
	var j struct {
		Status   string `json:"status"`
		Attempts int    `json:"attempts"`
		Error    *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if code := api.getJSON(t, "/api/v1/jobs/"+id, &j); code != http.StatusOK {
			t.Fatalf("GET job: %d", code)
		}
		if jobs.Terminal(j.Status) || time.Now().After(deadline) {
			break
		}
	}
	if j.Status != jobs.StatusFailed || j.Error == nil || j.Error.Code != jobs.CodeCrashed ||
		!strings.Contains(j.Error.Message, fmt.Sprintf("stopped %d times", jobs.MaxRescues)) || j.Attempts != jobs.MaxRescues {
		t.Fatalf("after %d crashes the job is %s at attempt %d with error %+v; want failed %s, not run again",
			jobs.MaxRescues, j.Status, j.Attempts, j.Error, jobs.CodeCrashed)
	}
}
