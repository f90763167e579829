package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeStatus serves levqor's GET /api/v1/admin/status shape with pending[i]
// queued jobs on the i-th call (the last value repeats), and counts the calls;
// like levqor, it answers 401 without the admin key.
func fakeStatus(t *testing.T, pending ...int) (addr string, calls *atomic.Int64) {
	t.Helper()
	calls = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != statusPath {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("X-Api-Key") != benchAdminKey {
			http.Error(w, "no admin key", http.StatusUnauthorized)
			return
		}
		n := int(calls.Add(1)) - 1
		p := pending[min(n, len(pending)-1)]
		fmt.Fprintf(w, `{"service":"levqor","queue":{"depth":{"queued":%d,"scheduled":0,"running":1,"retrying":0,"succeeded":%d,"failed":0,"canceled":0},"finished_here":%d}}`,
			p, 10-p, 10-p)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), calls
}

func runningServer() *server {
	return &server{name: "levqor", exited: make(chan struct{}), stderr: &tailBuffer{max: 1 << 10}}
}

func TestStatusClientReadsTheQueue(t *testing.T) {
	addr, _ := fakeStatus(t, 3)
	sc := newStatusClient(addr)
	defer sc.close()
	q, err := sc.queue(t.Context())
	if err != nil || q.pending() != 4 || q.Depth["succeeded"] != 7 || q.FinishedHere != 7 {
		t.Errorf("queue = %+v (pending %d), %v; want 3 queued + 1 running, 7 succeeded, 7 finished here", q, q.pending(), err)
	}
	sc.url = "http://" + addr + "/nope"
	if _, err := sc.queue(t.Context()); err == nil {
		t.Error("queue accepted a 404")
	}
}

func TestWaitDrainedKeepsPollingWhileAJobRuns(t *testing.T) {
	addr, calls := fakeStatus(t, 0) // nothing queued, but one job running
	sc := newStatusClient(addr)
	defer sc.close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*drainPoll)
	defer cancel()
	if _, _, err := waitDrained(ctx, runningServer(), sc); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waitDrained = %v, want the context's deadline", err)
	}
	if n := calls.Load(); n < 2 {
		t.Errorf("%d polls in %s, want several", n, 5*drainPoll)
	}
}

func TestWaitDrainedReturnsOnceDrained(t *testing.T) {
	addr, calls := fakeStatus(t, 3, 2, 1, -1) // -1 queued cancels the running one
	sc := newStatusClient(addr)
	defer sc.close()
	q, _, err := waitDrained(t.Context(), runningServer(), sc)
	if err != nil || q.pending() != 0 || calls.Load() != 4 {
		t.Errorf("waitDrained = %+v, %v after %d polls; want nothing pending after 4", q, err, calls.Load())
	}
}

func TestWaitDrainedNamesAnExitedServer(t *testing.T) {
	addr, _ := fakeStatus(t, 0)
	sc := newStatusClient(addr)
	defer sc.close()
	sc.url = "http://" + addr + "/gone" // 404: the poll fails
	lev := runningServer()
	close(lev.exited)
	_, _, err := waitDrained(t.Context(), lev, sc)
	if err == nil || !strings.Contains(err.Error(), "levqor") || !strings.Contains(err.Error(), "exited unasked") {
		t.Errorf("waitDrained = %v; want it to say that levqor exited", err)
	}
}

func TestE2EResultLost(t *testing.T) {
	depth := func(succeeded, failed, canceled int) queueState {
		return queueState{Depth: map[string]int{"succeeded": succeeded, "failed": failed, "canceled": canceled}}
	}
	for _, tt := range []struct {
		name      string
		submitted uint64
		final     queueState
		want      int
	}{
		{"all succeeded", 100, depth(100, 0, 0), 0},
		{"more than acknowledged (a 202 lost on the wire)", 100, depth(101, 0, 0), 0},
		{"failed", 100, depth(98, 2, 0), 2},
		{"canceled", 100, depth(99, 0, 1), 1},
		{"missing", 100, depth(97, 0, 0), 3},
		{"failed, and a 202 lost on the wire", 100, depth(100, 1, 0), 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := (e2eResult{Submitted: tt.submitted, Final: tt.final}).lost(); got != tt.want {
				t.Errorf("lost = %d, want %d", got, tt.want)
			}
		})
	}
}
