package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store/storetest"
)

// roundRobin is the demo's load balancer: a reverse proxy over the instances, in
// turn. A request whose connection is refused (a dead instance) never reached it,
// so it is sent to the next one; any other failure is the client's 502.
type roundRobin struct {
	backends []*url.URL
	next     atomic.Uint64
	proxy    *httputil.ReverseProxy
}

func newRoundRobin(addrs []string) *roundRobin {
	rr := &roundRobin{}
	for _, a := range addrs {
		rr.backends = append(rr.backends, &url.URL{Scheme: "http", Host: a})
	}
	rr.proxy = &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.Out.URL.Scheme = "http" }, // the host is chosen by the transport
		Transport: rr,
		ErrorLog:  log.New(io.Discard, "", 0), // the client sees the 502 and counts it
	}
	return rr
}

func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) { rr.proxy.ServeHTTP(w, r) }

// RoundTrip implements http.RoundTripper over the backends.
func (rr *roundRobin) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	start := rr.next.Add(1)
	var err error
	for i := range uint64(len(rr.backends)) {
		b := rr.backends[(start+i)%uint64(len(rr.backends))]
		out := r.Clone(r.Context())
		out.URL.Host, out.Host = b.Host, b.Host
		out.Body = io.NopCloser(bytes.NewReader(body))
		var resp *http.Response
		resp, err = http.DefaultTransport.RoundTrip(out)
		var op *net.OpError
		if err != nil && errors.As(err, &op) && op.Op == "dial" {
			continue // refused: the request never reached a server
		}
		return resp, err
	}
	return nil, err
}

