package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/levqor/levqor/store/sqlite"
)

// The binary under test is stamped with these, as `make build` stamps releases.
const (
	testVersion = "9.8.7-test"
	testCommit  = "c0ffee1"
)

// levqorBin is the real binary, built once by TestMain.
var levqorBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "levqor-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	levqorBin = filepath.Join(dir, "levqor")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "go"
	}
	build := exec.Command(goTool, "build", "-o", levqorBin,
		"-ldflags", "-X github.com/levqor/levqor.Version="+testVersion+" -X github.com/levqor/levqor.Commit="+testCommit, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build levqor:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	printFaultTable(os.Stdout) // make test-faults: the table of the faults injected in this run
	os.RemoveAll(dir)
	os.Exit(code)
}

// cleanEnv is the test process's environment without any LEVQOR_* or PORT
// variable, plus the given ones: each run sees only the configuration it sets.
func cleanEnv(vars ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LEVQOR_") || strings.HasPrefix(kv, "PORT=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, vars...)
}

// runLevqor runs the binary to completion (bounded) and returns its output and exit code.
func runLevqor(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(levqorBin, args...)
	cmd.Dir, cmd.Env = dir, env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("levqor %v: %v", args, err)
		}
		return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("levqor %v did not finish in 30s; stdout:\n%s\nstderr:\n%s", args, out.String(), errOut.String())
		return "", "", -1
	}
}

// server is a running `levqor serve` whose JSON log is read line by line.
type process struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{} // closed when the process has exited
	err    error         // the Wait result, set before exited is closed

	mu     sync.Mutex
	lines  []map[string]any
	raw    []string
	more   chan struct{} // signalled on every new line
	stderr bytes.Buffer
}

// startServe starts `levqor serve` on 127.0.0.1:0 over dataDir and waits for its
// "listening" line, which gives the address.
func startServe(t *testing.T, dataDir string, vars ...string) *process {
	t.Helper()
	s := &process{exited: make(chan struct{}), more: make(chan struct{}, 1)}
	s.cmd = exec.Command(levqorBin, "serve")
	s.cmd.Env = cleanEnv(append([]string{"LEVQOR_ADDR=127.0.0.1:0", "LEVQOR_DATA_DIR=" + dataDir}, vars...)...)
	s.cmd.Stderr = &lockedWriter{mu: &s.mu, w: &s.stderr}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var m map[string]any
			_ = json.Unmarshal(sc.Bytes(), &m) // a non-JSON line is kept raw and fails checks that need it
			s.mu.Lock()
			s.raw = append(s.raw, sc.Text())
			s.lines = append(s.lines, m)
			s.mu.Unlock()
			select {
			case s.more <- struct{}{}:
			default:
			}
		}
	}()
	go func() {
		<-scanned // Wait closes the pipe: read everything first
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
	listening := s.waitLog(t, "listening", 20*time.Second)
	s.addr, _ = listening["addr"].(string)
	if _, port, err := net.SplitHostPort(s.addr); err != nil || port == "0" {
		t.Fatalf("listening line %v has no usable addr", listening)
	}
	return s
}

// lockedWriter serialises writes into a buffer shared with readers.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// logIndex returns the index of the first log line matching pred, or -1.
func (s *process) logIndex(pred func(map[string]any) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, l := range s.lines {
		if l != nil && pred(l) {
			return i
		}
	}
	return -1
}

func msgIs(msg string) func(map[string]any) bool {
	return func(l map[string]any) bool { return l["msg"] == msg }
}

// waitLog waits for a line with the given msg and returns it.
func (s *process) waitLog(t *testing.T, msg string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if i := s.logIndex(msgIs(msg)); i >= 0 {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.lines[i]
		}
		select {
		case <-s.more:
		case <-s.exited:
			if s.logIndex(msgIs(msg)) < 0 {
				t.Fatalf("levqor exited (%v) before logging %q:\n%s", s.err, msg, s.output())
			}
		case <-deadline:
			t.Fatalf("no %q log line in %v:\n%s", msg, timeout, s.output())
		}
	}
}

func (s *process) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "stdout:\n" + strings.Join(s.raw, "\n") + "\nstderr:\n" + s.stderr.String()
}

