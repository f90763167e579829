package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/levqor/levqor/connectors/ai/aitest"
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
// Redis behind a round-robin reverse proxy on loopback and checks, logging the numbers
// (docs/adr/0013-operations.md keeps a run's):
//   - budgets hold across instances: concurrent AI jobs of one owner, through all
//     three, never take its spending past its budget, and nothing is charged twice;
//   - loaded with jobs that call an outside service, with one instance SIGKILLed
//     mid-load, every acknowledged job succeeds, exactly once;
//   - the global rate limit holds across the instances;
//   - the backup slot (every minute here) runs once across the instances: one claim,
//     one pg_dump archive per slot.
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
	if _, err := exec.LookPath("pg_dump"); err != nil {
		t.Skip("pg_dump is not installed (apt-get install postgresql-client): the demo's backup slots need it")
	}
	counter := &stepCounter{calls: map[string]map[string]int{}}
	outside := httptest.NewServer(counter)
	defer outside.Close()
	chat := aitest.NewExactChat(t, scaleAIKey, 150*time.Millisecond) // calls in flight together
	env := jobsTestEnv("LEVQOR_DATABASE_URL="+dbURL, "LEVQOR_REDIS_URL="+redisURL, "LEVQOR_JOB_LEASE="+lease.String(),
		"LEVQOR_OUTBOUND_ALLOW_HOSTS=127.0.0.1", fmt.Sprintf("LEVQOR_RATE_LIMIT_GLOBAL=%d-M", globalLimit),
		"LEVQOR_AI_BASE_URL="+chat.BaseURL(), "LEVQOR_AI_API_KEY="+scaleAIKey,
		"LEVQOR_BACKUP_SCHEDULE=* * * * *") // every minute: the start-up slot (a misfire within the grace), then the next
	demoStart := time.Now()
	var insts []*process
	var addrs, dirs []string
	for i := range 3 {
		dir := filepath.Join(t.TempDir(), fmt.Sprint(i))
		p := startServe(t, dir, env...)
		insts, addrs, dirs = append(insts, p), append(addrs, p.addr), append(dirs, dir)
	}
	lb := httptest.NewServer(newRoundRobin(addrs))
	defer lb.Close()
	api := &apiClient{base: lb.URL, http: &http.Client{Timeout: 30 * time.Second}}
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	budgets := budgetsAcrossInstances(t, api, conn, chat, dbURL)

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
	rows, err := conn.Query(t.Context(), "SELECT id, status, attempts, rescues FROM jobs WHERE workflow = 'crash-safety'")
	if err != nil {
		t.Fatal(err)
	}
	seen, bad, retried, succeeded := 0, 0, 0, 0
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
		if status == jobs.StatusSucceeded {
			succeeded++
		} else {
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

	slots := backupSlotsRunOnce(t, conn, insts, dirs, 1)

	var refusedN int
	var reasons []string
	for r, n := range refused {
		refusedN += n
		reasons = append(reasons, fmt.Sprintf("%s×%d", r, n))
	}
	t.Logf("scale demo: 3 instances (PostgreSQL + Redis) behind a round-robin proxy, %v in all", time.Since(demoStart).Round(time.Second))
	budgets.log(t)
	t.Logf("load: %d intakes in %v (%.0f/s), instance 2 SIGKILLed %v after the start at %d acknowledgements",
		total, submitted.Round(time.Millisecond), float64(total)/submitted.Seconds(), killedAt.Sub(start).Round(time.Millisecond), killAfter)
	t.Logf("load: acknowledged %d, refused %d (%s); succeeded %d of the acknowledged, each once (one row each), all %v after the start; %d needed a second attempt (lease %v), %d ran a step twice (at-least-once per step, only in a second attempt); queue %v",
		len(acked), refusedN, strings.Join(reasons, ", "), succeeded, drained.Round(time.Millisecond), retried, lease, twice, q.Depth)
	t.Logf("rate limit: global %d/min across instances: %d ok, %d refused 429", globalLimit, okN, limitedN)
	for _, l := range slots {
		t.Logf("backup: %s", l)
	}
}

// scaleAIKey is the AI provider key of the demo's fake Chat Completions API.
const scaleAIKey = "sk-scale-demo"

// send makes one request with key and returns the status, content type and body.
func (c *apiClient) send(method, path, key string, body []byte) (status int, contentType string, b []byte, err error) {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Api-Key", key)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err = io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b, err
}

