package limitstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"
)

// flaky is a limiter.Store that fails while down and counts the calls it gets.
type flaky struct {
	limiter.Store
	down  bool
	calls int
}

func (f *flaky) Get(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	f.calls++
	if f.down {
		return limiter.Context{}, errors.New("connection refused")
	}
	return f.Store.Get(ctx, key, rate)
}

// TestBreaker: after Threshold consecutive failures the primary is not called
// until the cooldown is over; then one probe call is let through, and a success
// closes the breaker. Failing open answers from the fallback throughout; failing
// closed returns ErrUnavailable.
func TestBreaker(t *testing.T) {
	rate := limiter.Rate{Period: time.Minute, Limit: 10}
	for _, failOpen := range []bool{true, false} {
		f := &flaky{Store: memory.NewStore(), down: true}
		g := New(f, Options{Threshold: 3, Cooldown: time.Second, FailOpen: failOpen, Fallback: memory.NewStore()})
		now := time.Unix(1_000_000, 0)
		g.now = func() time.Time { return now }
		for range 10 {
			_, err := g.Get(t.Context(), "k", rate)
			if failOpen != (err == nil) || (!failOpen && !errors.Is(err, ErrUnavailable)) {
				t.Fatalf("fail open %v: error %v", failOpen, err)
			}
		}
		if f.calls != 3 || !g.Open() {
			t.Fatalf("primary called %d times for 10 requests, open %v; want 3 and open", f.calls, g.Open())
		}
		now = now.Add(time.Second)
		f.down = false
		if _, err := g.Get(t.Context(), "k", rate); err != nil || f.calls != 4 || g.Open() {
			t.Fatalf("after the cooldown: error %v, calls %d, open %v; want one probe that closes it", err, f.calls, g.Open())
		}
	}
}

// TestWithRequest: the calls of one request skip the primary after one of them
// failed, so a request waits for at most one deadline.
func TestWithRequest(t *testing.T) {
	rate := limiter.Rate{Period: time.Minute, Limit: 10}
	f := &flaky{Store: memory.NewStore(), down: true}
	g := New(f, Options{Threshold: 100, FailOpen: true, Fallback: memory.NewStore()})
	ctx := WithRequest(t.Context())
	for _, key := range []string{"ip:203.0.113.9", "global"} {
		if _, err := g.Get(ctx, key, rate); err != nil {
			t.Fatal(err)
		}
	}
	if f.calls != 1 {
		t.Errorf("the primary got %d calls of one request, want 1", f.calls)
	}
}
