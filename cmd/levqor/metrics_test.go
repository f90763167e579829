package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape returns the value of every series in a /metrics answer, keyed by name{labels}
// as exposed.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsEndpoint: with LEVQOR_METRICS_ADDR, a real serve exposes /metrics on its own
// listener (not on the API's), and the series move with traffic: requests by route
// template (never the raw path), jobs enqueued and finished by workflow, attempt and
// queue-wait histograms, queue depth from the counters, rate-limit rejections, Go and
// process collectors. No job or owner id appears in any label.
func TestMetricsEndpoint(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	srv := startServe(t, dataDir, jobsTestEnv("LEVQOR_METRICS_ADDR=127.0.0.1:0", "LEVQOR_RATE_LIMIT_IP=3-M")...)
	line := srv.waitLog(t, "metrics listening", 5*time.Second)
	maddr, _ := line["addr"].(string)
	if maddr == "" || maddr == srv.addr {
		t.Fatalf("metrics addr %q (API on %s)", maddr, srv.addr)
	}
	if status, _ := srv.get(t, "/metrics"); status != http.StatusNotFound {
		t.Errorf("/metrics on the API listener: %d, want 404", status)
	}
	before := scrape(t, maddr)
	for _, name := range []string{`go_goroutines`, `process_resident_memory_bytes`, `levqor_jobs_queue_depth{status="queued"}`,
		`levqor_backups_total{result="ok"}`, `levqor_webhook_deliveries_total{outcome="delivered"}`} {
		if _, ok := before[name]; !ok {
			t.Errorf("series %s missing before any traffic", name)
		}
	}

	api := newAPIClient(srv)
	var ids []string
	for i := range 5 {
		body := fmt.Sprintf(`{"workflow":"metrics-e2e","payload":{"n":%d},"steps":[{"id":"echo","connector":"core","action":"echo","input":{"n":"{{payload.n}}"}}]}`, i)
		id, status, err := api.submit([]byte(body))
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("submit: %d %v", status, err)
		}
		ids = append(ids, id)
	}
	api.waitDrained(t, 20*time.Second)
	var view jobView
	if api.getJSON(t, "/api/v1/jobs/"+ids[0], &view) != http.StatusOK {
		t.Fatal("get job")
	}
	limited := 0
	for range 5 { // over LEVQOR_RATE_LIMIT_IP=3-M on a public, limited route
		if status, _ := srv.get(t, "/status"); status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited < 2 {
		t.Errorf("%d of 5 requests over a limit of 3 a minute were refused", limited)
	}
	srv.get(t, "/no/such/route/"+ids[1])

	after := scrape(t, maddr)
	moved := func(name string, by float64) {
		t.Helper()
		if d := after[name] - before[name]; d < by {
			t.Errorf("%s moved by %v, want at least %v (before %v, after %v)", name, d, by, before[name], after[name])
		}
	}
	moved(`levqor_jobs_enqueued_total{workflow="metrics-e2e"}`, 5)
	moved(`levqor_jobs_finished_total{status="succeeded",workflow="metrics-e2e"}`, 5)
	moved(`levqor_job_attempt_duration_seconds_count{status="succeeded"}`, 5)
	moved(`levqor_job_queue_wait_seconds_count`, 5)
	moved(`levqor_jobs_queue_depth{status="succeeded"}`, 5)
	moved(`http_request_duration_seconds_count{code="202",method="POST",route="/api/v1/intake"}`, 5)
	moved(`http_request_duration_seconds_count{code="200",method="GET",route="/api/v1/jobs/{id}"}`, 1)
	moved(`http_request_duration_seconds_count{code="404",method="GET",route="unmatched"}`, 1)
	moved(`levqor_rate_limit_rejections_total{route="/status"}`, 2)
	id := regexp.MustCompile(`"(job|usr)_[0-9A-Za-z]+"`) // a label value that is an id
	for name := range after {
		if id.MatchString(name) || strings.Contains(name, ids[0]) || strings.Contains(name, "/no/such") {
			t.Errorf("series %s carries an id or a raw path", name)
		}
	}
}

// TestPprofOnMetricsListener: LEVQOR_PPROF=true serves Go's profiles on the metrics
// listener only; without it (TestMetricsEndpoint's server) they are not there.
func TestPprofOnMetricsListener(t *testing.T) {
	for _, on := range []bool{true, false} {
		env := []string{"LEVQOR_METRICS_ADDR=127.0.0.1:0"}
		if on {
			env = append(env, "LEVQOR_PPROF=true")
		}
		srv := startServe(t, filepath.Join(t.TempDir(), "data"), jobsTestEnv(env...)...)
		line := srv.waitLog(t, "metrics listening", 5*time.Second)
		maddr, _ := line["addr"].(string)
		resp, err := http.Get("http://" + maddr + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := resp.StatusCode == http.StatusOK && strings.Contains(string(b), "goroutine profile"); got != on {
			t.Errorf("LEVQOR_PPROF=%v: /debug/pprof/goroutine %d %.80q", on, resp.StatusCode, b)
		}
		if status, _ := srv.get(t, "/debug/pprof/"); status != http.StatusNotFound {
			t.Errorf("/debug/pprof/ on the API listener: %d, want 404", status)
		}
	}
}