// budgetDemo is what the budget part of the scale demo measured.
type budgetDemo struct {
	jobs, fit                     int
	succeeded, refused402, ranOut int
	calls                         int64
	limit, perCall, spent         int64 // nano-dollars
	peak                          int64 // the most spent + reserved seen in any sample
	samples                       int
}

func (b budgetDemo) log(t *testing.T) {
	t.Helper()
	t.Logf("budget: %d concurrent AI jobs of one owner over 3 instances, budget $%.9f/day (%d calls of $%.9f): %d succeeded, %d refused 402 budget_exceeded at intake, %d failed budget_exceeded when run",
		b.jobs, float64(b.limit)/1e9, b.fit, float64(b.perCall)/1e9, b.succeeded, b.refused402, b.ranOut)
	t.Logf("budget: provider calls %d; settled $%.9f (%d calls, none charged twice), reserved $0 after; highest spent + reserved in %d samples $%.9f ≤ budget",
		b.calls, float64(b.spent)/1e9, b.spent/max(b.perCall, 1), b.samples, float64(b.peak)/1e9)
}

// budgetsAcrossInstances submits many AI jobs at once for one owner, whose daily
// budget fits exactly a few calls, through the proxy (so over all three instances),
// while sampling the owner's running totals on PostgreSQL: spent + reserved never
// exceeds the budget, exactly the calls that fit are made and charged once each, and
// every refusal is a 402 budget_exceeded problem or a job failed budget_exceeded.
func budgetsAcrossInstances(t *testing.T, api *apiClient, conn *pgx.Conn, chat *aitest.ExactChat, dbURL string) budgetDemo {
	const (
		prompt    = "Say hi to the scale demo."
		maxTokens = 40
	)
	d := budgetDemo{jobs: 48, fit: 8}
	perCall, err := aitest.CallCost("gpt-4o-mini", prompt, maxTokens)
	if err != nil {
		t.Fatal(err)
	}
	d.perCall = int64(perCall)

	// The owner and its key, made as an operator makes them, beside the running servers.
	out, errOut, code := runLevqor(t, t.TempDir(), cleanEnv("LEVQOR_DATABASE_URL="+dbURL, "LEVQOR_DATA_DIR="+t.TempDir()),
		"keys", "create", "--owner", "budget-demo@example.com", "--scopes", "jobs:read,jobs:write", "--name", "scale demo")
	if code != 0 {
		t.Fatalf("levqor keys create: exit %d: %s", code, errOut)
	}
	var owner, key string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "owner:"); ok {
			owner = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "key:"); ok {
			key = strings.TrimSpace(v)
		}
	}
	limitUSD := float64(d.fit) * perCall.USD()
	limits, _ := json.Marshal(map[string]float64{"daily_usd": limitUSD, "monthly_usd": 10 * limitUSD})
	if status, _, b, err := api.send(http.MethodPut, "/api/v1/budgets/"+owner, jobsTestKey, limits); err != nil || status != http.StatusOK {
		t.Fatalf("PUT /api/v1/budgets/%s: %d %s %v", owner, status, b, err)
	}
	if err := conn.QueryRow(t.Context(), "SELECT daily_nanos FROM budget_limits WHERE owner_id = $1", owner).Scan(&d.limit); err != nil {
		t.Fatal(err)
	}
	if d.limit < int64(d.fit)*d.perCall || d.limit >= int64(d.fit+1)*d.perCall {
		t.Fatalf("stored daily limit %d nano-USD; want room for exactly %d calls of %d", d.limit, d.fit, d.perCall)
	}

	// The sampler: the owner's day totals, as every reservation updates them.
	stop := make(chan struct{})
	sampled := make(chan error, 1)
	go func() {
		sampler, err := pgx.Connect(context.Background(), dbURL)
		if err != nil {
			sampled <- err
			return
		}
		defer sampler.Close(context.Background())
		for {
			var held int64
			err := sampler.QueryRow(context.Background(),
				"SELECT COALESCE(MAX(spent_nanos + reserved_nanos), 0) FROM budget_totals WHERE owner_id = $1 AND period LIKE 'D%'", owner).Scan(&held)
			if err != nil {
				sampled <- err
				return
			}
			d.samples++
			d.peak = max(d.peak, held)
			select {
			case <-stop:
				sampled <- nil
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()

	body, _ := json.Marshal(map[string]any{"workflow": "budget-demo", "payload": map[string]any{}, "steps": []any{
		map[string]any{"id": "ask", "connector": "ai", "action": "complete", "input": map[string]any{"prompt": prompt, "max_tokens": maxTokens}},
	}})
	var (
		mu  sync.Mutex
		ids []string
		wg  sync.WaitGroup
	)
	for range d.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, ctype, b, err := api.send(http.MethodPost, "/api/v1/intake", key, body)
			var res struct {
				JobID string `json:"job_id"`
				Code  string `json:"code"`
			}
			_ = json.Unmarshal(b, &res)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("AI intake: %v", err)
			case status == http.StatusAccepted && res.JobID != "":
				ids = append(ids, res.JobID)
			case status == http.StatusPaymentRequired && ctype == "application/problem+json" && res.Code == "budget_exceeded":
				d.refused402++
			default:
				t.Errorf("AI intake: %d %s %s; want 202 or a 402 budget_exceeded problem", status, ctype, b)
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(time.Minute)
	for _, id := range ids {
		for {
			var j struct {
				Status string `json:"status"`
				Error  *struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			status, _, b, err := api.send(http.MethodGet, "/api/v1/jobs/"+id, key, nil)
			if err != nil || status != http.StatusOK || json.Unmarshal(b, &j) != nil {
				t.Fatalf("GET /api/v1/jobs/%s: %d %s %v", id, status, b, err)
			}
			if j.Status == jobs.StatusSucceeded {
				d.succeeded++
				break
			}
			if j.Status == jobs.StatusFailed || j.Status == jobs.StatusCanceled {
				if j.Error == nil || j.Error.Code != "budget_exceeded" {
					t.Errorf("AI job %s ended %s: %s", id, j.Status, b)
				}
				d.ranOut++
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("AI job %s still %s after a minute", id, j.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	close(stop)
	if err := <-sampled; err != nil {
		t.Fatal(err)
	}
	d.calls = chat.Calls.Load()

	// The ledger: one settled row per call made, each job charged once, the totals equal.
	var settled, jobsCharged, open int
	var reserved int64
	if err := conn.QueryRow(t.Context(), `SELECT COUNT(*) FILTER (WHERE state = 'settled'), COUNT(DISTINCT job_id) FILTER (WHERE state = 'settled'),
		COUNT(*) FILTER (WHERE state = 'open'), COALESCE(SUM(spent_nanos) FILTER (WHERE state = 'settled'), 0) FROM budget_ledger WHERE owner_id = $1`, owner).
		Scan(&settled, &jobsCharged, &open, &d.spent); err != nil {
		t.Fatal(err)
	}
	var totalSpent int64
	if err := conn.QueryRow(t.Context(), `SELECT COALESCE(SUM(spent_nanos), 0), COALESCE(SUM(reserved_nanos), 0) FROM budget_totals WHERE owner_id = $1 AND period LIKE 'D%'`, owner).
		Scan(&totalSpent, &reserved); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.succeeded != d.fit || d.succeeded+d.refused402+d.ranOut != d.jobs:
		t.Errorf("AI jobs: %d succeeded, %d refused at intake, %d ran out; want exactly %d of %d to succeed", d.succeeded, d.refused402, d.ranOut, d.fit, d.jobs)
	case d.calls != int64(d.fit):
		t.Errorf("the provider was called %d times, want %d", d.calls, d.fit)
	case settled != d.fit || jobsCharged != d.fit || open != 0:
		t.Errorf("ledger: %d settled rows for %d jobs, %d open; want %d settled, one per job, none open", settled, jobsCharged, open, d.fit)
	case d.spent != int64(d.fit)*d.perCall || totalSpent != d.spent || reserved != 0:
		t.Errorf("spent %d nano-USD in the ledger, %d in the totals (reserved %d); want %d", d.spent, totalSpent, reserved, int64(d.fit)*d.perCall)
	}
	if d.peak > d.limit || d.samples < 2 {
		t.Errorf("spent + reserved reached %d nano-USD against a budget of %d (%d samples)", d.peak, d.limit, d.samples)
	}
	return d
}

// logLines returns the log lines matching pred.
func (s *process) logLines(pred func(map[string]any) bool) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range s.lines {
		if l != nil && pred(l) {
			out = append(out, l)
		}
	}
	return out
}

// backupSlotsRunOnce waits until two backup slots have been taken (the start-up one
// and the next minute's, with every instance scheduling each), then checks them on
// PostgreSQL and on disk: every slot has one claim row; the instance named in it, and
// only that one, took one pg_dump archive for the slot, and it is in that instance's
// data dir; no other archive exists. A slot claimed by the killed instance may have no
// archive (it died before publishing); it is reported. It returns a line per slot for
// the log, naming instances from 1 as the demo's log does (killed is an index).
func backupSlotsRunOnce(t *testing.T, conn *pgx.Conn, insts []*process, dirs []string, killed int) []string {
	type taken struct {
		inst int
		file string
	}
	host, _ := os.Hostname()
	instanceOf := map[string]int{} // claimed_by → instance
	for i, p := range insts {
		instanceOf[fmt.Sprintf("%s/%d", host, p.cmd.Process.Pid)] = i
	}
	var (
		done      map[string][]taken // slot → backups taken
		stoodDown map[string]int     // slot → instances that found it claimed
		claims    map[string]string  // slot → claimed_by
		order     []string
	)
	read := func() (pending int) {
		done, stoodDown, claims, order = map[string][]taken{}, map[string]int{}, map[string]string{}, nil
		for i, p := range insts {
			for _, l := range p.logLines(msgIs("backup taken")) {
				slot, _ := l["slot"].(string)
				file, _ := l["file"].(string)
				done[slot] = append(done[slot], taken{i, file})
			}
			for _, l := range p.logLines(msgIs("backup slot taken by another instance")) {
				slot, _ := l["slot"].(string)
				stoodDown[slot]++
			}
		}
		rows, err := conn.Query(t.Context(), "SELECT slot, claimed_by FROM schedule_slots WHERE key = 'backup' ORDER BY slot")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var slot time.Time
			var by string
			if err := rows.Scan(&slot, &by); err != nil {
				t.Fatal(err)
			}
			s := slot.UTC().Format(time.RFC3339)
			claims[s] = by
			order = append(order, s)
			if i, ok := instanceOf[by]; ok && i != killed && len(done[s]) == 0 {
				pending++ // a live instance's backup still running
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return pending
	}
	deadline := time.Now().Add(100 * time.Second) // the next minute, a dump, and slack
	for pending := read(); len(done) < 2 || pending > 0; pending = read() {
		if time.Now().After(deadline) {
			t.Fatalf("after waiting: backups taken %v, claims %v", done, claims)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range insts {
		for _, l := range p.logLines(func(l map[string]any) bool { return l["msg"] == "backup failed" || l["msg"] == "claim backup slot" }) {
			t.Errorf("instance log: %v", l)
		}
	}

	var lines []string
	archives := 0
	for _, slot := range order {
		by, ts := claims[slot], done[slot]
		claimant, known := instanceOf[by]
		switch {
		case !known:
			t.Errorf("slot %s claimed by %q, none of the instances", slot, by)
			continue
		case len(ts) == 0 && claimant == killed:
			lines = append(lines, fmt.Sprintf("slot %s: 1 claim row (instance %d, killed before its archive was published), 0 archives", slot, killed+1))
			continue
		case len(ts) != 1:
			t.Errorf("slot %s: %d backups taken (%v), want one", slot, len(ts), ts)
			continue
		}
		tk := ts[0]
		if tk.inst != claimant {
			t.Errorf("slot %s claimed by instance %d, but instance %d took the backup", slot, claimant+1, tk.inst+1)
		}
		path := filepath.Join(dirs[tk.inst], "backups", tk.file)
		b, err := os.ReadFile(path)
		if err != nil || !bytes.HasPrefix(b, []byte("PGDMP")) {
			t.Errorf("slot %s: archive %s: %v (not a pg_dump custom archive)", slot, path, err)
		}
		archives++
		lines = append(lines, fmt.Sprintf("slot %s: 1 claim row, 1 archive (%s, %d KiB, by instance %d); instances that found it claimed and stood down: %d",
			slot, tk.file, len(b)>>10, tk.inst+1, stoodDown[slot]))
	}
	for slot := range done {
		if _, ok := claims[slot]; !ok {
			t.Errorf("a backup was taken for slot %s, which no claim row holds", slot)
		}
	}
	var onDisk []string
	for _, dir := range dirs {
		m, _ := filepath.Glob(filepath.Join(dir, "backups", "backup_*.dump"))
		onDisk = append(onDisk, m...)
	}
	if len(onDisk) != archives {
		t.Errorf("%d archives on disk (%v) for %d slots taken", len(onDisk), onDisk, archives)
	}
	return lines
}
