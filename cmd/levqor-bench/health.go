package main

import (
	"context"
	"errors"
	"os"
)

// runHealth compares GET /health on levqor with the same answer from a bare
// net/http server. Both run as separate processes for the whole scenario and
// take turns under the same load generator (see compareThroughput).
func runHealth(ctx context.Context, o options) (_ outcome, err error) {
	dir, err := os.MkdirTemp("", "levqor-bench-*")
	if err != nil {
		return outcome{}, err
	}
	defer os.RemoveAll(dir)

	var servers []*server
	defer func() { err = errors.Join(err, stopAll(servers)) }()
	bare, err := startReady(ctx, &servers, "/health", func() (*server, error) { return startBare(o.self, bareHealthFlag) })
	if err != nil {
		return outcome{}, err
	}
	lev, err := startReady(ctx, &servers, "/ready", func() (*server, error) { return startLevqor(o.bin, dir) })
	if err != nil {
		return outcome{}, err
	}
	c, err := compareThroughput(ctx, o, bare, lev, loadRequest{path: "/health", want: []byte(healthBody)}, nil)
	if err != nil {
		return outcome{}, err
	}
	return c.outcome("health levqor/bare req/s (medians)", 50), nil
}