func (s *process) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + s.addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// TestGracefulShutdown sends SIGTERM while a request is in flight: an upsert whose
// JSON body arrives slowly, so the server is inside the request (reading its
// body) when the signal lands. The request must still get its normal answer and
// its write must persist; new connections must be refused at once; the process
// must log "shutting down" then "stopped" and exit 0.
func TestGracefulShutdown(t *testing.T) {
	const adminKey = "graceful-shutdown-admin-key-0123456789"
	dataDir := filepath.Join(t.TempDir(), "data")
	s := startServe(t, dataDir, "LEVQOR_API_KEYS="+adminKey, "LEVQOR_SHUTDOWN_TIMEOUT=20s")
	if status, body := s.get(t, "/health"); status != http.StatusOK {
		t.Fatalf("GET /health before the test: %d %s", status, body)
	}

	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	writeChunk := func(p string) {
		t.Helper()
		if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(p), p); err != nil {
			t.Fatalf("write body chunk: %v", err)
		}
	}
	if _, err := io.WriteString(conn, "POST /api/v1/users HTTP/1.1\r\nHost: levqor.test\r\n"+
		"X-Api-Key: "+adminKey+"\r\nX-Request-ID: in-flight-1\r\nContent-Type: application/json\r\n"+
		"Transfer-Encoding: chunked\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	writeChunk(`{"email": "in-flight@example.com",`)
	time.Sleep(300 * time.Millisecond) // the server has the headers and waits for the body

	sent := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	s.waitLog(t, "shutting down", 5*time.Second)

	// New connections are refused while the in-flight request is still open.
	refused := false
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
			continue
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial after SIGTERM: %v, want connection refused", err)
		}
		refused = true
		break
	}
	if !refused {
		t.Fatal("new connections are still accepted 3s after SIGTERM")
	}
	select {
	case <-s.exited:
		t.Fatalf("levqor exited with a request in flight:\n%s", s.output())
	default:
	}

	// The rest of the body, slowly (~1 s), then the request ends.
	for range 5 {
		time.Sleep(200 * time.Millisecond)
		writeChunk("  ")
	}
	writeChunk(`"name": "In Flight"}`)
	if _, err := io.WriteString(conn, "0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the in-flight request got no response: %v\n%s", err, s.output())
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("the in-flight response body: %v", err)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("in-flight upsert: %d %s, want 201", resp.StatusCode, body)
	}
	var user struct{ ID, Email, Name string }
	if err := json.Unmarshal(body, &user); err != nil || user.Email != "in-flight@example.com" || user.Name != "In Flight" || user.ID == "" {
		t.Fatalf("in-flight upsert answered %s (%v)", body, err)
	}

	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("levqor still running 10s after its last request:\n%s", s.output())
	}
	if s.err != nil {
		t.Fatalf("levqor exited with %v, want 0:\n%s", s.err, s.output())
	}
	if took := time.Since(sent); took > 15*time.Second {
		t.Errorf("shutdown took %v", took)
	}

	// The log tells the story in order: shutting down, the in-flight request
	// finishing (so it really was in flight), stopped.
	down := s.logIndex(msgIs("shutting down"))
	inflight := s.logIndex(func(l map[string]any) bool { return l["msg"] == "request" && l["request_id"] == "in-flight-1" })
	stopped := s.logIndex(msgIs("stopped"))
	if down < 0 || inflight < 0 || stopped < 0 || !(down < inflight && inflight < stopped) {
		t.Fatalf("log order: shutting down at %d, in-flight request at %d, stopped at %d; want increasing:\n%s", down, inflight, stopped, s.output())
	}
	s.mu.Lock()
	line := s.lines[inflight]
	s.mu.Unlock()
	if line["status"] != float64(http.StatusCreated) || line["route"] != "/api/v1/users" {
		t.Errorf("in-flight access line %v", line)
	}

	// The acknowledged write is in the database after the stop.
	db, err := sqlite.Open(t.Context(), filepath.Join(dataDir, "levqor.db"))
	if err != nil {
		t.Fatalf("reopen the database after shutdown: %v", err)
	}
	defer db.Close()
	got, err := db.GetUserByEmail(t.Context(), "in-flight@example.com")
	if err != nil || got.ID != user.ID {
		t.Fatalf("the in-flight user after restart: %+v, %v; want id %s", got, err, user.ID)
	}
}

