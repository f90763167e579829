package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const (
	// userGetOwner is the user the scenario creates, through `levqor keys create`.
	userGetOwner = "bench@example.com"
	// benchRateLimit is levqor's per-key limit (LEVQOR_RATE_LIMIT_KEY) in the
	// scenarios that load an authenticated route, and its per-IP and global
	// limits where the bench polls its queue status: far above what a run sends. At
	// the default, 600 a minute per key, every request past the 600th would be
	// a 429 and the round would measure the limiter instead.
	benchRateLimit = "1000000000-M"
	cliTimeout     = 10 * time.Second
)

// runUserGet compares an authenticated GET /api/v1/users/{id} on levqor with a
// bare net/http server that reads the same row from the same SQLite file. It
// starts levqor on an empty data directory, creates a user and a users:read key
// for it with the CLI beside the running server, then starts the bare server on
// levqor's database file; both serve for the whole scenario and take turns under
// the same load generator, sending the same request (see compareThroughput).
func runUserGet(ctx context.Context, o options) (_ outcome, err error) {
	dir, err := os.MkdirTemp("", "levqor-bench-*")
	if err != nil {
		return outcome{}, err
	}
	defer os.RemoveAll(dir)

	var servers []*server
	defer func() { err = errors.Join(err, stopAll(servers)) }()
	lev, err := startReady(ctx, &servers, "/ready", func() (*server, error) {
		return startLevqor(o.bin, dir, "LEVQOR_RATE_LIMIT_KEY="+benchRateLimit)
	})
	if err != nil {
		return outcome{}, err
	}
	userID, key, err := createKey(ctx, o.bin, dir)
	if err != nil {
		return outcome{}, err
	}
	path := "/api/v1/users/" + userID

	bare, err := startReady(ctx, &servers, path, func() (*server, error) {
		return startBare(o.self, bareUserFlag, "-db", filepath.Join(dir, "levqor.db"))
	})
	if err != nil {
		return outcome{}, err
	}

	lr := loadRequest{path: path, header: http.Header{"X-Api-Key": {key}}, want: []byte(`"id":"` + userID + `"`), contains: true}
	levBody, bareBody, err := fetchBoth(ctx, lev, bare, lr)
	if err != nil {
		return outcome{}, err
	}
	same := "identical"
	if !bytes.Equal(levBody, bareBody) {
		same = fmt.Sprintf("they differ:\n  levqor %s  bare   %s", levBody, bareBody)
	}
	fmt.Fprintf(o.out, "GET %s with a users:read key of its owner; bodies: levqor %d bytes, bare %d bytes, %s\n",
		path, len(levBody), len(bareBody), same)
	c, err := compareThroughput(ctx, o, bare, lev, lr, nil)
	if err != nil {
		return outcome{}, err
	}
	return c.outcome("userget levqor/bare req/s (medians)", 70), nil // issue #18
}

// createKey runs `bin keys create` on dataDir for userGetOwner (creating the
// user) and returns the owner's id and the key's secret.
func createKey(ctx context.Context, bin, dataDir string) (userID, key string, err error) {
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "keys", "create", "--owner", userGetOwner, "--scopes", "users:read")
	cmd.Env = childEnv("LEVQOR_DATA_DIR=" + dataDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("levqor keys create: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return parseKeyCreate(string(out))
}

// parseKeyCreate reads the owner and key lines of `levqor keys create`'s output.
func parseKeyCreate(out string) (owner, key string, err error) {
	for _, line := range strings.Split(out, "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch name {
		case "owner":
			owner = strings.TrimSpace(value)
		case "key":
			key = strings.TrimSpace(value)
		}
	}
	if owner == "" || key == "" {
		return "", "", fmt.Errorf("levqor keys create: no owner: and key: lines in %q", out)
	}
	return owner, key, nil
}

// fetchOnce sends lr once with net/http and returns the body, or an error
// unless the answer is one the load generator would count.
func fetchOnce(ctx context.Context, addr string, lr loadRequest) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var reqBody io.Reader
	if lr.body != nil {
		reqBody = bytes.NewReader(lr.body)
	}
	req, err := http.NewRequestWithContext(ctx, lr.verb(), "http://"+addr+lr.path, reqBody)
	if err != nil {
		return nil, err
	}
	for name, values := range lr.header {
		req.Header[name] = values
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	if !lr.match(resp.StatusCode, body) {
		return nil, fmt.Errorf("%s %s: want %s, got %s %.300q", lr.verb(), lr.path, lr, resp.Status, body)
	}
	return body, nil
}
