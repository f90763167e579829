package budget_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
)

// TestUSDToNanosSaturates: every conversion stays in range — amounts past it saturate
// instead of wrapping into a negative (or small) amount, and NaN counts as the most.
func TestUSDToNanosSaturates(t *testing.T) {
	for _, c := range []struct {
		usd  float64
		want budget.Nanos
	}{
		{0, 0},
		{1, 1_000_000_000},
		{0.0000000001, 1}, // rounds up: a reservation never undercounts
		{-1, -1_000_000_000},
		{9.2e9, 9_200_000_000_000_000_000},
		{9.3e9, budget.MaxNanos}, // just past MaxInt64 nanos
		{float64(math.MaxInt64), budget.MaxNanos},
		{math.MaxFloat64, budget.MaxNanos},
		{math.Inf(1), budget.MaxNanos},
		{math.NaN(), budget.MaxNanos},
		{-9.3e9, math.MinInt64},
		{-math.MaxFloat64, math.MinInt64},
		{math.Inf(-1), math.MinInt64},
	} {
		if got := budget.USDToNanos(c.usd); got != c.want {
			t.Errorf("USDToNanos(%g) = %d, want %d", c.usd, got, c.want)
		}
	}
	if got := budget.MaxNanos.USD(); got <= 9.2e9 || math.IsInf(got, 0) {
		t.Errorf("MaxNanos.USD() = %g", got)
	}
}

