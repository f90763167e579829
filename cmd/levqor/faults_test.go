package main

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store/sqlite"
	"github.com/levqor/levqor/store/storetest"
)

// The fault-injection suite (make test-faults): each TestFault* starts real
// `levqor serve` processes on loopback, breaks a dependency under load and checks
// numbers — acknowledged jobs, lost jobs, answers by status and code, latency,
// recovery time — not logs. Each test adds one row per fault to the table that
// TestMain prints at the end (docs/reliability.md holds the latest).

// Limits the suite holds the service to.
const (
	// faultFullService is how soon after a fault ends every request must succeed again.
	faultFullService = 5 * time.Second
	// faultP99 bounds the p99 latency of intakes while Redis is hung or refusing:
	// a limiter call is bounded by LEVQOR_RATE_LIMIT_TIMEOUT (75 ms) and the breaker
	// stops calling a failing Redis, so no request may wait on it for long.
	faultP99 = 500 * time.Millisecond
)

// faultsOn skips the test unless LEVQOR_FAULTS is set (make test-faults).
func faultsOn(t *testing.T) {
	t.Helper()
	if os.Getenv("LEVQOR_FAULTS") == "" {
		t.Skip("fault-injection suite: set LEVQOR_FAULTS=1 (make test-faults)")
	}
}

// faultRow is one line of the suite's table.
type faultRow struct {
	Fault    string
	Acked    int
	Lost     int
	Answers  map[string]int // non-2xx answers during the fault, by "status code"
	Recovery time.Duration  // fault end (or restart) → full service
	Note     string
}

var (
	faultRowsMu sync.Mutex
	faultRows   []faultRow
)

func addFaultRow(t *testing.T, r faultRow) {
	t.Helper()
	t.Logf("fault row: %s", r.markdown())
	faultRowsMu.Lock()
	faultRows = append(faultRows, r)
	faultRowsMu.Unlock()
}

func (r faultRow) markdown() string {
	var answers []string
	for k, n := range r.Answers {
		answers = append(answers, fmt.Sprintf("%s ×%d", k, n))
	}
	sort.Strings(answers)
	a := strings.Join(answers, ", ")
	if a == "" {
		a = "none"
	}
	return fmt.Sprintf("| %s | %d | %d | %s | %.2f | %s |", r.Fault, r.Acked, r.Lost, a, r.Recovery.Seconds(), r.Note)
}

// printFaultTable writes the table of the rows recorded in this run (none: nothing).
func printFaultTable(w io.Writer) {
	faultRowsMu.Lock()
	defer faultRowsMu.Unlock()
	if len(faultRows) == 0 {
		return
	}
	fmt.Fprintln(w, "\nFAULT TABLE")
	fmt.Fprintln(w, "| fault | acknowledged | lost | non-2xx answers during the fault | recovery (s) | notes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range faultRows {
		fmt.Fprintln(w, r.markdown())
	}
}

// answer is one intake's outcome as the load generator saw it.
type answer struct {
	at      time.Time
	latency time.Duration
	status  int    // 0: transport error
	code    string // the problem's code, or the transport error
	retry   string // Retry-After
	jobID   string // on 202
}

// intakeLoad submits small jobs from several goroutines until stopped and keeps
// every answer.
type intakeLoad struct {
	api  *apiClient
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	mu      sync.Mutex
	answers []answer
}

// faultJob is a short job: an echo and a pause, so some jobs are running at any moment.
const faultJob = `{"workflow":"faults","payload":{"n":1},"steps":[{"id":"echo","connector":"core","action":"echo","input":{"n":"{{payload.n}}"}},{"id":"nap","connector":"core","action":"sleep","input":{"ms":20}}]}`

