package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	// selftestTimeout bounds each check's request.
	selftestTimeout = 10 * time.Second
	// selftestJobWait bounds the job round trip (intake to succeeded).
	selftestJobWait = 30 * time.Second
	// selftestMaxBody bounds what a check reads of a response.
	selftestMaxBody = 4 << 20
)

// check is one self-test check: it returns nil when the server passes it.
type check struct {
	name string
	run  func(ctx context.Context) error
}

// selftestCommand is `levqor selftest --url URL [--key K] [--origin O] [--quick]`: it
// checks a running server from outside, one line per check, and exits 0 only when
// every check passes (1 when one fails, 2 for a wrong command). --quick checks
// liveness only, for a container's HEALTHCHECK.
func selftestCommand(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("selftest", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	base := fs.String("url", "", "the server's root URL, such as http://127.0.0.1:8080")
	key := fs.String("key", "", "an API key (admin or with jobs and metrics scopes): adds the job round trip and the metrics summary")
	origin := fs.String("origin", "https://levqor.ai", "a browser origin the server allows (LEVQOR_CORS_ORIGINS), for the CORS preflight")
	quick := fs.Bool("quick", false, "check liveness only (/health), for container health checks")
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("selftest: %v", err)}
	}
	u, err := url.Parse(*base)
	if *base == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || fs.NArg() > 0 {
		return usageError{"usage: levqor selftest --url http(s)://HOST[:PORT] [--key K] [--origin O] [--quick]"}
	}
	st := &selftest{base: strings.TrimRight(*base, "/"), key: *key, origin: *origin,
		client: &http.Client{Timeout: selftestTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	checks := st.checks(*quick)
	failed := 0
	for _, c := range checks {
		start := time.Now()
		err := c.run(ctx)
		took := time.Since(start).Round(time.Millisecond)
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "FAIL %-14s %v (%v)\n", c.name, err, took)
			continue
		}
		fmt.Fprintf(stdout, "ok   %-14s %v\n", c.name, took)
	}
	if failed > 0 {
		return checkFailed{fmt.Errorf("selftest: %d of %d checks failed", failed, len(checks))}
	}
	return nil
}

type selftest struct {
	base, key, origin string
	client            *http.Client
}

func (s *selftest) checks(quick bool) []check {
	if quick {
		return []check{{"health", s.expect("GET", "/health", 200, "application/json", "")}}
	}
	cs := []check{
		{"health", s.expect("GET", "/health", 200, "application/json", "")},
		{"ready", s.expect("GET", "/ready", 200, "application/json", "")},
		{"status", s.expect("GET", "/status", 200, "application/json", "")},
		{"docs", s.expect("GET", "/docs", 200, "text/html", "")},
		{"openapi", s.openapi},
		{"marketing", s.expect("GET", "/api/v1/marketing/summary", 200, "application/json", "")},
		{"sitemap", s.expect("GET", "/sitemap.xml", 200, "xml", "<urlset")},
		{"security.txt", s.expect("GET", "/.well-known/security.txt", 200, "text/plain", "Contact:")},
		{"cors", s.cors},
		{"headers", s.headers},
	}
	if s.key != "" {
		cs = append(cs,
			check{"admin-status", s.expect("GET", "/api/v1/admin/status", 200, "application/json", "")},
			check{"metrics", s.expect("GET", "/api/v1/metrics/summary", 200, "application/json", "")},
			check{"job", s.jobRoundTrip})
	}
	return cs
}

// do sends one request and returns the response with its body read (bounded).
func (s *selftest) do(ctx context.Context, method, path string, body []byte, header http.Header) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if s.key != "" && strings.HasPrefix(path, "/api/") {
		req.Header.Set("X-Api-Key", s.key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, selftestMaxBody))
	return resp, b, err
}