func TestNanosAddSaturates(t *testing.T) {
	for _, c := range []struct{ a, b, want budget.Nanos }{
		{1, 2, 3},
		{budget.MaxNanos, 1, budget.MaxNanos},
		{budget.MaxNanos, budget.MaxNanos, budget.MaxNanos},
		{budget.MaxNanos - 1, 1, budget.MaxNanos},
		{math.MinInt64, -1, math.MinInt64},
		{budget.MaxNanos, -1, budget.MaxNanos - 1},
		{math.MinInt64, budget.MaxNanos, -1},
	} {
		if got := c.a.Add(c.b); got != c.want {
			t.Errorf("%d.Add(%d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// TestRemainingNeverWraps: spending at the maximum leaves nothing, rather than a sum
// that wrapped around into a huge remainder.
func TestRemainingNeverWraps(t *testing.T) {
	p := budget.Period{Limit: budget.USDToNanos(10), Spent: budget.MaxNanos, Reserved: budget.USDToNanos(1)}
	if got := p.Remaining(); got != 0 {
		t.Fatalf("Remaining = %d, want 0", got)
	}
	p = budget.Period{Limit: budget.USDToNanos(10), Spent: budget.USDToNanos(3), Reserved: budget.USDToNanos(2)}
	if got := p.Remaining(); got != budget.USDToNanos(5) {
		t.Fatalf("Remaining = %d, want 5 USD", got)
	}
}

// TestJobBudgetAtTheExtremes: a job budget at the largest limit, settled past its
// reservations again and again, never wraps into room for more.
func TestJobBudgetAtTheExtremes(t *testing.T) {
	ctx := context.Background()
	b := newJob(t, budget.MaxUSD)
	var held []budget.Reservation
	for range 12 { // settled at 10⁹ USD each, 12 are past MaxInt64 nanos
		r, err := b.Reserve(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, r)
	}
	for _, r := range held {
		if err := b.Settle(ctx, r, budget.MaxUSD); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.SpentUSD(); got < 9.2e9 {
		t.Fatalf("spent = %g USD after 12 settlements of 1e9; the sum wrapped", got)
	}
	if _, err := b.Reserve(ctx, 0.01); !errors.Is(err, budget.ErrExceeded) {
		t.Fatalf("Reserve after spending past the limit: %v, want ErrExceeded", err)
	}
	for _, v := range []float64{math.MaxInt64, math.NaN(), math.Inf(1), math.Inf(-1), -1} {
		if err := budget.CheckUSD(v); err == nil {
			t.Errorf("CheckUSD(%g) accepted it", v)
		}
	}
}

// ownerBudget is one step's owner budget over a real store, and a way to read the
// owner's day.
type ownerBudget struct {
	owner *budget.Owner
	day   func() budget.Usage
}

func newOwnerBudget(t *testing.T, st store.Store, ownerID string) ownerBudget {
	t.Helper()
	limits := budget.Limits{Daily: budget.USDToNanos(100), Monthly: budget.USDToNanos(1000)}
	svc := budget.NewService(st, limits).WithLogger(slog.New(slog.DiscardHandler))
	return ownerBudget{
		owner: svc.Owner(limits, ownerID, "job_x", "ask", time.Minute),
		day: func() budget.Usage {
			t.Helper()
			day, _, err := st.OwnerTotals(context.Background(), ownerID, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return day
		},
	}
}

func engines(t *testing.T, run func(t *testing.T, st store.Store)) {
	t.Run("SQLite", func(t *testing.T) { run(t, storetest.OpenSQLite(t)) })
	t.Run("PostgreSQL", func(t *testing.T) { run(t, storetest.OpenPostgres(t)) })
}

// TestOwnerRefusesNegativeAndNonFinite: an owner budget settled with a negative or
// non-finite amount writes nothing — its spending never goes down — and a huge finite
// one saturates instead of wrapping.
func TestOwnerRefusesNegativeAndNonFinite(t *testing.T) {
	engines(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		ob := newOwnerBudget(t, st, "usr_neg")
		r, err := budget.Reserve(ctx, ob.owner, "gpt-4o", 0.5)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []float64{-0.25, math.Inf(-1), math.NaN(), math.Inf(1)} {
			if err := ob.owner.Settle(ctx, r, v); err == nil {
				t.Errorf("Settle(%g) succeeded", v)
			}
			if _, err := budget.Reserve(ctx, ob.owner, "gpt-4o", v); err == nil {
				t.Errorf("Reserve(%g) succeeded", v)
			}
		}
		if day := ob.day(); day.Spent != 0 || day.Reserved != budget.USDToNanos(0.5) {
			t.Fatalf("after refused settlements: spent %d reserved %d; want 0 and the reservation", day.Spent, day.Reserved)
		}
		if err := ob.owner.Settle(ctx, r, 1e300); err != nil {
			t.Fatal(err)
		}
		if day := ob.day(); day.Spent != budget.MaxNanos {
			t.Fatalf("after settling 1e300 USD: spent %d; want MaxNanos", day.Spent)
		}
	})
}

// TestAllSettleRefusedByJobLeavesOwnerUnwritten: when the job budget refuses a
// settlement, the owner's ledger is not written for it — not the amount, and the
// reservation stays open for its expiry to release.
func TestAllSettleRefusedByJobLeavesOwnerUnwritten(t *testing.T) {
	engines(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		ob := newOwnerBudget(t, st, "usr_all")
		jb := newJob(t, 10)
		all := budget.NewAll(jb, ob.owner)
		r, err := budget.Reserve(ctx, all, "gpt-4o", 0.5)
		if err != nil {
			t.Fatal(err)
		}
		// The owner alone would record 2e9 USD (it saturates, never refuses what may have
		// been spent); the job budget refuses anything over MaxUSD.
		if err := all.Settle(ctx, r, 2e9); err == nil {
			t.Fatal("Settle of 2e9 USD succeeded")
		}
		if day := ob.day(); day.Spent != 0 || day.Reserved != budget.USDToNanos(0.5) {
			t.Fatalf("owner day after the job refused: spent %d reserved %d; want 0 and the open reservation", day.Spent, day.Reserved)
		}
		if jb.SpentUSD() != 0 {
			t.Fatalf("job spent %g after refusing", jb.SpentUSD())
		}

		// A settlement both accept is written to both.
		r, err = budget.Reserve(ctx, all, "gpt-4o", 0.5)
		if err != nil {
			t.Fatal(err)
		}
		if err := all.Settle(ctx, r, 0.25); err != nil {
			t.Fatal(err)
		}
		if day := ob.day(); day.Spent != budget.USDToNanos(0.25) {
			t.Fatalf("owner spent %d after a settlement of 0.25 USD", day.Spent)
		}
		if jb.SpentUSD() != 0.25 {
			t.Fatalf("job spent %g, want 0.25", jb.SpentUSD())
		}
	})
}