func startIntakeLoad(api *apiClient, workers int, pace time.Duration) *intakeLoad {
	l := &intakeLoad{api: api, stop: make(chan struct{})}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				a := l.api.intake()
				l.mu.Lock()
				l.answers = append(l.answers, a)
				l.mu.Unlock()
				if a.status == 0 {
					time.Sleep(10 * time.Millisecond) // the server is down: do not spin
				}
				time.Sleep(pace)
			}
		}()
	}
	return l
}

// halt stops the load and waits for the requests under way.
func (l *intakeLoad) halt() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// between returns the answers to requests sent in [from, to).
func (l *intakeLoad) between(from, to time.Time) []answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []answer
	for _, a := range l.answers {
		if !a.at.Before(from) && a.at.Before(to) {
			out = append(out, a)
		}
	}
	return out
}

// acked returns the ids of every job acknowledged with 202.
func (l *intakeLoad) acked() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for _, a := range l.answers {
		if a.status == http.StatusAccepted {
			ids = append(ids, a.jobID)
		}
	}
	return ids
}

// acceptedIDs returns the job ids of the 202 answers.
func acceptedIDs(as []answer) []string {
	var ids []string
	for _, a := range as {
		if a.status == http.StatusAccepted {
			ids = append(ids, a.jobID)
		}
	}
	return ids
}

