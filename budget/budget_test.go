package budget_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/levqor/levqor/budget"
)

func newJob(t *testing.T, limit float64) *budget.JobBudget {
	t.Helper()
	b, err := budget.NewJobBudget(limit)
	if err != nil {
		t.Fatalf("NewJobBudget(%g): %v", limit, err)
	}
	return b
}

func TestContextCarriesBudget(t *testing.T) {
	ctx := context.Background()
	if _, ok := budget.From(ctx); ok {
		t.Fatal("From on a bare context reported a budget")
	}
	b := newJob(t, 1)
	got, ok := budget.From(budget.WithBudget(ctx, b))
	if !ok || got != b {
		t.Fatalf("From = %v, %v; want the budget put in", got, ok)
	}
	if _, ok := budget.From(budget.WithBudget(ctx, nil)); ok {
		t.Fatal("a nil budget in the context counted as present")
	}
}

func TestReserveOverLimitIsExceeded(t *testing.T) {
	ctx := context.Background()
	b := newJob(t, 1.00)
	r1, err := b.Reserve(ctx, 0.60)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Settle(ctx, r1, 0.25); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Reserve(ctx, 0.50); err != nil {
		t.Fatalf("0.25 spent + 0.50 fits a 1.00 limit: %v", err)
	}
	_, err = b.Reserve(ctx, 0.30)
	if !errors.Is(err, budget.ErrExceeded) {
		t.Fatalf("err = %v; want ErrExceeded", err)
	}
	var ee *budget.ExceededError
	if !errors.As(err, &ee) {
		t.Fatalf("err is %T, want *ExceededError", err)
	}
	want := budget.ExceededError{LimitUSD: 1, SpentUSD: 0.25, ReservedUSD: 0.5, RequestedUSD: 0.3}
	if *ee != want {
		t.Fatalf("ExceededError = %+v; want %+v", *ee, want)
	}
	for _, s := range []string{"0.300000", "0.250000", "1.000000", "0.500000"} {
		if !strings.Contains(ee.Error(), s) {
			t.Errorf("message %q does not mention %s", ee.Error(), s)
		}
	}
	if b.ReservedUSD() != 0.5 || b.SpentUSD() != 0.25 {
		t.Fatalf("a refused reservation changed the books: reserved %g spent %g", b.ReservedUSD(), b.SpentUSD())
	}
}

func TestSettleOnceOnly(t *testing.T) {
	ctx := context.Background()
	b := newJob(t, 1)
	r, err := b.Reserve(ctx, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Settle(ctx, r, 0.1); err != nil {
		t.Fatal(err)
	}
	if err := b.Settle(ctx, r, 0.1); !errors.Is(err, budget.ErrUnknownReservation) {
		t.Fatalf("second Settle: err = %v; want ErrUnknownReservation", err)
	}
	if err := b.Settle(ctx, budget.Reservation{ID: "nope", USD: 1}, 0); !errors.Is(err, budget.ErrUnknownReservation) {
		t.Fatalf("Settle of a made-up reservation: err = %v; want ErrUnknownReservation", err)
	}
	if got := b.SpentUSD(); got != 0.1 {
		t.Fatalf("spent = %g; want 0.1 (charged once)", got)
	}
}

func TestSettleAfterCancelAndOverspend(t *testing.T) {
	b := newJob(t, 1)
	r, err := b.Reserve(context.Background(), 0.1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// A step that timed out still settles what the provider billed, even over its estimate.
	if err := b.Settle(ctx, r, 0.15); err != nil {
		t.Fatalf("Settle under a canceled context: %v", err)
	}
	if b.SpentUSD() != 0.15 || b.ReservedUSD() != 0 {
		t.Fatalf("spent %g reserved %g; want 0.15 and 0", b.SpentUSD(), b.ReservedUSD())
	}
	if _, err := b.Reserve(ctx, 0.1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Reserve under a canceled context: err = %v", err)
	}
}

func TestRejectsBadAmounts(t *testing.T) {
	for _, v := range []float64{-0.01, math.NaN(), math.Inf(1), 2e9} {
		if _, err := budget.NewJobBudget(v); err == nil {
			t.Errorf("NewJobBudget(%g) succeeded", v)
		}
		b := newJob(t, 1)
		if _, err := b.Reserve(context.Background(), v); err == nil || errors.Is(err, budget.ErrExceeded) {
			t.Errorf("Reserve(%g): err = %v; want a validation error", v, err)
		}
	}
}

// TestConcurrentReserveExactFit: the limit fits exactly ten reservations, amounts chosen so
// that float64 sums would drift (0.03×10 ≠ 0.3 in binary), and 100 goroutines race for them.
func TestConcurrentReserveExactFit(t *testing.T) {
	ctx := context.Background()
	const each = 0.03
	b := newJob(t, 0.3)
	var (
		ok, exceeded atomic.Int32
		wg           sync.WaitGroup
		mu           sync.Mutex
		held         []budget.Reservation
	)
	start := make(chan struct{})
	for range 100 {
		wg.Go(func() {
			<-start
			r, err := b.Reserve(ctx, each)
			switch {
			case err == nil:
				ok.Add(1)
				mu.Lock()
				held = append(held, r)
				mu.Unlock()
			case errors.Is(err, budget.ErrExceeded):
				exceeded.Add(1)
			default:
				t.Errorf("Reserve: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != 10 || exceeded.Load() != 90 {
		t.Fatalf("%d reservations succeeded and %d were refused; want 10 and 90", ok.Load(), exceeded.Load())
	}

	// Settling each for a third of its reservation frees the rest: 0.02 per call.
	for _, r := range held {
		wg.Go(func() {
			if err := b.Settle(ctx, r, 0.01); err != nil {
				t.Errorf("Settle: %v", err)
			}
		})
	}
	wg.Wait()
	if got := b.SpentUSD(); math.Abs(got-0.1) > 1e-12 {
		t.Fatalf("spent = %g; want 0.1", got)
	}
	if got := b.ReservedUSD(); got != 0 {
		t.Fatalf("reserved = %g after settling everything; want 0", got)
	}
	// 0.2 is free again: exactly six more 0.03 reservations fit (0.18), not seven.
	n := 0
	for {
		if _, err := b.Reserve(ctx, each); err != nil {
			if !errors.Is(err, budget.ErrExceeded) {
				t.Fatal(err)
			}
			break
		}
		n++
	}
	if n != 6 {
		t.Fatalf("after settling, %d more reservations fit; want 6", n)
	}
}

// BenchmarkReserveSettle measures the budget's overhead per AI call.
func BenchmarkReserveSettle(b *testing.B) {
	ctx := context.Background()
	jb, err := budget.NewJobBudget(budget.MaxUSD)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		r, err := jb.Reserve(ctx, 0.0123)
		if err != nil {
			b.Fatal(err)
		}
		if err := jb.Settle(ctx, r, 0.001); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReserveSettleParallel(b *testing.B) {
	ctx := context.Background()
	jb, err := budget.NewJobBudget(budget.MaxUSD)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, err := jb.Reserve(ctx, 0.0123)
			if err != nil {
				b.Error(err)
				return
			}
			if err := jb.Settle(ctx, r, 0.001); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
