package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

// coldStartRun is one start of levqor on an empty data directory.
type coldStartRun struct {
	ReadyMS     float64 `json:"ready_ms"`     // exec → first 200 from GET /ready, as seen by the poller
	ListeningMS float64 `json:"listening_ms"` // exec → the "listening" log line read from the pipe
	StartupMS   float64 `json:"startup_ms"`   // levqor's own figure: serve() entry → listening (whole ms)
}

// runColdStart starts levqor o.runs times, each on a fresh empty data directory
// (so every run creates and migrates a new SQLite database), and times exec to
// the first 200 from GET /ready.
func runColdStart(ctx context.Context, o options) (outcome, error) {
	var runs []coldStartRun
	var ready []float64
	for i := range o.runs {
		if err := ctx.Err(); err != nil {
			return outcome{}, err
		}
		r, err := coldStartOnce(ctx, o.bin)
		if err != nil {
			return outcome{}, fmt.Errorf("run %d: %w", i+1, err)
		}
		fmt.Fprintf(o.out, "run %2d  ready %6.1f ms   (listening line at %5.1f ms; levqor's startup_ms %3.0f)\n",
			i+1, r.ReadyMS, r.ListeningMS, r.StartupMS)
		runs = append(runs, r)
		ready = append(ready, r.ReadyMS)
	}
	med := median(ready)
	fmt.Fprintf(o.out, "median  ready %6.1f ms   (min %.1f, max %.1f)\n", med, minOf(ready), maxOf(ready))
	return outcome{
		Checks:  []check{atMost("coldstart median exec→/ready 200", med, "ms", 50)},
		Details: map[string]any{"runs": runs, "median_ready_ms": med},
	}, nil
}

func coldStartOnce(ctx context.Context, bin string) (r coldStartRun, err error) {
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
	ready, err := s.waitReady(ctx, "/ready")
	if err != nil {
		return r, err
	}
	startup, listening, err := s.listeningLine()
	if err != nil {
		return r, err
	}
	return coldStartRun{ReadyMS: ms(ready), ListeningMS: ms(listening), StartupMS: startup}, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func minOf(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}

func maxOf(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