// intake posts faultJob and returns what came back.
func (c *apiClient) intake() answer {
	a := answer{at: time.Now()}
	req, _ := http.NewRequest(http.MethodPost, c.base+"/api/v1/intake", strings.NewReader(faultJob))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", jobsTestKey)
	resp, err := c.http.Do(req)
	a.latency = time.Since(a.at)
	if err != nil {
		a.code = "transport error"
		return a
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a.status, a.retry = resp.StatusCode, resp.Header.Get("Retry-After")
	var body struct {
		JobID string `json:"job_id"`
		Code  string `json:"code"`
	}
	_ = json.Unmarshal(b, &body)
	a.jobID, a.code = body.JobID, body.Code
	return a
}

// tally counts answers that are not 2xx by "status code" and returns the p99 latency.
func tally(as []answer) (non2xx map[string]int, ok int, p99 time.Duration) {
	non2xx = map[string]int{}
	var lat []time.Duration
	for _, a := range as {
		lat = append(lat, a.latency)
		if a.status >= 200 && a.status < 300 {
			ok++
			continue
		}
		non2xx[strings.TrimSpace(fmt.Sprintf("%d %s", a.status, a.code))]++
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		p99 = lat[(len(lat)*99+99)/100-1] // the nearest-rank 99th percentile
	}
	return non2xx, ok, p99
}

// readyStatus returns the status of GET /ready (0 when the server does not answer).
func readyStatus(addr string) int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/ready")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitReady polls /ready every 10 ms until it answers 200 and returns how long that took.
func waitReady(t *testing.T, addr string, since time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(10 * time.Millisecond) {
		if readyStatus(addr) == http.StatusOK {
			return time.Since(since)
		}
		if time.Now().After(deadline) {
			t.Fatalf("/ready not 200 within %v", timeout)
		}
	}
}

// fullService waits until intakes succeed again after a fault ended at `since`: ten
// 202s in a row. It returns how long after `since` that run began, and fails the
// test when it takes longer than faultFullService.
func fullService(t *testing.T, api *apiClient, since time.Time) time.Duration {
	t.Helper()
	var runStart time.Time
	run := 0
	for time.Since(since) < faultFullService+2*time.Second {
		a := api.intake()
		if a.status == http.StatusAccepted {
			if run == 0 {
				runStart = a.at
			}
			if run++; run == 10 {
				d := runStart.Sub(since)
				if d > faultFullService {
					t.Errorf("full service %v after the fault, want within %v", d, faultFullService)
				}
				return d
			}
			continue
		}
		run = 0
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no full service within %v of the fault's end", faultFullService+2*time.Second)
	return 0
}

// lostJobs waits for the queue to drain and returns how many acknowledged jobs are
// missing or did not succeed (reporting the first few).
func lostJobs(t *testing.T, api *apiClient, ids []string) int {
	t.Helper()
	lost, _ := checkJobs(t, api, ids)
	return lost
}

// checkJobs is lostJobs that also counts the jobs that took more than one attempt
// (running when a process died, run again after it).
func checkJobs(t *testing.T, api *apiClient, ids []string) (lost, rerun int) {
	t.Helper()
	api.waitDrained(t, 60*time.Second)
	for _, id := range ids {
		j, status := api.job(t, id)
		if status != http.StatusOK || j.Status != jobs.StatusSucceeded {
			if lost++; lost <= 5 {
				t.Errorf("acknowledged job %s: GET %d, status %q; want 200 succeeded", id, status, j.Status)
			}
		}
		if j.Attempts > 1 {
			rerun++
		}
	}
	return lost, rerun
}

// freePort returns a loopback TCP port free at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// faultClient is an apiClient with a short timeout: a request hung by a fault
// counts as a transport error instead of stalling the load.
func faultClient(p *process) *apiClient {
	c := newAPIClient(p)
	c.http.Timeout = 5 * time.Second
	return c
}

// TestFaultKill SIGKILLs `levqor serve` under intake load on SQLite and on
// PostgreSQL, restarts it on the same database and checks that every job
// acknowledged with 202 exists and ends succeeded. Recovery is restart → /ready 200.
func TestFaultKill(t *testing.T) {
	faultsOn(t)
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			env := jobsTestEnv("LEVQOR_JOB_LEASE=3s", "LEVQOR_WORKERS=8")
			if engine == "postgres" {
				env = append(env, "LEVQOR_DATABASE_URL="+storetest.PostgresURL(t))
			}
			dataDir := filepath.Join(t.TempDir(), "data")
			first := startServe(t, dataDir, env...)
			load := startIntakeLoad(faultClient(first), 8, 5*time.Millisecond)
			time.Sleep(1500 * time.Millisecond)
			if err := first.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			<-first.exited
			killedAt := time.Now()
			load.halt()
			answers := load.between(time.Time{}, killedAt)
			non2xx, _, _ := tally(answers)
			delete(non2xx, "0 transport error") // cut off by the kill: never acknowledged
			if len(non2xx) > 0 {
				t.Errorf("answers other than 202 before the kill: %v", non2xx)
			}

			restarted := time.Now()
			second := startServe(t, dataDir, env...)
			recovery := waitReady(t, second.addr, restarted, 30*time.Second)
			ids := load.acked()
			if len(ids) < 50 {
				t.Fatalf("only %d intakes acknowledged before the kill", len(ids))
			}
			lost, rerun := checkJobs(t, newAPIClient(second), ids)
			if lost > 0 {
				t.Errorf("%d of %d acknowledged jobs lost or not succeeded", lost, len(ids))
			}
			if rerun == 0 {
				t.Errorf("no acknowledged job was running at the kill (none took a second attempt): the fault missed what it tests")
			}
			addFaultRow(t, faultRow{Fault: "SIGKILL under intake load, " + engine, Acked: len(ids), Lost: lost,
				Answers: non2xx, Recovery: recovery, Note: fmt.Sprintf("recovery: restart → /ready 200; %d jobs running at the kill ran again", rerun)})
		})
	}
}

// redisServer is a private redis-server on its own loopback port.
type redisServer struct {
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// startRedis starts redis-server on port (0: a free one) and waits for it to answer.
func startRedis(t *testing.T, port int) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed: the Redis faults need a private one")
	}
	if port == 0 {
		port = freePort(t)
	}
	r := &redisServer{port: port, done: make(chan struct{})}
	r.cmd = exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(r.kill)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d did not listen within 10s", port)
		}
	}
}

func (r *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

// kill ends the server (continuing it first if it was stopped) and waits for it.
func (r *redisServer) kill() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGCONT)
	_ = r.cmd.Process.Kill()
	<-r.done
}

