package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store/sqlite"
	"github.com/levqor/levqor/store/storetest"
)

// jobsTestKey is the bootstrap admin key of the job crash tests.
const jobsTestKey = "jobs-crash-admin-key-0123456789"

// jobsTestEnv is the configuration every job crash test shares: one admin key and
// rate limits far above what the tests send (they poll /api/v1/admin/status).
func jobsTestEnv(vars ...string) []string {
	return append([]string{
		"LEVQOR_API_KEYS=" + jobsTestKey,
		"LEVQOR_RATE_LIMIT_KEY=1000000-M",
		"LEVQOR_RATE_LIMIT_IP=1000000-M",
		"LEVQOR_RATE_LIMIT_GLOBAL=1000000-M",
	}, vars...)
}

// stepView is a step of a job as the API or the database shows it.
type stepView struct {
	ID         string     `json:"id"`
	Status     string     `json:"status"`
	Attempts   int        `json:"attempts"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// jobView is the part of a job's record these tests read.
type jobView struct {
	ID         string     `json:"id"`
	Status     string     `json:"status"`
	Attempts   int        `json:"attempts"`
	Steps      []stepView `json:"steps"`
	FinishedAt *time.Time `json:"finished_at"`
}

func (j jobView) step(id string) (stepView, bool) {
	for _, s := range j.Steps {
		if s.ID == id {
			return s, true
		}
	}
	return stepView{}, false
}

// toJobView reads a job as the store holds it.
func toJobView(j jobs.Job) jobView {
	v := jobView{ID: j.ID, Status: j.Status, Attempts: j.Attempts, FinishedAt: j.FinishedAt}
	for _, s := range j.Steps {
		v.Steps = append(v.Steps, stepView{ID: s.ID, Status: s.Status, Attempts: s.Attempts, StartedAt: s.StartedAt, FinishedAt: s.FinishedAt})
	}
	return v
}

// sameTime reports whether two optional times are both absent or equal.
func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// queueView is the queue section of /api/v1/admin/status.
type queueView struct {
	Depth        map[string]int `json:"depth"`
	FinishedHere *int           `json:"finished_here"`
}

// unfinished counts the jobs that are still to run or running.
func (q queueView) unfinished() int {
	return q.Depth[jobs.StatusQueued] + q.Depth[jobs.StatusScheduled] + q.Depth[jobs.StatusRunning] + q.Depth[jobs.StatusRetrying]
}

// apiClient calls one `levqor serve` with the admin key.
type apiClient struct {
	base string
	http *http.Client
}

func newAPIClient(p *process) *apiClient {
	tr := &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	return &apiClient{base: "http://" + p.addr, http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// submit posts an intake and returns the job id when it was accepted (202).
func (c *apiClient) submit(body []byte) (id string, status int, err error) {
	req, err := http.NewRequest(http.MethodPost, c.base+"/api/v1/intake", bytes.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", jobsTestKey)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusAccepted {
		return "", resp.StatusCode, nil
	}
	var accepted struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal(b, &accepted); err != nil || accepted.JobID == "" {
		return "", resp.StatusCode, fmt.Errorf("202 without a job id: %s", b)
	}
	return accepted.JobID, resp.StatusCode, nil
}

func (c *apiClient) getJSON(t *testing.T, path string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", jobsTestKey)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, b)
		}
	}
	return resp.StatusCode
}

func (c *apiClient) job(t *testing.T, id string) (jobView, int) {
	t.Helper()
	var j jobView
	status := c.getJSON(t, "/api/v1/jobs/"+id, &j)
	return j, status
}

func (c *apiClient) queue(t *testing.T) queueView {
	t.Helper()
	var st struct {
		Queue queueView `json:"queue"`
	}
	if status := c.getJSON(t, "/api/v1/admin/status", &st); status != http.StatusOK {
		t.Fatalf("GET /api/v1/admin/status: %d", status)
	}
	return st.Queue
}

// waitDrained polls /api/v1/admin/status until no job is queued, scheduled, running or retrying.
func (c *apiClient) waitDrained(t *testing.T, timeout time.Duration) queueView {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		q := c.queue(t)
		if q.unfinished() == 0 {
			return q
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs still unfinished after %v: %v", timeout, q.Depth)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stepCounter is the outside service the crash test's jobs call: it counts the
// calls of every (job, step), the job named by the "job" field of the JSON body.
type stepCounter struct {
	mu    sync.Mutex
	calls map[string]map[string]int // job tag → step (URL path) → calls
	total atomic.Int64
}

func (c *stepCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Job string `json:"job"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Job == "" || r.Method != http.MethodPost {
		http.Error(w, `{"error":"want POST {"job": …}"}`, http.StatusBadRequest) // fails the step for good
		return
	}
	step := strings.TrimPrefix(r.URL.Path, "/")
	c.mu.Lock()
	if c.calls[body.Job] == nil {
		c.calls[body.Job] = map[string]int{}
	}
	c.calls[body.Job][step]++
	c.mu.Unlock()
	c.total.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// snapshot copies the counts.
func (c *stepCounter) snapshot() map[string]map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]map[string]int, len(c.calls))
	for job, steps := range c.calls {
		out[job] = map[string]int{}
		for s, n := range steps {
			out[job][s] = n
		}
	}
	return out
}

