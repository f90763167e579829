package main

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
)

// gcPercent is GOGC while the server starts, and while it serves unless GOGC is
// set. Start-up allocates tens of MiB, most of it garbage at once (the spec's
// parse, schemas, migrations), and collecting it as it goes took a tenth of
// start-up's CPU; the heap it lets grow is given back by settleStartup. Serving,
// intake allocates ~44 KB per request over a heap target of ~15 MB, so at Go's
// default of 100 the collector ran ~43 times a second under intake load (12 at
// 400) and took 8 % of the CPU: at 400 intake serves ~10 % more
// requests per second on the same cores (docs/benchmarks.md, ADR 0025), for a
// heap up to five times the live one instead of twice.
const gcPercent = 400

// memoryLimitShare is the share of the cgroup's memory limit (memory.max) that
// becomes the runtime's soft memory limit when GOMEMLIMIT is not set: near it the
// collector runs as often as it must, whatever gcPercent says, so a container
// collects rather than being killed.
const memoryLimitShare = 0.75

// startupGC sets GOGC to gcPercent and, in a memory-limited cgroup without
// GOMEMLIMIT, the soft memory limit; it returns what sets GOGC for serving (once):
// the environment's GOGC when set, gcPercent otherwise.
func startupGC(getenv func(string) string) (end func()) {
	before := debug.SetGCPercent(gcPercent)
	serving := before
	if getenv("GOGC") == "" {
		serving = gcPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		if limit, ok := cgroupMemoryMax("/sys/fs/cgroup/memory.max"); ok {
			debug.SetMemoryLimit(int64(float64(limit) * memoryLimitShare))
		}
	}
	return sync.OnceFunc(func() { debug.SetGCPercent(serving) })
}

// cgroupMemoryMax reads a cgroup v2 memory.max file: the limit in bytes, or false
// when there is none ("max") or it cannot be read.
func cgroupMemoryMax(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil && n > 0
}