// TestFaultRedis runs `levqor serve` with its rate limits in a private Redis and,
// under intake load, hangs Redis (SIGSTOP for 3 s, then SIGCONT), then makes it
// refuse connections (killed for 3 s, then restarted on its port), once failing
// open and once failing closed. During each fault intakes keep a p99 under
// faultP99; failing open every intake is still accepted, failing closed every
// refusal is 503 unavailable with Retry-After; within faultFullService of the
// fault's end every intake is accepted again.
func TestFaultRedis(t *testing.T) {
	faultsOn(t)
	const faultFor = 3 * time.Second
	for _, mode := range []string{"open", "closed"} {
		t.Run("fail-"+mode, func(t *testing.T) {
			rd := startRedis(t, 0)
			p := startServe(t, filepath.Join(t.TempDir(), "data"), jobsTestEnv("LEVQOR_REDIS_URL="+rd.url(), "LEVQOR_RATE_LIMIT_FAIL="+mode)...)
			api := faultClient(p)
			waitReady(t, p.addr, time.Now(), 10*time.Second)
			load := startIntakeLoad(api, 4, 10*time.Millisecond)
			defer load.halt()
			time.Sleep(500 * time.Millisecond)

			var rows []faultRow
			var windows [][]string // the ids acknowledged during each fault
			for _, fault := range []string{"hung", "refusing"} {
				start := time.Now()
				var readyDuring int
				if fault == "hung" {
					if err := rd.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
						t.Fatal(err)
					}
				} else {
					rd.kill()
				}
				time.Sleep(faultFor / 2)
				readyDuring = readyStatus(p.addr)
				time.Sleep(faultFor / 2)
				end := time.Now()
				if fault == "hung" {
					if err := rd.cmd.Process.Signal(syscall.SIGCONT); err != nil {
						t.Fatal(err)
					}
				} else {
					rd = startRedis(t, rd.port)
				}
				during := load.between(start, end)
				non2xx, ok, p99 := tally(during)
				if len(during) < 20 {
					t.Fatalf("Redis %s: only %d intakes answered in %v", fault, len(during), faultFor)
				}
				if p99 > faultP99 {
					t.Errorf("Redis %s, fail %s: p99 %v during the fault, want ≤ %v", fault, mode, p99, faultP99)
				}
				avail := float64(ok) / float64(len(during))
				switch mode {
				case "open":
					if ok != len(during) {
						t.Errorf("Redis %s, fail open: %d of %d intakes refused during the fault (%v), want none", fault, len(during)-ok, len(during), non2xx)
					}
					if readyDuring != http.StatusOK {
						t.Errorf("Redis %s, fail open: /ready %d during the fault, want 200 (the limiter does not need Redis)", fault, readyDuring)
					}
				case "closed":
					for _, a := range during {
						if a.status != http.StatusAccepted && (a.status != http.StatusServiceUnavailable || a.code != "unavailable" || a.retry == "") {
							t.Errorf("Redis %s, fail closed: %d %q Retry-After %q, want 503 unavailable with Retry-After", fault, a.status, a.code, a.retry)
							break
						}
					}
					if readyDuring != http.StatusServiceUnavailable {
						t.Errorf("Redis %s, fail closed: /ready %d during the fault, want 503", fault, readyDuring)
					}
				}
				recovery := fullService(t, api, end)
				rows = append(rows, faultRow{Fault: fmt.Sprintf("Redis %s %v, fail %s", fault, faultFor, mode), Acked: ok, Answers: non2xx, Recovery: recovery,
					Note: fmt.Sprintf("during: %.1f%% accepted, p99 %v, /ready %d", 100*avail, p99.Round(time.Millisecond), readyDuring)})
				windows = append(windows, acceptedIDs(during))
			}
			load.halt()
			for i, r := range rows {
				if r.Lost = lostJobs(t, api, windows[i]); r.Lost > 0 {
					t.Errorf("%s: %d of %d jobs acknowledged during the fault lost or not succeeded", r.Fault, r.Lost, r.Acked)
				}
				addFaultRow(t, r)
			}
		})
	}
}

