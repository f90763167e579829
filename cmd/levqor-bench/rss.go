package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

// rssRun is one start of levqor followed by an idle pause.
type rssRun struct {
	RSSKB int64 `json:"rss_kb"` // VmRSS after the pause
	HWMKB int64 `json:"hwm_kb"` // VmHWM: the peak resident size so far (start-up included)
}

// runRSS starts levqor o.runs times on a fresh data directory, waits for /ready,
// lets it sit idle for o.idle and reads VmRSS from /proc/<pid>/status.
func runRSS(ctx context.Context, o options) (outcome, error) {
	var runs []rssRun
	var rss []float64
	for i := range o.runs {
		if err := ctx.Err(); err != nil {
			return outcome{}, err
		}
		r, err := rssOnce(ctx, o.bin, o.idle)
		if err != nil {
			return outcome{}, fmt.Errorf("run %d: %w", i+1, err)
		}
		fmt.Fprintf(o.out, "run %2d  VmRSS %5.1f MiB   (VmHWM %5.1f MiB)\n", i+1, mb(r.RSSKB), mb(r.HWMKB))
		runs = append(runs, r)
		rss = append(rss, mb(r.RSSKB))
	}
	med := median(rss)
	fmt.Fprintf(o.out, "median  VmRSS %5.1f MiB   (after %s idle)\n", med, o.idle)
	return outcome{
		Checks:  []check{atMost("rss median VmRSS when idle", med, "MiB", 30)},
		Details: map[string]any{"runs": runs, "median_rss_mib": med, "idle": o.idle.String()},
	}, nil
}

func rssOnce(ctx context.Context, bin string, idle time.Duration) (r rssRun, err error) {
	dir, err := os.MkdirTemp("", "levqor-bench-*")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	s, err := startLevqor(bin, dir)
	if err != nil {
		return r, err
	}
	defer func() {
		if stopErr := s.stop(); err == nil {
			err = stopErr
		}
	}()
	if _, err := s.waitReady(ctx, "/ready"); err != nil {
		return r, err
	}
	select {
	case <-time.After(idle):
	case <-ctx.Done():
		return r, ctx.Err()
	}
	if r.RSSKB, err = procStatusKB(s.pid, "VmRSS"); err != nil {
		return r, err
	}
	if r.HWMKB, err = procStatusKB(s.pid, "VmHWM"); err != nil {
		return r, err
	}
	return r, nil
}

// mb converts kB (as /proc reports, really KiB) to MiB.
func mb(kb int64) float64 { return float64(kb) / 1024 }
