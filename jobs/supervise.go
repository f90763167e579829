package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"sync"
	"time"
)

// How the engine treats a goroutine that fails (panics, or returns before shutdown):
// it is logged and restarted after restartPause; its maxFailures-th failure within
// failureWindow stops the engine with an error, since a fault that repeats that
// often is not passing and a process supervisor restarting Levqor (which, on
// SQLite, returns running jobs to the queue at start) is the better cure.
const (
	restartPause  = 500 * time.Millisecond
	maxFailures   = 5
	failureWindow = time.Minute
)

// supervisor runs the engine's long-lived goroutines (claimer, completer, heartbeat,
// rescuer, listener, webhook dispatcher) and tracks them until they end.
type supervisor struct {
	log   *slog.Logger
	wg    sync.WaitGroup
	fatal chan error // the first goroutine that failed for good; Run stops the engine

	mu      sync.Mutex
	running map[string]bool // names of the goroutines not yet ended, for the shutdown error
}

func newSupervisor(log *slog.Logger) *supervisor {
	return &supervisor{log: log, fatal: make(chan error, 1), running: map[string]bool{}}
}

// goLoop runs fn in a goroutine until it returns after ctx ended, restarting it when
// it fails (see restartPause); exited, if set, is called once it has ended for good.
func (s *supervisor) goLoop(ctx context.Context, name string, fn func(context.Context) error, exited func()) {
	s.wg.Add(1)
	s.mu.Lock()
	s.running[name] = true
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.running, name)
			s.mu.Unlock()
		}()
		if exited != nil {
			defer exited()
		}
		var failures []time.Time
		for {
			err := runGuarded(ctx, fn)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				err = errors.New("returned before shutdown")
			}
			now := time.Now()
			failures = append(failures, now)
			for len(failures) > 0 && now.Sub(failures[0]) > failureWindow {
				failures = failures[1:]
			}
			if len(failures) >= maxFailures {
				err = fmt.Errorf("job engine %s failed %d times within %s; stopping the engine: %w", name, len(failures), failureWindow, err)
				s.log.Error("job engine goroutine failed for good", "goroutine", name, "error", err.Error())
				select {
				case s.fatal <- err:
				default: // another one already stops the engine
				}
				return
			}
			s.log.Error("job engine goroutine failed; restarting it", "goroutine", name, "error", err.Error(), "in", restartPause.String())
			pause := time.NewTimer(restartPause)
			select {
			case <-pause.C:
			case <-ctx.Done():
				pause.Stop()
				return
			}
		}
	}()
}

// panicError is a recovered panic, with the stack where it happened.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v\n%s", p.value, p.stack) }

// runGuarded calls fn, turning a panic into an error.
func runGuarded(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{value: p, stack: debug.Stack()}
		}
	}()
	return fn(ctx)
}

// left names the goroutines that have not ended.
func (s *supervisor) left() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.running))
}
