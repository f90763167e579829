// Package limitstore guards the rate limiter's shared store (Redis) so that its
// outage cannot stop the API: every call has a short deadline, a breaker stops
// calling a store that keeps failing, and while it fails the limiter either falls
// back to a per-process store (fail open) or reports the store unavailable (fail
// closed). Fallbacks are counted and logged once per interval, not per request.
package limitstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ulule/limiter/v3"
)

// ErrUnavailable is returned, in fail-closed mode, while the store fails or the breaker is open.
var ErrUnavailable = errors.New("rate-limit store unavailable")

// Defaults of the Options left zero.
const (
	DefaultTimeout   = 75 * time.Millisecond // each call's deadline
	DefaultThreshold = 3                     // consecutive failures that open the breaker
	DefaultCooldown  = time.Second           // how long the breaker stays open before one probe call
	DefaultLogEvery  = 10 * time.Second      // at most one fallback log line per interval
)

// Options configure a Guarded store.
type Options struct {
	Timeout   time.Duration
	Threshold int
	Cooldown  time.Duration
	LogEvery  time.Duration
	FailOpen  bool          // on failure: answer from Fallback (true) or ErrUnavailable (false)
	Fallback  limiter.Store // the per-process store used while failing open (required when FailOpen)
	Logger    *slog.Logger
}

// Guarded is a limiter.Store over a primary store that may fail.
type Guarded struct {
	primary limiter.Store
	o       Options
	now     func() time.Time

	mu        sync.Mutex
	failures  int       // consecutive failures while closed
	openUntil time.Time // breaker open until then; zero when closed
	probing   bool      // a half-open probe call is in flight
	fallbacks int64     // answered without the primary since the last log line
	lastLog   time.Time
	lastErr   error
}

// New guards primary with o.
func New(primary limiter.Store, o Options) *Guarded {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Threshold <= 0 {
		o.Threshold = DefaultThreshold
	}
	if o.Cooldown <= 0 {
		o.Cooldown = DefaultCooldown
	}
	if o.LogEvery <= 0 {
		o.LogEvery = DefaultLogEvery
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Guarded{primary: primary, o: o, now: time.Now}
}

type call func(ctx context.Context, s limiter.Store) (limiter.Context, error)

// Get implements limiter.Store.
func (g *Guarded) Get(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return g.do(ctx, func(ctx context.Context, s limiter.Store) (limiter.Context, error) { return s.Get(ctx, key, rate) })
}

// Peek implements limiter.Store.
func (g *Guarded) Peek(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return g.do(ctx, func(ctx context.Context, s limiter.Store) (limiter.Context, error) { return s.Peek(ctx, key, rate) })
}

// Reset implements limiter.Store.
func (g *Guarded) Reset(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return g.do(ctx, func(ctx context.Context, s limiter.Store) (limiter.Context, error) { return s.Reset(ctx, key, rate) })
}

// Increment implements limiter.Store.
func (g *Guarded) Increment(ctx context.Context, key string, count int64, rate limiter.Rate) (limiter.Context, error) {
	return g.do(ctx, func(ctx context.Context, s limiter.Store) (limiter.Context, error) {
		return s.Increment(ctx, key, count, rate)
	})
}

// Open reports whether the breaker is open now (the primary is not being called).
func (g *Guarded) Open() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.openUntil.IsZero()
}

// requestKey marks a context as one request's limiter calls (WithRequest).
type requestKey struct{}

// WithRequest returns ctx for the several limiter calls of one request (an anonymous
// request counts against its IP and the global budget): once one of them fails,
// the others skip the primary, so a request waits for at most one deadline.
func WithRequest(ctx context.Context) context.Context {
	return context.WithValue(ctx, requestKey{}, new(atomic.Bool))
}

func (g *Guarded) do(ctx context.Context, c call) (limiter.Context, error) {
	failedBefore, _ := ctx.Value(requestKey{}).(*atomic.Bool)
	if failedBefore != nil && failedBefore.Load() {
		return g.fallback(ctx, c, errors.New("an earlier call of this request failed"))
	}
	if !g.allow() {
		return g.fallback(ctx, c, errors.New("breaker open"))
	}
	cctx, cancel := context.WithTimeout(ctx, g.o.Timeout)
	res, err := c(cctx, g.primary)
	cancel()
	if err == nil {
		g.succeeded()
		return res, nil
	}
	if ctx.Err() != nil { // the caller left: not the store's fault
		g.abandoned()
		return limiter.Context{}, ctx.Err()
	}
	g.failed(err)
	if failedBefore != nil {
		failedBefore.Store(true)
	}
	return g.fallback(ctx, c, err)
}

// allow says whether to call the primary: always when closed; when open, once the
// cooldown is over, for exactly one probe at a time (half-open).
func (g *Guarded) allow() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.openUntil.IsZero() {
		return true
	}
	if g.probing || g.now().Before(g.openUntil) {
		return false
	}
	g.probing = true
	return true
}

func (g *Guarded) succeeded() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.openUntil.IsZero() {
		g.o.Logger.Info("rate-limit store answers again; breaker closed", "fallbacks", g.fallbacks)
		g.fallbacks, g.lastLog = 0, time.Time{}
	}
	g.failures, g.openUntil, g.probing = 0, time.Time{}, false
}

func (g *Guarded) abandoned() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.probing = false
}

func (g *Guarded) failed(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failures++
	g.lastErr = err
	if g.probing || g.failures >= g.o.Threshold {
		if g.openUntil.IsZero() {
			g.o.Logger.Warn("rate-limit store failing; breaker open", "failures", g.failures,
				"cooldown", g.o.Cooldown.String(), "fail_open", g.o.FailOpen, "error", err.Error())
		}
		g.openUntil, g.probing = g.now().Add(g.o.Cooldown), false
	}
}

// fallback answers without the primary and counts it; the count is logged at most
// once per LogEvery.
func (g *Guarded) fallback(ctx context.Context, c call, cause error) (limiter.Context, error) {
	g.mu.Lock()
	g.fallbacks++
	if now := g.now(); now.Sub(g.lastLog) >= g.o.LogEvery {
		last := cause
		if g.lastErr != nil {
			last = g.lastErr
		}
		g.o.Logger.Warn("rate-limit store unavailable; requests limited without it", "fallbacks", g.fallbacks,
			"interval", g.o.LogEvery.String(), "fail_open", g.o.FailOpen, "error", last.Error())
		g.fallbacks, g.lastLog = 0, now
	}
	g.mu.Unlock()
	if !g.o.FailOpen || g.o.Fallback == nil {
		return limiter.Context{}, fmt.Errorf("%w: %w", ErrUnavailable, cause)
	}
	return c(ctx, g.o.Fallback)
}
