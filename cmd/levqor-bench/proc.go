package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	readyTimeout = 10 * time.Second // longest wait for a server to answer 200
	pollEvery    = time.Millisecond // pause between readiness attempts
	stopTimeout  = 10 * time.Second // longest wait after SIGTERM before SIGKILL
)

// server is a child process serving HTTP on a loopback address. Its stdout is a
// pipe that is read and discarded (its first line is kept), as a log collector would.
type server struct {
	name    string
	addr    string
	pid     int
	started time.Time // just before exec

	firstLine   []byte    // the first stdout line, once firstLineAt is set
	firstLineAt time.Time // when that line arrived
	lineSeen    chan struct{}

	stderr *tailBuffer
	exited chan struct{} // closed once the process has exited and waitErr is set
	cmd    *exec.Cmd
	// waitErr is written before exited is closed and only read after.
	waitErr error
}

// levqorEnv is added last to every levqor's environment (-levqor-env), say to
// serve profiles while a scenario runs.
var levqorEnv []string

// startLevqor starts `bin serve` on a free loopback port with dataDir as its data
// directory and env (NAME=value), then levqorEnv, added to its environment.
func startLevqor(bin, dataDir string, env ...string) (*server, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	env = append(append([]string{"LEVQOR_ADDR=" + addr, "LEVQOR_DATA_DIR=" + dataDir, "LEVQOR_LOG_LEVEL=info"}, env...), levqorEnv...)
	return startServer("levqor", addr, bin, []string{"serve"}, env...)
}

// startBare starts this program in the hidden bare-server mode named by mode
// (bareHealthFlag or bareUserFlag), with args, on a free loopback port.
func startBare(self, mode string, args ...string) (*server, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	return startServer("bare", addr, self, append([]string{mode, "-addr", addr}, args...))
}

// startServer execs bin with args and childEnv(env).
func startServer(name, addr, bin string, args []string, env ...string) (*server, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv(env...)
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	s := &server{name: name, addr: addr, cmd: cmd, stderr: &tailBuffer{max: 8 << 10},
		lineSeen: make(chan struct{}), exited: make(chan struct{})}
	cmd.Stdout = w
	cmd.Stderr = s.stderr
	s.started = time.Now()
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	w.Close()
	s.pid = cmd.Process.Pid
	go s.drain(r)
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	return s, nil
}

// childEnv is the environment of every program the bench starts: this one minus
// any LEVQOR_* or PORT setting (so a developer's shell cannot redirect it, say to
// PostgreSQL), plus env; GOGC, GOMAXPROCS and friends pass through on purpose.
func childEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LEVQOR_") && !strings.HasPrefix(kv, "PORT=") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

// drain keeps the "listening" line (or, if the pipe closes first, the last line) and
// discards the rest until the pipe closes. Lines before it (first-start notices such as
// a generated key) are skipped.
func (s *server) drain(r *os.File) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	var err error
	for {
		line, err = br.ReadSlice('\n')
		if err != nil || bytes.Contains(line, []byte(`"msg":"listening"`)) {
			break
		}
	}
	s.firstLine, s.firstLineAt = append([]byte(nil), line...), time.Now()
	close(s.lineSeen)
	if err == nil {
		_, _ = io.Copy(io.Discard, br)
	}
}

// listeningLine returns the startup_ms field of levqor's "listening" log line,
// and how long after exec that line arrived.
func (s *server) listeningLine() (startupMS float64, arrived time.Duration, err error) {
	select {
	case <-s.lineSeen:
	case <-time.After(time.Second):
		return 0, 0, fmt.Errorf("%s wrote no log line", s.name)
	}
	var line struct {
		Msg       string   `json:"msg"`
		StartupMS *float64 `json:"startup_ms"`
	}
	if err := json.Unmarshal(s.firstLine, &line); err != nil || line.Msg != "listening" || line.StartupMS == nil {
		return 0, 0, fmt.Errorf("%s: log line is not {\"msg\":\"listening\",\"startup_ms\":…}: %.200q", s.name, s.firstLine)
	}
	return *line.StartupMS, s.firstLineAt.Sub(s.started), nil
}

// waitReady polls GET path on a fresh connection every pollEvery until it answers
// 200, and returns the time since exec. It fails at once if the process exits.
func (s *server) waitReady(ctx context.Context, path string) (time.Duration, error) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	defer client.CloseIdleConnections()
	url := "http://" + s.addr + path
	deadline := s.started.Add(readyTimeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(s.started), nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-s.exited:
			return 0, fmt.Errorf("%s exited before GET %s answered 200: %v%s", s.name, path, s.waitErr, s.stderr)
		case <-ctx.Done():
			return 0, ctx.Err()
		default:
		}
		time.Sleep(pollEvery)
	}
	return 0, fmt.Errorf("%s: GET %s did not answer 200 within %s (last: %s)", s.name, path, readyTimeout, last)
}

// stop sends SIGTERM and waits for the process to exit, killing it after
// stopTimeout. It returns an error if the process did not exit cleanly.
// Calling it again returns the same result without signalling.
func (s *server) stop() error {
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
			_ = s.cmd.Process.Kill()
			<-s.exited
			return fmt.Errorf("%s did not stop within %s of SIGTERM; killed", s.name, stopTimeout)
		}
	}
	if s.waitErr != nil {
		return fmt.Errorf("%s exited: %v%s", s.name, s.waitErr, s.stderr)
	}
	return nil
}

// exitErr describes how s exited, or returns nil while it runs.
func (s *server) exitErr() error {
	select {
	case <-s.exited:
	default:
		return nil
	}
	how := "exit status 0"
	if s.waitErr != nil {
		how = s.waitErr.Error()
	}
	return fmt.Errorf("%s (pid %d) exited unasked: %s%s", s.name, s.pid, how, s.stderr)
}

// stopAll stops servers in order and returns their errors joined.
func stopAll(servers []*server) error {
	var errs []error
	for _, s := range servers {
		errs = append(errs, s.stop())
	}
	return errors.Join(errs...)
}

// startReady starts a server with start, adds it to *servers (for the caller's
// stopAll, ready or not) and waits until GET path answers.
func startReady(ctx context.Context, servers *[]*server, path string, start func() (*server, error)) (*server, error) {
	s, err := start()
	if err != nil {
		return nil, err
	}
	*servers = append(*servers, s)
	if _, err := s.waitReady(ctx, path); err != nil {
		return nil, err
	}
	return s, nil
}

// fetchBoth sends lr once to levqor and to the bare server and returns both bodies.
func fetchBoth(ctx context.Context, lev, bare *server, lr loadRequest) (levBody, bareBody []byte, err error) {
	if levBody, err = fetchOnce(ctx, lev.addr, lr); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", lev.name, err)
	}
	if bareBody, err = fetchOnce(ctx, bare.addr, lr); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", bare.name, err)
	}
	return levBody, bareBody, nil
}

// procStatusKB reads a kB field such as VmRSS from /proc/<pid>/status.
func procStatusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times; 100 on every Linux
// platform Go supports.
const clockTick = 10 * time.Millisecond

// procCPU returns the user+system CPU time of all threads of pid so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may contain spaces; fields resume after its ')'.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// selfCPU returns this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// freeLoopbackAddr returns 127.0.0.1:<port> for a port that was free a moment ago.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// String returns the kept bytes on a new line, or "" when there are none.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := strings.TrimSpace(string(t.b)); s != "" {
		return "\n" + s
	}
	return ""
}
