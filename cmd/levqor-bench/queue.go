package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

const (
	drainPoll    = 100 * time.Millisecond // pause between status polls while waiting for a drain
	drainStalled = 30 * time.Second       // a drain fails when no job finishes for this long
	drainTimeout = 10 * time.Minute       // and in any case after this long
)

// statusPath is levqor's queue status; it needs an admin key (benchAdminKey).
const statusPath = "/api/v1/admin/status"

// queueState is the queue part of levqor's GET /api/v1/admin/status: jobs per status in the
// whole database, and the attempts this process has finished since it started.
type queueState struct {
	Depth        map[string]int `json:"depth"`
	FinishedHere int            `json:"finished_here"`
}

// pending returns the jobs that are not finished: queued, scheduled, running or retrying.
func (q queueState) pending() int {
	return q.Depth["queued"] + q.Depth["scheduled"] + q.Depth["running"] + q.Depth["retrying"]
}

// String is the state in one line, for the report.
func (q queueState) String() string {
	return fmt.Sprintf("%d queued, %d scheduled, %d running, %d retrying, %d succeeded, %d failed, %d canceled",
		q.Depth["queued"], q.Depth["scheduled"], q.Depth["running"], q.Depth["retrying"],
		q.Depth["succeeded"], q.Depth["failed"], q.Depth["canceled"])
}

// statusClient reads GET /api/v1/admin/status of one levqor over a keep-alive
// connection, with benchAdminKey, so levqor must run with that key and a per-key
// limit above what the polling and the load send (see levqorJobsEnv).
type statusClient struct {
	url    string
	client *http.Client
}

func newStatusClient(addr string) *statusClient {
	return &statusClient{url: "http://" + addr + statusPath, client: &http.Client{Timeout: 10 * time.Second}}
}

// queue returns the queue state levqor reports now.
func (c *statusClient) queue(ctx context.Context) (queueState, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return queueState{}, err
	}
	req.Header.Set("X-Api-Key", benchAdminKey)
	resp, err := c.client.Do(req)
	if err != nil {
		return queueState{}, fmt.Errorf("GET %s: %w", statusPath, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return queueState{}, fmt.Errorf("GET %s: %w", statusPath, err)
	}
	if resp.StatusCode != http.StatusOK {
		return queueState{}, fmt.Errorf("GET %s: %s %.300q", statusPath, resp.Status, body)
	}
	var st struct {
		Queue queueState `json:"queue"`
	}
	if err := json.Unmarshal(body, &st); err != nil || st.Queue.Depth == nil {
		return queueState{}, fmt.Errorf("GET %s: no queue.depth in %.300q", statusPath, body)
	}
	return st.Queue, nil
}

func (c *statusClient) close() { c.client.CloseIdleConnections() }

// waitDrained polls lev's queue status until no job is pending and returns that
// state and when the poll that saw it was sent: the drain ended between the
// poll before and that one. The status counts every job in the database, which
// takes levqor tens of milliseconds at 100,000 jobs, so the pause between polls
// is four times the last poll's duration (at least drainPoll), to keep the
// polling from taking more than a fifth of one core from the work it watches.
// It fails if lev exits, if no job finishes for drainStalled, or after
// drainTimeout.
func waitDrained(ctx context.Context, lev *server, sc *statusClient) (queueState, time.Time, error) {
	start := time.Now()
	var last queueState
	lastProgress := start
	for {
		sent := time.Now()
		q, err := sc.queue(ctx)
		took := time.Since(sent)
		if err != nil {
			if exit := lev.exitErr(); exit != nil {
				return q, sent, exit
			}
			return q, sent, err
		}
		if q.pending() == 0 {
			return q, sent, nil
		}
		if q.FinishedHere != last.FinishedHere || q.pending() != last.pending() {
			last, lastProgress = q, sent
		}
		switch {
		case sent.Sub(lastProgress) > drainStalled:
			return q, sent, fmt.Errorf("%s: no job finished for %s; queue: %s", lev.name, drainStalled, q)
		case sent.Sub(start) > drainTimeout:
			return q, sent, fmt.Errorf("%s: queue not drained after %s; queue: %s", lev.name, drainTimeout, q)
		}
		select {
		case <-ctx.Done():
			return q, sent, ctx.Err()
		case <-time.After(max(drainPoll, 4*took)):
		}
	}
}