func TestBadConfigStopsStartup(t *testing.T) {
	cases := map[string]string{
		"LEVQOR_MAX_BODY_BYTES":   "abc",
		"LEVQOR_ADDR":             "nonsense",
		"LEVQOR_SHUTDOWN_TIMEOUT": "forever",
		"LEVQOR_LOG_LEVEL":        "loud",
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			env := cleanEnv("LEVQOR_DATA_DIR="+filepath.Join(dir, "data"), name+"="+value)
			if name != "LEVQOR_ADDR" {
				env = append(env, "LEVQOR_ADDR=127.0.0.1:0")
			}
			stdout, stderr, code := runLevqor(t, dir, env, "serve")
			if code == 0 {
				t.Fatalf("%s=%s: exit 0, want a failure", name, value)
			}
			if !strings.Contains(stderr, name) || !strings.Contains(stderr, value) {
				t.Errorf("%s=%s: stderr does not name the variable and its value:\n%s", name, value, stderr)
			}
			if strings.Contains(stdout, "listening") {
				t.Errorf("%s=%s: it started listening:\n%s", name, value, stdout)
			}
			if _, err := os.Stat(filepath.Join(dir, "data")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s=%s: the data dir was created (%v) despite the bad config", name, value, err)
			}
		})
	}
}

func TestMigrateEmptyDataDir(t *testing.T) {
	dir := t.TempDir() // LEVQOR_DATA_DIR unset: the default ./data, relative to the working directory
	stdout, stderr, code := runLevqor(t, dir, cleanEnv(), "migrate")
	if code != 0 {
		t.Fatalf("levqor migrate: exit %d\n%s", code, stderr)
	}
	if strings.TrimSpace(stdout) != "migrated sqlite database" {
		t.Errorf("stdout %q, want %q", stdout, "migrated sqlite database")
	}
	dbPath := filepath.Join(dir, "data", "levqor.db")
	if fi, err := os.Stat(dbPath); err != nil || fi.Size() == 0 {
		t.Fatalf("data/levqor.db: %v", err)
	}
	db, err := sqlite.Open(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ready(t.Context()); err != nil {
		t.Errorf("the migrated database is not ready: %v", err)
	}
	db.Close()
	// Again: a no-op that still succeeds.
	if stdout, stderr, code := runLevqor(t, dir, cleanEnv(), "migrate"); code != 0 || strings.TrimSpace(stdout) != "migrated sqlite database" {
		t.Errorf("second levqor migrate: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestVersion(t *testing.T) {
	want := fmt.Sprintf("levqor %s (commit %s, %s)", testVersion, testCommit, runtime.Version())
	for _, arg := range []string{"version", "--version"} {
		stdout, stderr, code := runLevqor(t, t.TempDir(), cleanEnv(), arg)
		if code != 0 || strings.TrimSpace(stdout) != want {
			t.Errorf("levqor %s: exit %d, stdout %q, want %q (stderr %q)", arg, code, stdout, want, stderr)
		}
	}
}

func TestSecondServeOnSameDataDirFails(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	first := startServe(t, dataDir)

	start := time.Now()
	env := cleanEnv("LEVQOR_ADDR=127.0.0.1:0", "LEVQOR_DATA_DIR="+dataDir)
	stdout, stderr, code := runLevqor(t, t.TempDir(), env, "serve")
	if code == 0 {
		t.Fatalf("the second levqor serve exited 0:\n%s", stdout)
	}
	if !strings.Contains(stderr, "in use") {
		t.Errorf("stderr does not say the database is in use:\n%s", stderr)
	}
	if strings.Contains(stdout, "listening") {
		t.Errorf("the second server started listening:\n%s", stdout)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the second serve took %v to fail; want it to fail fast", took)
	}

	// The first is unharmed and stops cleanly.
	if status, body := first.get(t, "/ready"); status != http.StatusOK {
		t.Errorf("the first server after the second's attempt: GET /ready %d %s", status, body)
	}
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("the first server did not stop:\n%s", first.output())
	}
	if first.err != nil {
		t.Errorf("the first server exited with %v:\n%s", first.err, first.output())
	}
}