// expect checks a status, a Content-Type containing ctype and a body containing want.
func (s *selftest) expect(method, path string, status int, ctype, want string) func(context.Context) error {
	return func(ctx context.Context) error {
		resp, b, err := s.do(ctx, method, path, nil, nil)
		if err != nil {
			return err
		}
		if resp.StatusCode != status {
			return fmt.Errorf("%s %s: %d, want %d", method, path, resp.StatusCode, status)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, ctype) {
			return fmt.Errorf("%s %s: Content-Type %q, want %s", method, path, ct, ctype)
		}
		if want != "" && !bytes.Contains(b, []byte(want)) {
			return fmt.Errorf("%s %s: body lacks %q", method, path, want)
		}
		return nil
	}
}

func (s *selftest) openapi(ctx context.Context) error {
	resp, b, err := s.do(ctx, "GET", "/openapi.json", nil, nil)
	if err != nil {
		return err
	}
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &doc) != nil || !strings.HasPrefix(doc.OpenAPI, "3.") || len(doc.Paths) == 0 {
		return fmt.Errorf("GET /openapi.json: %d, not an OpenAPI 3 document with paths", resp.StatusCode)
	}
	return nil
}

func (s *selftest) cors(ctx context.Context) error {
	h := http.Header{"Origin": {s.origin}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"content-type,x-api-key"}}
	resp, _, err := s.do(ctx, "OPTIONS", "/api/v1/intake", nil, h)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") != s.origin {
		return fmt.Errorf("preflight from %s: %d, Access-Control-Allow-Origin %q (is the origin in LEVQOR_CORS_ORIGINS?)",
			s.origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	return nil
}

// securityHeaders are what every response must carry, errors included.
var securityHeaders = map[string]string{
	"X-Content-Type-Options":  "nosniff",
	"X-Frame-Options":         "DENY",
	"Referrer-Policy":         "no-referrer",
	"Content-Security-Policy": "frame-ancestors 'none'",
}

func (s *selftest) headers(ctx context.Context) error {
	for _, path := range []string{"/health", "/api/v1/no-such-route"} {
		resp, _, err := s.do(ctx, "GET", path, nil, nil)
		if err != nil {
			return err
		}
		for k, want := range securityHeaders {
			if got := resp.Header.Get(k); !strings.Contains(got, want) {
				return fmt.Errorf("GET %s: %s %q, want %q", path, k, got, want)
			}
		}
		if strings.HasPrefix(s.base, "https:") && resp.Header.Get("Strict-Transport-Security") == "" {
			return fmt.Errorf("GET %s over https: no Strict-Transport-Security", path)
		}
	}
	return nil
}

// jobRoundTrip submits a core.echo job and waits for it to succeed with the echo.
func (s *selftest) jobRoundTrip(ctx context.Context) error {
	nonce := fmt.Sprintf("selftest-%d", time.Now().UnixNano())
	body := []byte(`{"workflow":"levqor-selftest","payload":{"nonce":"` + nonce + `"},"steps":[{"id":"echo","connector":"core","action":"echo","input":{"nonce":"{{payload.nonce}}"}}]}`)
	resp, b, err := s.do(ctx, "POST", "/api/v1/intake", body, nil)
	if err != nil {
		return err
	}
	var accepted struct {
		JobID string `json:"job_id"`
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &accepted) != nil || accepted.JobID == "" {
		return fmt.Errorf("POST /api/v1/intake: %d", resp.StatusCode)
	}
	var job struct {
		Status string          `json:"status"`
		Result json.RawMessage `json:"result"`
	}
	deadline := time.Now().Add(selftestJobWait)
	for {
		resp, b, err := s.do(ctx, "GET", "/api/v1/jobs/"+url.PathEscape(accepted.JobID), nil, nil)
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 || json.Unmarshal(b, &job) != nil {
			return fmt.Errorf("GET the job: %d", resp.StatusCode)
		}
		switch job.Status {
		case "succeeded":
			if !bytes.Contains(job.Result, []byte(nonce)) {
				return errors.New("the job succeeded without echoing its input")
			}
			return nil
		case "failed", "canceled":
			return fmt.Errorf("the job ended %s", job.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the job is still %s after %v", job.Status, selftestJobWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