// crashJob is an intake of three steps: a call to the counter, a pause, another call.
func crashJob(counterURL, tag string, pauseMS int) []byte {
	call := func(step string) map[string]any {
		return map[string]any{"id": step, "connector": "http", "action": "request", "input": map[string]any{
			"method": "POST", "url": counterURL + "/" + step, "json": map[string]any{"job": "{{payload.n}}"},
		}}
	}
	b, _ := json.Marshal(map[string]any{
		"workflow": "crash-safety",
		"payload":  map[string]any{"n": tag},
		"steps": []map[string]any{
			call("step1"),
			{"id": "pause", "connector": "core", "action": "sleep", "input": map[string]any{"ms": pauseMS}},
			call("step3"),
		},
	})
	return b
}

// copySQLite copies the database files of dataDir (not the lock) into a new
// directory and returns the copy's path, so the crashed state can be read without
// touching the files the restarted server recovers from.
func copySQLite(t *testing.T, dataDir string) string {
	t.Helper()
	dst := t.TempDir()
	for _, name := range []string{"levqor.db", "levqor.db-wal", "levqor.db-shm"} {
		b, err := os.ReadFile(filepath.Join(dataDir, name))
		if os.IsNotExist(err) && name != "levqor.db" {
			continue
		}
		if err != nil {
			t.Fatalf("copy the crashed database: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dst, "levqor.db")
}

// TestCrashSafetySQLite SIGKILLs `levqor serve` on SQLite while jobs run and intakes
// are in flight, restarts it on the same data directory and checks the promise of
// DESIGN.md: no acknowledged job is lost or left running, running jobs return to the
// queue at start-up, steps run at least once, and a step recorded as succeeded is
// never run again.
func TestCrashSafetySQLite(t *testing.T) {
	counter := &stepCounter{calls: map[string]map[string]int{}}
	counterSrv := httptest.NewServer(counter)
	defer counterSrv.Close()

	dataDir := filepath.Join(t.TempDir(), "data")
	env := jobsTestEnv("LEVQOR_OUTBOUND_ALLOW_HOSTS=127.0.0.1", "LEVQOR_JOB_LEASE=3s", "LEVQOR_WORKERS=8")
	first := startServe(t, dataDir, env...)
	api := newAPIClient(first)

	// Intake load: 8 submitters, each pacing itself so the queue stays drainable in seconds.
	var (
		mu       sync.Mutex
		acked    = map[string]string{} // job tag → job id
		sent     atomic.Int64
		killing  atomic.Bool
		inFlight atomic.Int64 // intakes sent before the kill that got no answer
		pending  atomic.Int64 // intakes under way now
		refused  = map[int]int{}
	)
	stop := make(chan struct{})
	var load sync.WaitGroup
	for g := range 8 {
		load.Add(1)
		go func() {
			defer load.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if killing.Load() {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				tag := fmt.Sprintf("g%d-%d", g, i)
				sent.Add(1)
				pending.Add(1)
				id, status, err := api.submit(crashJob(counterSrv.URL, tag, 50+rand.IntN(151)))
				pending.Add(-1)
				mu.Lock()
				switch {
				case err != nil:
					inFlight.Add(1)
				case status == http.StatusAccepted:
					acked[tag] = id
				default:
					refused[status]++
				}
				mu.Unlock()
				time.Sleep(25 * time.Millisecond)
			}
		}()
	}

	// Kill once jobs are running (the counter has calls), about a second has passed,
	// and (for up to another second) at the moment an intake is under way.
	loadStart := time.Now()
	for time.Since(loadStart) < time.Second || counter.total.Load() < 16 || (pending.Load() == 0 && time.Since(loadStart) < 2*time.Second) {
		if time.Since(loadStart) > 10*time.Second {
			close(stop)
			load.Wait()
			t.Fatalf("no jobs ran within 10s (counter calls %d):\n%s", counter.total.Load(), first.output())
		}
		time.Sleep(100 * time.Microsecond)
	}
	// SIGKILL: no drain, no clean close. No new intake starts; those under way are cut off.
	killing.Store(true)
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.exited
	close(stop)
	load.Wait()
	time.Sleep(100 * time.Millisecond) // calls that reached the counter as the process died are counted
	mu.Lock()
	if len(refused) > 0 {
		t.Errorf("intakes answered other than 202 before the kill: %v", refused)
	}
	mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("no intake was accepted before the kill")
	}

	// The state at the crash, read from a copy of the files.
	crashDB, err := sqlite.Open(t.Context(), copySQLite(t, dataDir))
	if err != nil {
		t.Fatalf("open a copy of the crashed database: %v", err)
	}
	atCrash := map[string]jobView{}
	for _, id := range acked {
		j, err := crashDB.GetJob(t.Context(), id)
		if err != nil {
			t.Errorf("acknowledged job %s is not in the database after the crash: %v", id, err)
			continue
		}
		atCrash[id] = toJobView(j)
	}
	runningRows, _, err := crashDB.ListJobs(t.Context(), jobs.ListFilter{AllOwners: true, Status: jobs.StatusRunning, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	crashDB.Close()
	callsAtCrash := counter.snapshot()

	runningAtCrash, step1Recorded := 0, 0
	for _, j := range atCrash {
		if j.Status == jobs.StatusRunning {
			runningAtCrash++
			if s, _ := j.step("step1"); s.Status == jobs.StepSucceeded {
				step1Recorded++
			}
		}
	}
	// Without these the test would not exercise what it is about.
	if runningAtCrash == 0 || step1Recorded == 0 {
		t.Fatalf("at the kill %d acknowledged jobs were running, %d of them with step1 recorded; want both > 0", runningAtCrash, step1Recorded)
	}

	// Restart on the same data directory: the SQLite lock died with the process.
	restarted := time.Now()
	second := startServe(t, dataDir, env...)
	line := second.waitLog(t, "returned jobs of a stopped process to the queue", 5*time.Second)
	if n, _ := line["jobs"].(float64); int(n) != len(runningRows) {
		t.Errorf("the restart returned %v jobs to the queue, want the %d running at the crash", line["jobs"], len(runningRows))
	}
	rescuedAt, err := time.Parse(time.RFC3339Nano, fmt.Sprint(line["time"]))
	if err != nil {
		t.Fatalf("rescue log line without a time: %v", line)
	}
	recovery := rescuedAt.Sub(restarted)
	if recovery > 5*time.Second {
		t.Errorf("running jobs returned to the queue %v after the restart, want within 5s", recovery)
	}

	api2 := newAPIClient(second)
	drainStart := time.Now()
	q := api2.waitDrained(t, 60*time.Second)
	drained := time.Since(drainStart)
	if q.Depth[jobs.StatusRunning] != 0 {
		t.Errorf("jobs still running after the drain: %v", q.Depth)
	}
	callsTotal := counter.snapshot()

	rerunWindow := 0 // steps run once more than their record counts: cut off by the crash (at-least-once)
	for tag, id := range acked {
		crashed, ok := atCrash[id]
		if !ok {
			continue // reported above
		}
		j, status := api2.job(t, id)
		if status != http.StatusOK {
			t.Errorf("job %s (%s): GET %d after the restart", id, tag, status)
			continue
		}
		if j.Status != jobs.StatusSucceeded {
			t.Errorf("job %s (%s) ended %s, want succeeded (at the crash it was %s)", id, tag, j.Status, crashed.Status)
			continue
		}
		switch crashed.Status {
		case jobs.StatusQueued:
			if j.Attempts != 1 {
				t.Errorf("job %s queued at the crash took %d attempts, want 1", id, j.Attempts)
			}
		case jobs.StatusRunning:
			if j.Attempts != crashed.Attempts+1 {
				t.Errorf("job %s running at the crash (attempt %d) ended at attempt %d, want %d", id, crashed.Attempts, j.Attempts, crashed.Attempts+1)
			}
		case jobs.StatusSucceeded:
			if j.Attempts != crashed.Attempts || !sameTime(j.FinishedAt, crashed.FinishedAt) {
				t.Errorf("job %s succeeded before the crash but changed after it: %+v, was %+v", id, j, crashed)
			}
		}
		for _, name := range []string{"step1", "step3"} {
			st, _ := j.step(name)
			was, _ := crashed.step(name)
			before := callsAtCrash[tag][name]
			after := callsTotal[tag][name] - before
			if st.Status != jobs.StepSucceeded || before+after == 0 {
				t.Errorf("job %s %s: status %s after %d calls, want succeeded after ≥ 1", id, name, st.Status, before+after)
			}
			// Each attempt of the job runs a step at most once.
			if before > crashed.Attempts || after > j.Attempts-crashed.Attempts {
				t.Errorf("job %s %s ran %d times before the crash (%d attempts) and %d after (%d attempts)",
					id, name, before, crashed.Attempts, after, j.Attempts-crashed.Attempts)
			}
			if was.Status == jobs.StepSucceeded {
				// Recorded as succeeded: never run again, its record unchanged.
				if after != 0 {
					t.Errorf("job %s %s was recorded succeeded at the crash yet ran %d more times", id, name, after)
				}
				if st.Attempts != was.Attempts || !sameTime(st.FinishedAt, was.FinishedAt) {
					t.Errorf("job %s %s recorded succeeded at the crash changed: %+v, was %+v", id, name, st, was)
				}
			}
			// A step's record counts every run but one that the crash cut off before
			// it was recorded (DESIGN.md: at-least-once per step).
			cutOff := 0
			if crashed.Status == jobs.StatusRunning && was.Status != jobs.StepSucceeded {
				cutOff = 1
			}
			if calls := before + after; calls > st.Attempts+cutOff {
				t.Errorf("job %s %s ran %d times; its record says %d attempts", id, name, calls, st.Attempts)
			} else if calls > st.Attempts {
				rerunWindow++
			}
		}
	}
	t.Logf("submitted %d intakes, %d got 202, %d in flight at the kill; at the crash %d jobs were running (%d acknowledged, %d of them with step1 recorded); "+
		"rescued %v after the restart; drained in %v; %d step runs were cut off by the crash and run again",
		sent.Load(), len(acked), inFlight.Load(), len(runningRows), runningAtCrash, step1Recorded, recovery.Round(time.Millisecond), drained.Round(time.Millisecond), rerunWindow)
}

// TestTwoInstancesOnPostgres runs two `levqor serve` on one PostgreSQL database and
// checks that they share the queue: every job runs exactly once and both do work.
func TestTwoInstancesOnPostgres(t *testing.T) {
	dbURL := storetest.PostgresURL(t)
	const total = 5000
	env := jobsTestEnv("LEVQOR_DATABASE_URL=" + dbURL)
	a := startServe(t, filepath.Join(t.TempDir(), "a"), env...) // migrates first
	b := startServe(t, filepath.Join(t.TempDir(), "b"), env...)
	clients := []*apiClient{newAPIClient(a), newAPIClient(b)}

	var (
		mu      sync.Mutex
		acked   = make(map[string]bool, total)
		refused = map[string]int{}
		next    atomic.Int64
		load    sync.WaitGroup
	)
	start := time.Now()
	for range 8 {
		load.Add(1)
		go func() {
			defer load.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				body := fmt.Sprintf(`{"workflow":"two-instances","payload":{"n":%d},"steps":[{"id":"echo","connector":"core","action":"echo","input":{"n":"{{payload.n}}"}}]}`, i)
				id, status, err := clients[i%2].submit([]byte(body))
				mu.Lock()
				switch {
				case err != nil:
					refused[err.Error()]++
				case status != http.StatusAccepted:
					refused[fmt.Sprint(status)]++
				default:
					acked[id] = true
				}
				mu.Unlock()
			}
		}()
	}
	load.Wait()
	submitted := time.Since(start)
	if len(refused) > 0 || len(acked) != total {
		t.Fatalf("%d of %d intakes accepted; the others: %v", len(acked), total, refused)
	}

	q := clients[0].waitDrained(t, 120*time.Second)
	drained := time.Since(start)
	if q.Depth[jobs.StatusSucceeded] != total {
		t.Errorf("jobs per status after the drain: %v, want %d succeeded", q.Depth, total)
	}

	// Every job, from the database itself: succeeded, at its first attempt.
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), "SELECT id, status, attempts FROM jobs")
	if err != nil {
		t.Fatal(err)
	}
	seen, bad := 0, 0
	for rows.Next() {
		var id, status string
		var attempts int
		if err := rows.Scan(&id, &status, &attempts); err != nil {
			t.Fatal(err)
		}
		seen++
		if !acked[id] || status != jobs.StatusSucceeded || attempts != 1 {
			if bad++; bad <= 10 {
				t.Errorf("job %s: acknowledged %v, %s after %d attempts; want an acknowledged job succeeded at attempt 1", id, acked[id], status, attempts)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != total || bad > 0 {
		t.Errorf("%d jobs in the database (%d wrong), want the %d acknowledged", seen, bad, total)
	}

	// Both instances worked, and together finished each job once.
	var here [2]int
	for i, c := range clients {
		fq := c.queue(t)
		if fq.FinishedHere == nil {
			t.Fatalf("instance %d: /api/v1/admin/status has no queue.finished_here", i)
		}
		here[i] = *fq.FinishedHere
		if here[i] == 0 {
			t.Errorf("instance %d finished no job", i)
		}
	}
	if here[0]+here[1] != total {
		t.Errorf("the instances finished %d + %d attempts, want %d in all", here[0], here[1], total)
	}
	t.Logf("%d jobs submitted across 2 instances in %v (%.0f/s), all succeeded %v after the first intake; finished %d by A, %d by B",
		total, submitted.Round(time.Millisecond), float64(total)/submitted.Seconds(), drained.Round(time.Millisecond), here[0], here[1])
}

// TestLeaseExpiryOnPostgres SIGKILLs the instance running a job; another instance
// takes the job over once its lease has expired, not before, and finishes it.
func TestLeaseExpiryOnPostgres(t *testing.T) {
	dbURL := storetest.PostgresURL(t)
	const lease = 2 * time.Second
	env := jobsTestEnv("LEVQOR_DATABASE_URL="+dbURL, "LEVQOR_JOB_LEASE="+lease.String())
	a := startServe(t, filepath.Join(t.TempDir(), "a"), env...)
	apiA := newAPIClient(a)
	id, status, err := apiA.submit([]byte(`{"workflow":"lease-expiry","payload":{},"steps":[{"id":"nap","connector":"core","action":"sleep","input":{"ms":10000}}]}`))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("intake: %d, %v", status, err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if j, _ := apiA.job(t, id); j.Status == jobs.StatusRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s not running within 5s:\n%s", id, a.output())
		}
	}
	time.Sleep(lease / 2) // a heartbeat or so: the lease was extended at least once
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.exited
	killed := time.Now()

	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var expires time.Time
	var jobStatus string
	if err := conn.QueryRow(t.Context(), "SELECT status, lease_expires_at FROM jobs WHERE id = $1", id).Scan(&jobStatus, &expires); err != nil {
		t.Fatalf("read the dead instance's lease: %v", err)
	}
	if jobStatus != jobs.StatusRunning || !expires.After(killed) {
		t.Fatalf("after the kill the job is %s with lease until %v; want running under a lease extended by heartbeats", jobStatus, expires)
	}

	b := startServe(t, filepath.Join(t.TempDir(), "b"), env...)
	apiB := newAPIClient(b)
	var j jobView
	for deadline := expires.Add(10*time.Second + 5*time.Second); ; time.Sleep(100 * time.Millisecond) {
		j, _ = apiB.job(t, id)
		if jobs.Terminal(j.Status) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s (attempt %d) 15s after its lease expired at %v:\n%s", id, j.Status, j.Attempts, expires, b.output())
		}
	}
	if j.Status != jobs.StatusSucceeded || j.Attempts != 2 {
		t.Fatalf("job ended %s after %d attempts, want succeeded after 2", j.Status, j.Attempts)
	}
	st, _ := j.step("nap")
	if st.StartedAt == nil || st.FinishedAt == nil {
		t.Fatalf("step record without times: %+v", st)
	}
	// The second attempt began after the lease expired (not before: the dead
	// worker's lease was respected), and soon after (rescue every second).
	takeover := st.StartedAt.Sub(expires)
	if takeover < 0 || takeover > 3*time.Second {
		t.Errorf("the second attempt started %v after the lease expired, want within 0–3s", takeover)
	}
	if q := apiB.queue(t); q.FinishedHere == nil || *q.FinishedHere != 1 {
		t.Errorf("instance B finished %v attempts, want 1", q.FinishedHere)
	}
	t.Logf("killed A with the job running; its lease expired %v after the kill; B started attempt 2 %v after expiry and finished it at %v",
		expires.Sub(killed).Round(time.Millisecond), takeover.Round(time.Millisecond), st.FinishedAt.Sub(expires).Round(time.Millisecond))
}
