package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

const (
	// benchAdminKey is the bootstrap admin key (LEVQOR_API_KEYS, 16 to 256
	// characters) that intake and e2e submit jobs with.
	benchAdminKey = "levqor-bench-admin-key-0001"
	// intakeBody is the job every request submits: one core.echo step whose
	// input refers to the payload, so running it resolves a reference too.
	intakeBody = `{"workflow":"bench","payload":{"n":1},"steps":[{"id":"a","connector":"core","action":"echo","input":{"x":"{{payload.n}}"}}]}`
	// intakeP99Limit is the target for levqor's p99 intake latency (median of its rounds).
	intakeP99Limit = 15.0 // ms, issue #18
)

// intakeRequest is POST /api/v1/intake of intakeBody with benchAdminKey. An
// answer counts when it is 202 and carries the job's id, which both levqor's
// JobAccepted and the bare server's body do (levqor's status is queued, or running
// when a free worker took the job at once).
func intakeRequest() loadRequest {
	return loadRequest{
		method: http.MethodPost,
		path:   "/api/v1/intake",
		header: http.Header{"Content-Type": {"application/json"}, "X-Api-Key": {benchAdminKey}},
		body:   []byte(intakeBody),
		status: http.StatusAccepted,
		want:   []byte(`"job_id":`), contains: true,
	}
}

// levqorJobsEnv is levqor's environment in the scenarios that submit jobs: the
// admin key, and rate limits that never refuse — per key for the intake load,
// and the bench's polling of GET /api/v1/admin/status; per IP and global too.
func levqorJobsEnv(extra ...string) []string {
	return append([]string{
		"LEVQOR_API_KEYS=" + benchAdminKey,
		"LEVQOR_RATE_LIMIT_KEY=" + benchRateLimit,
		"LEVQOR_RATE_LIMIT_IP=" + benchRateLimit,
		"LEVQOR_RATE_LIMIT_GLOBAL=" + benchRateLimit,
	}, extra...)
}

// intakeDetails is the -json detail of intake: the comparison, and levqor's
// queue once the last round's jobs had run.
type intakeDetails struct {
	comparison
	QueueAfter queueState `json:"queue_after"`
}

// runIntake compares POST /api/v1/intake on levqor with a bare net/http handler
// that stores each request as one row in a SQLite file of its own, opened like
// levqor's writer. levqor runs as it would in production: its workers run the
// submitted jobs during its rounds. Before every round the bench waits until
// levqor has run every job the previous rounds left, so that no round, the
// bare server's included, shares the machine with levqor's backlog; the wait
// is printed.
func runIntake(ctx context.Context, o options) (_ outcome, err error) {
	dir, err := os.MkdirTemp("", "levqor-bench-*")
	if err != nil {
		return outcome{}, err
	}
	defer os.RemoveAll(dir)

	var servers []*server
	defer func() { err = errors.Join(err, stopAll(servers)) }()
	lev, err := startReady(ctx, &servers, "/ready", func() (*server, error) { return startLevqor(o.bin, dir, levqorJobsEnv()...) })
	if err != nil {
		return outcome{}, err
	}
	bare, err := startReady(ctx, &servers, "/health", func() (*server, error) {
		return startBare(o.self, bareIntakeFlag, "-db", filepath.Join(dir, "bare.db"))
	})
	if err != nil {
		return outcome{}, err
	}

	lr := intakeRequest()
	levBody, bareBody, err := fetchBoth(ctx, lev, bare, lr)
	if err != nil {
		return outcome{}, err
	}
	fmt.Fprintf(o.out, "POST %s (%d-byte job, one core.echo step) with an admin key; 202 bodies: levqor %d bytes, bare %d bytes\n",
		lr.path, len(lr.body), len(levBody), len(bareBody))

	sc := newStatusClient(lev.addr)
	defer sc.close()
	settle := func(ctx context.Context) error {
		q, err := sc.queue(ctx)
		if err != nil || q.pending() == 0 {
			return err
		}
		start, cpu0 := time.Now(), cpuOrZero(lev.pid)
		left := q.pending()
		_, drained, err := waitDrained(ctx, lev, sc)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.out, "         levqor: %d jobs still pending; all run %.2f s later (%.0f ms CPU), before the bench went on\n",
			left, drained.Sub(start).Seconds(), float64(cpuOrZero(lev.pid)-cpu0)/float64(time.Millisecond))
		return nil
	}
	c, err := compareThroughput(ctx, o, bare, lev, lr, settle)
	if err != nil {
		return outcome{}, err
	}
	after, err := sc.queue(ctx)
	if err != nil {
		return outcome{}, err
	}
	fmt.Fprintf(o.out, "levqor's jobs after the last round: %s\n", after)
	if n := after.Depth["failed"] + after.Depth["canceled"]; n > 0 {
		fmt.Fprintf(o.out, "WARNING: %d jobs did not succeed\n", n)
	}
	p99 := c.Median[lev.name].P99MS
	fmt.Fprintf(o.out, "levqor p99 %.2f ms (median of rounds; target ≤ %g ms)\n", p99, intakeP99Limit)
	out := c.outcome("intake levqor/bare req/s (medians)", 100) // issue #18
	out.Checks = append(out.Checks, atMost("intake levqor p99 (median of rounds)", p99, "ms", intakeP99Limit))
	out.Details = intakeDetails{comparison: c, QueueAfter: after}
	return out, nil
}

// cpuOrZero is procCPU for figures that are only printed: 0 when it cannot be read.
func cpuOrZero(pid int) time.Duration {
	d, _ := procCPU(pid)
	return d
}