// Sizes of the SQLite storage-full fault: a tmpfs small enough to fill in a moment,
// larger than the 16 MiB of free space /ready requires so it starts ready.
const faultTmpfsSize = "40m"

// fill writes a file into dir until the filesystem is full and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, size := range []int{1 << 20, 4 << 10, 512} {
		buf := make([]byte, size)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill %s: %v", dir, err)
				}
				break
			}
		}
	}
	return path
}

// TestFaultSQLiteFull runs `levqor serve` on SQLite in a small tmpfs, fills the
// filesystem under intake load, then frees it. While full: no 500 (only 507
// storage_full or 503 unavailable, with Retry-After), /ready 503; after: full
// service within faultFullService, every acknowledged job succeeded, and
// integrity_check clean. It needs root to mount the tmpfs and skips (saying so) without.
func TestFaultSQLiteFull(t *testing.T) {
	faultsOn(t)
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED LOUDLY: the SQLite storage-full fault mounts a tmpfs and needs root; run make test-faults as root to cover it")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+faultTmpfsSize, "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("SKIPPED LOUDLY: cannot mount a tmpfs for the storage-full fault: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })
	dataDir := filepath.Join(mnt, "data")
	env := jobsTestEnv("LEVQOR_JOB_LEASE=3s")
	p := startServe(t, dataDir, env...)
	api := faultClient(p)
	waitReady(t, p.addr, time.Now(), 10*time.Second)
	load := startIntakeLoad(api, 4, 10*time.Millisecond)
	defer load.halt()
	time.Sleep(500 * time.Millisecond)

	start := time.Now()
	filler := fill(t, mnt)
	time.Sleep(time.Second + 100*time.Millisecond) // past the /ready cache
	readyDuring := readyStatus(p.addr)
	time.Sleep(time.Second)
	end := time.Now()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	during := load.between(start, end)
	non2xx, ok, p99 := tally(during)
	for _, a := range during {
		full := a.status == http.StatusInsufficientStorage && a.code == "storage_full"
		unavailable := a.status == http.StatusServiceUnavailable && a.code == "unavailable"
		if a.status != http.StatusAccepted && (!(full || unavailable) || a.retry == "") {
			t.Errorf("disk full: %d %q Retry-After %q, want 202, or 507 storage_full / 503 unavailable with Retry-After", a.status, a.code, a.retry)
			break
		}
	}
	if non2xx["507 storage_full"]+non2xx["503 unavailable"] == 0 {
		t.Errorf("no intake was refused while the disk was full (%d accepted): the fault did not bite", ok)
	}
	if readyDuring != http.StatusServiceUnavailable {
		t.Errorf("/ready %d with the disk full, want 503", readyDuring)
	}
	recovery := fullService(t, api, end)
	if d := waitReady(t, p.addr, end, faultFullService); d > faultFullService {
		t.Errorf("/ready 200 %v after space returned, want within %v", d, faultFullService)
	}
	load.halt()
	ids := load.acked()
	lost := lostJobs(t, api, ids)
	if lost > 0 {
		t.Errorf("%d of %d acknowledged jobs lost or not succeeded", lost, len(ids))
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	ro, err := sql.Open("sqlite", sqlite.DSN(filepath.Join(dataDir, "levqor.db"), true))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var check string
	if err := ro.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check after the fault: %q %v", check, err)
	}
	addFaultRow(t, faultRow{Fault: "SQLite disk full (tmpfs " + faultTmpfsSize + ") 2s", Acked: len(ids), Lost: lost, Answers: non2xx, Recovery: recovery,
		Note: fmt.Sprintf("during: %d accepted, p99 %v, /ready %d; integrity_check %s", ok, p99.Round(time.Millisecond), readyDuring, check)})
}

// pgCluster is a private PostgreSQL cluster (initdb + pg_ctl as the postgres user)
// on its own loopback port, so the test can stop and start it.
type pgCluster struct {
	bin, dir string
	port     int
}

// startPGCluster creates and starts a cluster, skipping when PostgreSQL's server
// binaries (/usr/lib/postgresql/*/bin) or the postgres user are missing.
func startPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Skip("SKIPPED: no PostgreSQL server binaries in /usr/lib/postgresql/*/bin for a private cluster")
	}
	sort.Strings(bins)
	pg := &pgCluster{bin: filepath.Dir(bins[len(bins)-1]), port: freePort(t)}
	dir, err := os.MkdirTemp("", "levqor-pg-")
	if err != nil {
		t.Fatal(err)
	}
	pg.dir = dir
	t.Cleanup(func() {
		_ = pg.ctl("stop", "-m", "immediate", "-w")
		os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("SKIPPED: running as root without a postgres user for the private cluster: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := pg.run("initdb", "-D", pg.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	if out, err := pg.start(); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
	return pg
}

func (pg *pgCluster) data() string { return filepath.Join(pg.dir, "data") }

func (pg *pgCluster) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
}

// run runs one of the cluster's binaries, as the postgres user when we are root.
func (pg *pgCluster) run(name string, args ...string) ([]byte, error) {
	bin := filepath.Join(pg.bin, name)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	return cmd.CombinedOutput()
}

func (pg *pgCluster) ctl(args ...string) error {
	out, err := pg.run("pg_ctl", append([]string{"-D", pg.data()}, args...)...)
	if err != nil {
		return fmt.Errorf("pg_ctl %v: %w\n%s", args, err, out)
	}
	return nil
}

func (pg *pgCluster) start() ([]byte, error) {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", pg.port, pg.dir)
	return pg.run("pg_ctl", "-D", pg.data(), "-l", filepath.Join(pg.dir, "log"), "-o", opts, "-w", "-t", "30", "start")
}

// TestFaultPostgresDown stops a private PostgreSQL for 3 s under intake load and
// starts it again: while it is down every refused intake is 503 unavailable with
// Retry-After (no 500, no hang), /ready is 503; within faultFullService of the
// restart every intake is accepted again and no acknowledged job is lost. Then it
// stops PostgreSQL once more and sends SIGTERM: the process exits within
// LEVQOR_SHUTDOWN_TIMEOUT (plus a second of slack).
func TestFaultPostgresDown(t *testing.T) {
	faultsOn(t)
	const (
		downFor         = 3 * time.Second
		shutdownTimeout = 3 * time.Second
	)
	pg := startPGCluster(t)
	p := startServe(t, filepath.Join(t.TempDir(), "data"), jobsTestEnv("LEVQOR_DATABASE_URL="+pg.url(),
		"LEVQOR_JOB_LEASE=3s", "LEVQOR_SHUTDOWN_TIMEOUT="+shutdownTimeout.String())...)
	api := faultClient(p)
	waitReady(t, p.addr, time.Now(), 10*time.Second)
	load := startIntakeLoad(api, 4, 10*time.Millisecond)
	defer load.halt()
	time.Sleep(500 * time.Millisecond)

	start := time.Now()
	if err := pg.ctl("stop", "-m", "fast", "-w"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(downFor / 2)
	readyDuring := readyStatus(p.addr)
	time.Sleep(downFor / 2)
	end := time.Now() // recovery counts from the restart command, through PostgreSQL's start-up
	if out, err := pg.start(); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
	during := load.between(start, end)
	non2xx, ok, p99 := tally(during)
	for _, a := range during {
		if a.status != http.StatusAccepted && (a.status != http.StatusServiceUnavailable || a.code != "unavailable" || a.retry == "") {
			t.Errorf("PostgreSQL down: %d %q Retry-After %q, want 503 unavailable with Retry-After", a.status, a.code, a.retry)
			break
		}
	}
	if non2xx["503 unavailable"] == 0 {
		t.Errorf("no intake refused while PostgreSQL was down (%d accepted): the fault did not bite", ok)
	}
	if readyDuring != http.StatusServiceUnavailable {
		t.Errorf("/ready %d with PostgreSQL down, want 503", readyDuring)
	}
	recovery := fullService(t, api, end)
	load.halt()
	ids := load.acked()
	lost := lostJobs(t, api, ids)
	if lost > 0 {
		t.Errorf("%d of %d acknowledged jobs lost or not succeeded", lost, len(ids))
	}

	// SIGTERM during an outage with a job running: its completion cannot be saved
	// and the drain cannot reach the database, yet the process exits within its
	// shutdown timeout (the job is left to its lease).
	running, status, err := api.submit([]byte(`{"workflow":"faults-drain","payload":{},"steps":[{"id":"nap","connector":"core","action":"sleep","input":{"ms":1000}}]}`))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("intake of the running job: %d %v", status, err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if j, _ := api.job(t, running); j.Status == jobs.StatusRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s not running within 5s", running)
		}
	}
	if err := pg.ctl("stop", "-m", "fast", "-w"); err != nil {
		t.Fatal(err)
	}
	for range 20 { // requests during the outage, so the pool has failed connections
		api.intake()
	}
	termAt := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var exitIn time.Duration
	select {
	case <-p.exited:
		exitIn = time.Since(termAt)
	case <-time.After(shutdownTimeout + 10*time.Second):
		t.Fatalf("no exit %v after SIGTERM with PostgreSQL down", shutdownTimeout+10*time.Second)
	}
	if exitIn > shutdownTimeout+time.Second {
		t.Errorf("exited %v after SIGTERM with PostgreSQL down, want within LEVQOR_SHUTDOWN_TIMEOUT %v (+1s)", exitIn, shutdownTimeout)
	}
	addFaultRow(t, faultRow{Fault: fmt.Sprintf("PostgreSQL stopped %v (pg_ctl -m fast)", downFor), Acked: len(ids), Lost: lost, Answers: non2xx, Recovery: recovery,
		Note: fmt.Sprintf("during: %d accepted, p99 %v, /ready %d; SIGTERM while down: exit in %.2fs (timeout %v)", ok, p99.Round(time.Millisecond), readyDuring, exitIn.Seconds(), shutdownTimeout)})
}

// Limits of the connection-flood fault.
const (
	floodKeepAlive = 1000 // idle keep-alive connections, each after one request
	floodSlow      = 2000 // clients trickling their headers a line a second
	// floodP99 bounds the p99 latency of normal requests during the flood.
	floodP99 = 50 * time.Millisecond
	// floodRSS bounds the process's resident memory during the flood.
	floodRSS = 256 << 20
)

// rssBytes reads a process's resident set size from /proc.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("SKIPPED: no /proc to read memory from: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// TestFaultConnectionFlood holds floodKeepAlive idle keep-alive connections and
// floodSlow clients that send their headers a line a second against one `levqor
// serve`, and checks that normal requests (intakes and GET /health on their own
// connections) keep a p99 under floodP99 and that resident memory stays under floodRSS.
func TestFaultConnectionFlood(t *testing.T) {
	faultsOn(t)
	p := startServe(t, filepath.Join(t.TempDir(), "data"), jobsTestEnv()...)
	api := faultClient(p)
	waitReady(t, p.addr, time.Now(), 10*time.Second)
	rssBefore := rssBytes(t, p.cmd.Process.Pid)

	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	dial := func(n int, prepare func(net.Conn) error) int {
		var wg sync.WaitGroup
		var failed atomic.Int64
		sem := make(chan struct{}, 64)
		for range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
				if err == nil {
					err = prepare(c)
				}
				if err != nil {
					failed.Add(1)
					if c != nil {
						c.Close()
					}
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}()
		}
		wg.Wait()
		return int(failed.Load())
	}
	keepAliveFailed := dial(floodKeepAlive, func(c net.Conn) error {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: flood\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		_ = c.SetDeadline(time.Time{})
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /health: %d", resp.StatusCode)
		}
		return nil
	})
	if keepAliveFailed > 0 {
		t.Errorf("%d of %d keep-alive connections failed their first request", keepAliveFailed, floodKeepAlive)
	}
	var slow []net.Conn
	slowFailed := dial(floodSlow, func(c net.Conn) error {
		_, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: flood\r\n")
		if err == nil {
			mu.Lock()
			slow = append(slow, c)
			mu.Unlock()
		}
		return err
	})
	if slowFailed > 0 {
		t.Errorf("%d of %d slow clients could not connect", slowFailed, floodSlow)
	}
	stopTrickle := make(chan struct{})
	var trickle sync.WaitGroup
	trickle.Add(1)
	go func() { // one more header line a second on every slow connection
		defer trickle.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopTrickle:
				return
			case <-tick.C:
				mu.Lock()
				cs := slices.Clone(slow)
				mu.Unlock()
				for _, c := range cs {
					_ = c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
					_, _ = io.WriteString(c, "X-Slow: 1\r\n")
				}
			}
		}
	}()

	// Normal traffic during the flood: intakes and health checks, for 3 s.
	start := time.Now()
	var lat []time.Duration
	failures := map[string]int{}
	accepted := 0
	var rssPeak int64
	health := &http.Client{Timeout: 5 * time.Second}
	for i := 0; time.Since(start) < 3*time.Second; i++ {
		var d time.Duration
		if i%2 == 0 {
			a := api.intake()
			d = a.latency
			if a.status == http.StatusAccepted {
				accepted++
			} else {
				failures[fmt.Sprintf("intake %d %s", a.status, a.code)]++
			}
		} else {
			t0 := time.Now()
			resp, err := health.Get("http://" + p.addr + "/health")
			d = time.Since(t0)
			if err != nil {
				failures["health transport error"]++
			} else {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failures[fmt.Sprintf("health %d", resp.StatusCode)]++
				}
			}
		}
		lat = append(lat, d)
		if i%50 == 0 {
			rssPeak = max(rssPeak, rssBytes(t, p.cmd.Process.Pid))
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stopTrickle)
	trickle.Wait()
	rssPeak = max(rssPeak, rssBytes(t, p.cmd.Process.Pid))
	slices.Sort(lat)
	p99 := lat[(len(lat)*99+99)/100-1]
	if p99 > floodP99 {
		t.Errorf("p99 of normal requests during the flood: %v, want ≤ %v", p99, floodP99)
	}
	if len(failures) > 0 {
		t.Errorf("normal requests failed during the flood: %v", failures)
	}
	if rssPeak > floodRSS {
		t.Errorf("resident memory %d MiB during the flood, want ≤ %d MiB", rssPeak>>20, floodRSS>>20)
	}
	// The keep-alive connections still serve.
	mu.Lock()
	sample := conns[0]
	mu.Unlock()
	_ = sample.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(sample, "GET /health HTTP/1.1\r\nHost: flood\r\n\r\n"); err != nil {
		t.Errorf("a keep-alive connection after the flood: %v", err)
	} else if resp, err := http.ReadResponse(bufio.NewReader(sample), nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("a keep-alive connection after the flood: %v %v", resp, err)
	}
	addFaultRow(t, faultRow{Fault: fmt.Sprintf("%d keep-alive + %d slow clients, 3s", floodKeepAlive, floodSlow), Acked: accepted, Answers: failures,
		Note: fmt.Sprintf("normal requests p99 %v (limit %v); RSS %d → %d MiB (limit %d)", p99.Round(100*time.Microsecond), floodP99, rssBefore>>20, rssPeak>>20, floodRSS>>20)})
}
