package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// rssRun is one start of levqor followed by an idle pause.
type rssRun struct {
	RSSKB  int64 `json:"rss_kb"`      // VmRSS after the pause
	AnonKB int64 `json:"rss_anon_kb"` // of which RssAnon: heap, stacks
	FileKB int64 `json:"rss_file_kb"` // and RssFile: the binary's pages it touched
	HWMKB  int64 `json:"hwm_kb"`      // VmHWM: the peak resident size so far (start-up included)
}

// runRSS starts levqor o.runs times on a fresh data directory, waits for /ready,
// lets it sit idle for o.idle and reads VmRSS from /proc/<pid>/status.
//
// It runs a copy of o.bin, as an installed binary is: a file the Go linker has
// just written maps about 10 MiB more of itself into a process (RssFile 23 against
// 13 MiB for the same bytes copied, 2026-12-07), a page-cache effect of the fresh
// file rather than of the program, which would make every measurement right after
// `make build` read high.
func runRSS(ctx context.Context, o options) (outcome, error) {
	bin, cleanup, err := copyBinary(o.bin)
	if err != nil {
		return outcome{}, err
	}
	defer cleanup()
	var runs []rssRun
	var rss []float64
	for i := range o.runs {
		if err := ctx.Err(); err != nil {
			return outcome{}, err
		}
		r, err := rssOnce(ctx, bin, o.idle)
		if err != nil {
			return outcome{}, fmt.Errorf("run %d: %w", i+1, err)
		}
		fmt.Fprintf(o.out, "run %2d  VmRSS %5.1f MiB   (anon %5.1f, file %5.1f; VmHWM %5.1f MiB)\n", i+1, mb(r.RSSKB), mb(r.AnonKB), mb(r.FileKB), mb(r.HWMKB))
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
	if r.AnonKB, err = procStatusKB(s.pid, "RssAnon"); err != nil {
		return r, err
	}
	if r.FileKB, err = procStatusKB(s.pid, "RssFile"); err != nil {
		return r, err
	}
	return r, nil
}

// copyBinary copies bin into a temporary directory (runRSS says why) and returns
// the copy and a function removing it.
func copyBinary(bin string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "levqor-bench-bin-*")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	src, err := os.Open(bin)
	if err != nil {
		cleanup()
		return "", nil, err
	}
	defer src.Close()
	dst := filepath.Join(dir, filepath.Base(bin))
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err == nil {
		_, err = io.Copy(out, src)
		err = errors.Join(err, out.Close())
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("copy %s: %w", bin, err)
	}
	return dst, cleanup, nil
}

// mb converts kB (as /proc reports, really KiB) to MiB.
func mb(kb int64) float64 { return float64(kb) / 1024 }