// TestScaleDemo (make scale-demo) starts three instances on one PostgreSQL and one
// Redis behind a round-robin reverse proxy on loopback, loads them with jobs that
// call an outside service, SIGKILLs one mid-load, and checks that every acknowledged
// job succeeds, exactly once, and that the global rate limit holds across the
// instances. It logs the numbers.
func TestScaleDemo(t *testing.T) {
	if os.Getenv("LEVQOR_SCALE_DEMO") == "" {
		t.Skip("set LEVQOR_SCALE_DEMO=1 (make scale-demo), with LEVQOR_TEST_POSTGRES_URL and LEVQOR_TEST_REDIS_URL")
	}
	redisURL := os.Getenv("LEVQOR_TEST_REDIS_URL")
	if redisURL == "" {
		t.Skip("set LEVQOR_TEST_REDIS_URL")
	}
	dbURL := storetest.PostgresURL(t)
	const (
		total       = 3000
		killAfter   = 1000
		lease       = 3 * time.Second
		globalLimit = 40
	)
	counter := &stepCounter{calls: map[string]map[string]int{}}
	outside := httptest.NewServer(counter)
	defer outside.Close()
	env := jobsTestEnv("LEVQOR_DATABASE_URL="+dbURL, "LEVQOR_REDIS_URL="+redisURL, "LEVQOR_JOB_LEASE="+lease.String(),
		"LEVQOR_OUTBOUND_ALLOW_HOSTS=127.0.0.1", fmt.Sprintf("LEVQOR_RATE_LIMIT_GLOBAL=%d-M", globalLimit))
	var insts []*process
	var addrs []string
	for i := range 3 {
		p := startServe(t, filepath.Join(t.TempDir(), fmt.Sprint(i)), env...)
		insts, addrs = append(insts, p), append(addrs, p.addr)
	}
	lb := httptest.NewServer(newRoundRobin(addrs))
	defer lb.Close()
	api := &apiClient{base: lb.URL, http: &http.Client{Timeout: 30 * time.Second}}

	var (
		mu      sync.Mutex
		acked   = map[string]string{} // job id → tag
		refused = map[string]int{}
		next    atomic.Int64
		ackedN  atomic.Int64
		killed  = make(chan time.Time, 1)
		load    sync.WaitGroup
	)
	start := time.Now()
	for range 16 {
		load.Add(1)
		go func() {
			defer load.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				tag := fmt.Sprintf("s%d", i)
				id, status, err := api.submit(crashJob(outside.URL, tag, 20))
				mu.Lock()
				switch {
				case err != nil:
					refused[err.Error()]++
				case status != http.StatusAccepted:
					refused[fmt.Sprint(status)]++
				default:
					acked[id] = tag
				}
				mu.Unlock()
				if ackedN.Add(1) == killAfter {
					if err := insts[1].cmd.Process.Kill(); err == nil { // SIGKILL, mid-load
						killed <- time.Now()
					}
				}
			}
		}()
	}
	load.Wait()
	submitted := time.Since(start)
	var killedAt time.Time
	select {
	case killedAt = <-killed:
	default:
		t.Fatal("the instance was not killed")
	}
	<-insts[1].exited

	q := api.waitDrained(t, 3*time.Minute)
	drained := time.Since(start)

	// From the database: one row per acknowledged job, succeeded.
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), "SELECT id, status, attempts, rescues FROM jobs")
	if err != nil {
		t.Fatal(err)
	}
	seen, bad, retried := 0, 0, 0
	attemptsOf := map[string]int{}
	for rows.Next() {
		var id, status string
		var attempts, rescues int
		if err := rows.Scan(&id, &status, &attempts, &rescues); err != nil {
			t.Fatal(err)
		}
		if _, ok := acked[id]; !ok {
			continue // stored, but its acknowledgement was lost with the killed instance
		}
		seen++
		attemptsOf[id] = attempts
		if attempts > 1 {
			retried++
		}
		if status != jobs.StatusSucceeded {
			if bad++; bad <= 10 {
				t.Errorf("acknowledged job %s: %s after %d attempts (%d rescues)", id, status, attempts, rescues)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != len(acked) || bad > 0 {
		t.Errorf("%d of %d acknowledged jobs in the database, %d not succeeded", seen, len(acked), bad)
	}
	// The outside service: every acknowledged job reached its last step; a step ran
	// twice only for a job that was running on the killed instance (a second attempt).
	calls := counter.snapshot()
	twice := 0
	for id, tag := range acked {
		c := calls[tag]
		if c["step1"] < 1 || c["step3"] < 1 {
			t.Errorf("job %s (%s): outside calls %v, want both steps", id, tag, c)
			continue
		}
		if c["step1"] > 1 || c["step3"] > 1 {
			twice++
			if attemptsOf[id] < 2 {
				t.Errorf("job %s ran a step twice in one attempt: %v", id, c)
			}
		}
	}

	// The global rate limit (unauthenticated traffic) holds across the two live
	// instances: they share one Redis counter.
	okN, limitedN := 0, 0
	for range 3 * globalLimit {
		resp, err := lb.Client().Get(lb.URL + "/status")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			okN++
		case http.StatusTooManyRequests:
			limitedN++
		}
	}
	if okN > globalLimit || okN == 0 || okN+limitedN != 3*globalLimit {
		t.Errorf("rate limit across instances: %d ok, %d limited of %d; want at most %d ok", okN, limitedN, 3*globalLimit, globalLimit)
	}

	var refusedN int
	var reasons []string
	for r, n := range refused {
		refusedN += n
		reasons = append(reasons, fmt.Sprintf("%s×%d", r, n))
	}
	t.Logf("scale demo: 3 instances (PostgreSQL + Redis) behind a round-robin proxy; %d intakes in %v (%.0f/s), instance 2 SIGKILLed %v after the start at %d acknowledgements",
		total, submitted.Round(time.Millisecond), float64(total)/submitted.Seconds(), killedAt.Sub(start).Round(time.Millisecond), killAfter)
	t.Logf("acknowledged %d, refused %d (%s); all acknowledged succeeded %v after the start; %d needed a second attempt (lease %v), %d ran a step twice (at-least-once per step, only in a second attempt); queue %v",
		len(acked), refusedN, strings.Join(reasons, ", "), drained.Round(time.Millisecond), retried, lease, twice, q.Depth)
	t.Logf("global rate limit %d/min across instances: %d ok, %d refused 429", globalLimit, okN, limitedN)
}
