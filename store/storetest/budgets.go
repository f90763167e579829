package storetest

import (
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/postgres"
)

// budgetAt is the base time of budget tests: 01:30 on 1 July in India is still 30 June
// in UTC, so a store that took the day or month from the local date would misfile it.
var budgetAt = time.Date(2025, 7, 1, 1, 30, 0, 0, zoneIST)

// cent is one US cent, the unit of budget test amounts.
const cent = budget.Nanos(10_000_000)

// roomy limits never stop a reservation in tests that are not about limits.
var roomy = budget.Limits{Daily: 1_000_000 * cent, Monthly: 1_000_000 * cent}

// newReservation returns an open reservation of amount for owner, made at `at` and
// expiring ten minutes later.
func newReservation(ownerID, model string, amount budget.Nanos, at time.Time) budget.OwnerReservation {
	return budget.OwnerReservation{
		ID: levqor.NewID("bres"), OwnerID: ownerID, JobID: levqor.NewID("job"), StepID: "summarise",
		Model: model, Reserved: amount, ExpiresAt: at.Add(10 * time.Minute), CreatedAt: at,
	}
}

// mustReserve reserves r under limits and fails the test on error.
func mustReserve(t *testing.T, s budget.OwnerStore, r budget.OwnerReservation, limits budget.Limits) {
	t.Helper()
	if err := s.ReserveOwnerBudget(t.Context(), r, limits); err != nil {
		t.Fatalf("ReserveOwnerBudget(%s, %d nanos): %v", r.ID, r.Reserved, err)
	}
}

// mustSettle settles owner's reservation id at actual and fails the test on error.
func mustSettle(t *testing.T, s budget.OwnerStore, owner, id string, actual budget.Nanos, at time.Time) {
	t.Helper()
	if err := s.SettleOwnerBudget(t.Context(), owner, id, actual, at); err != nil {
		t.Fatalf("SettleOwnerBudget(%s, %d nanos): %v", id, actual, err)
	}
}

// spend reserves amount for owner at `at` and settles it at the same amount.
func spend(t *testing.T, s budget.OwnerStore, ownerID, model string, amount budget.Nanos, at time.Time) {
	t.Helper()
	r := newReservation(ownerID, model, amount, at)
	mustReserve(t, s, r, roomy)
	mustSettle(t, s, ownerID, r.ID, amount, at.Add(time.Second))
}

// checkExceeded fails unless err is an *budget.ExceededError with exactly the fields
// of a refusal under limit with spent and reserved already counted.
func checkExceeded(t *testing.T, what string, err error, limit, spent, reserved, requested budget.Nanos) {
	t.Helper()
	var ee *budget.ExceededError
	if !errors.As(err, &ee) {
		t.Fatalf("%s: err = %v, want *budget.ExceededError", what, err)
	}
	if !errors.Is(err, budget.ErrExceeded) {
		t.Errorf("%s: errors.Is(err, ErrExceeded) = false", what)
	}
	want := budget.ExceededError{LimitUSD: limit.USD(), SpentUSD: spent.USD(), ReservedUSD: reserved.USD(), RequestedUSD: requested.USD()}
	if *ee != want {
		t.Errorf("%s: ExceededError = %+v, want %+v", what, *ee, want)
	}
}

// checkUsage fails the test where got differs from want.
func checkUsage(t *testing.T, what string, got, want budget.Usage) {
	t.Helper()
	if got.Spent != want.Spent || got.Reserved != want.Reserved {
		t.Errorf("%s: spent %d reserved %d, want spent %d reserved %d", what, got.Spent, got.Reserved, want.Spent, want.Reserved)
	}
	if !maps.Equal(got.ByModel, want.ByModel) {
		t.Errorf("%s: by model %v, want %v", what, got.ByModel, want.ByModel)
	}
}

// usageAt returns the owner's day and month usage at `at` and fails the test on error.
func usageAt(t *testing.T, s budget.OwnerStore, ownerID string, at time.Time) (day, month budget.Usage) {
	t.Helper()
	day, month, err := s.OwnerUsage(t.Context(), ownerID, at)
	if err != nil {
		t.Fatalf("OwnerUsage(%s, %v): %v", ownerID, at, err)
	}
	return day, month
}

// raceReservations has goroutines reserve one tenth of the daily limit each at once,
// spread over the stores, and returns how many succeeded. Every failure must be an
// *budget.ExceededError.
func raceReservations(t *testing.T, ownerID string, goroutines int, stores ...budget.OwnerStore) int {
	t.Helper()
	limits := budget.Limits{Daily: 10 * 7 * cent, Monthly: 1000 * cent}
	var ok atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range goroutines {
		s := stores[i%len(stores)]
		wg.Go(func() {
			<-start
			err := s.ReserveOwnerBudget(t.Context(), newReservation(ownerID, "gpt-4o", 7*cent, budgetAt), limits)
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, budget.ErrExceeded):
				t.Errorf("goroutine %d: ReserveOwnerBudget: %v, want nil or an ExceededError", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return int(ok.Load())
}

// RunBudgets checks the budget.OwnerStore contract of store.Store.
func RunBudgets(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("ReserveWithinDailyLimit", func(t *testing.T) {
		t.Parallel()
		s, owner := open(t), levqor.NewID("usr")
		limits := budget.Limits{Daily: 10 * cent, Monthly: 100 * cent}
		mustReserve(t, s, newReservation(owner, "gpt-4o", 4*cent, budgetAt), limits)
		mustReserve(t, s, newReservation(owner, "gpt-4o", 6*cent, budgetAt), limits) // exactly at the limit
		err := s.ReserveOwnerBudget(t.Context(), newReservation(owner, "gpt-4o", 1, budgetAt), limits)
		checkExceeded(t, "one nanodollar over the daily limit", err, 10*cent, 0, 10*cent, 1)

		// The refused reservation left nothing behind; another owner is untouched.
		day, month := usageAt(t, s, owner, budgetAt)
		checkUsage(t, "day", day, budget.Usage{Reserved: 10 * cent})
		checkUsage(t, "month", month, budget.Usage{Reserved: 10 * cent})
		mustReserve(t, s, newReservation(levqor.NewID("usr"), "gpt-4o", 10*cent, budgetAt), limits)
	})

	t.Run("ReserveOverDailyLimitCountsSpent", func(t *testing.T) {
		t.Parallel()
		s, owner := open(t), levqor.NewID("usr")
		limits := budget.Limits{Daily: 10 * cent, Monthly: 100 * cent}
		spend(t, s, owner, "gpt-4o", 3*cent, budgetAt)
		mustReserve(t, s, newReservation(owner, "gpt-4o", 2*cent, budgetAt), limits)
		err := s.ReserveOwnerBudget(t.Context(), newReservation(owner, "gpt-4o", 6*cent, budgetAt), limits)
		checkExceeded(t, "over the daily limit", err, 10*cent, 3*cent, 2*cent, 6*cent)
		mustReserve(t, s, newReservation(owner, "gpt-4o", 5*cent, budgetAt), limits)
	})

	t.Run("ReserveOverMonthlyLimit", func(t *testing.T) {
		t.Parallel()
		s, owner := open(t), levqor.NewID("usr")
		// Spending earlier in the month counts toward the month, not the day; spending
		// in the month before counts toward neither.
		spend(t, s, owner, "gpt-4o", 7*cent, budgetAt.AddDate(0, 0, -20))
		spend(t, s, owner, "gpt-4o", 500*cent, budgetAt.AddDate(0, -1, 0))
		held := newReservation(owner, "gpt-4o", 1*cent, budgetAt.AddDate(0, 0, -10))
		held.ExpiresAt = budgetAt.Add(time.Hour) // a long call, still in flight at budgetAt
		mustReserve(t, s, held, roomy)
		limits := budget.Limits{Daily: 5 * cent, Monthly: 10 * cent}
		err := s.ReserveOwnerBudget(t.Context(), newReservation(owner, "gpt-4o", 3*cent, budgetAt), limits)
		checkExceeded(t, "over the monthly limit", err, 10*cent, 7*cent, 1*cent, 3*cent)
		mustReserve(t, s, newReservation(owner, "gpt-4o", 2*cent, budgetAt), limits) // 7+1+2 = 10

		// When both periods fail, the day is reported.
		err = s.ReserveOwnerBudget(t.Context(), newReservation(owner, "gpt-4o", 6*cent, budgetAt), limits)
		checkExceeded(t, "over both limits", err, 5*cent, 0, 2*cent, 6*cent)
	})

	t.Run("ZeroLimitAllowsNothing", func(t *testing.T) {
		t.Parallel()
		s, owner := open(t), levqor.NewID("usr")
		err := s.ReserveOwnerBudget(t.Context(), newReservation(owner, "gpt-4o", 1, budgetAt), budget.Limits{})
		checkExceeded(t, "zero limits", err, 0, 0, 0, 1)
	})

	t.Run("PeriodsAreUTC", func(t *testing.T) {
		t.Parallel()
		s, owner := open(t), levqor.NewID("usr")
		spend(t, s, owner, "gpt-4o", 3*cent, budgetAt) // 30 June in UTC, 1 July in India
		day, month := usageAt(t, s, owner, time.Date(2025, 6, 30, 0, 0, 0, 0, time.UTC))
		checkUsage(t, "day of 30 June UTC", day, budget.Usage{Spent: 3 * cent, ByModel: map[string]budget.Nanos{"gpt-4o": 3 * cent}})
		checkUsage(t, "month of June UTC", month, budget.Usage{Spent: 3 * cent, ByModel: map[string]budget.Nanos{"gpt-4o": 3 * cent}})
		day, month = usageAt(t, s, owner, time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC))
		checkUsage(t, "day of 1 July UTC", day, budget.Usage{})
		checkUsage(t, "month of July UTC", month, budget.Usage{})
	})

	t.Run("SettleAboveAndBelowReservation", func(t *testing.T) {
		t.Parallel()
		s, owner := open(t), levqor.NewID("usr")
		limits := budget.Limits{Daily: 10 * cent, Monthly: 100 * cent}
		a := newReservation(owner, "gpt-4o", 5*cent, budgetAt)
		b := newReservation(owner, "gpt-4o", 5*cent, budgetAt)
		mustReserve(t, s, a, limits)
		mustReserve(t, s, b, limits)

		// Settling below the reservation frees the difference.
		mustSettle(t, s, owner, a.ID, 2*cent, budgetAt.Add(time.Minute))
		mustReserve(t, s, newReservation(owner, "gpt-4o", 3*cent, budgetAt.Add(time.Minute)), limits) // 2+5+3 = 10
		err := s.ReserveOwnerBudget(t.Context(), newReservation(owner, "gpt-4o", 1, budgetAt.Add(time.Minute)), limits)
		checkExceeded(t, "after settling below", err, 10*cent, 2*cent, 8*cent, 1)

		// Settling above it records what was really spent, even past the limit.
		mustSettle(t, s, owner, b.ID, 9*cent, budgetAt.Add(2*time.Minute))
		day, _ := usageAt(t, s, owner, budgetAt.Add(2*time.Minute))
		checkUsage(t, "day", day, budget.Usage{Spent: 11 * cent, Reserved: 3 * cent, ByModel: map[string]budget.Nanos{"gpt-4o": 11 * cent}})
	})

	t.Run("SettleTwiceOrUnknown", func(t *testing.T) {
		t.Parallel()
		s, owner := open(t), levqor.NewID("usr")
		r := newReservation(owner, "gpt-4o", 5*cent, budgetAt)
		mustReserve(t, s, r, roomy)
		if err := s.SettleOwnerBudget(t.Context(), levqor.NewID("usr"), r.ID, 1*cent, budgetAt); !errors.Is(err, budget.ErrUnknownReservation) {
			t.Errorf("SettleOwnerBudget by another owner: %v, want ErrUnknownReservation", err)
		}
		mustSettle(t, s, owner, r.ID, 4*cent, budgetAt.Add(time.Second))
		if err := s.SettleOwnerBudget(t.Context(), owner, r.ID, 1*cent, budgetAt.Add(2*time.Second)); !errors.Is(err, budget.ErrUnknownReservation) {
			t.Errorf("second SettleOwnerBudget: %v, want ErrUnknownReservation", err)
		}
		if err := s.SettleOwnerBudget(t.Context(), owner, "bres_unknown", 1*cent, budgetAt); !errors.Is(err, budget.ErrUnknownReservation) {
			t.Errorf("SettleOwnerBudget of an unknown id: %v, want ErrUnknownReservation", err)
		}
		day, _ := usageAt(t, s, owner, budgetAt)
		checkUsage(t, "day after the refused settles", day, budget.Usage{Spent: 4 * cent, ByModel: map[string]budget.Nanos{"gpt-4o": 4 * cent}})
	})

	// Spending only grows, and saturates instead of wrapping: a negative settlement is
	// refused with nothing written, and totals past the largest amount stay there, so a
	// wrapped (negative) total can never make room for more.
	t.Run("SettleNeverLowersOrWraps", func(t *testing.T) {
		t.Parallel()
		s, owner := open(t), levqor.NewID("usr")
		a := newReservation(owner, "gpt-4o", 5*cent, budgetAt)
		b := newReservation(owner, "gpt-4o", 5*cent, budgetAt)
		mustReserve(t, s, a, roomy)
		mustReserve(t, s, b, roomy)
		if err := s.SettleOwnerBudget(t.Context(), owner, a.ID, -3*cent, budgetAt); err == nil {
			t.Fatal("SettleOwnerBudget of a negative amount succeeded")
		}
		day, month, err := s.OwnerTotals(t.Context(), owner, budgetAt)
		if err != nil {
			t.Fatal(err)
		}
		checkUsage(t, "day after a refused negative settle", day, budget.Usage{Reserved: 10 * cent})
		checkUsage(t, "month after a refused negative settle", month, budget.Usage{Reserved: 10 * cent})

		mustSettle(t, s, owner, a.ID, budget.MaxNanos, budgetAt.Add(time.Second))
		mustSettle(t, s, owner, b.ID, budget.MaxNanos, budgetAt.Add(time.Second))
		day, month, err = s.OwnerTotals(t.Context(), owner, budgetAt)
		if err != nil {
			t.Fatal(err)
		}
		checkUsage(t, "day after two settles at the maximum", day, budget.Usage{Spent: budget.MaxNanos})
		checkUsage(t, "month after two settles at the maximum", month, budget.Usage{Spent: budget.MaxNanos})
		err = s.ReserveOwnerBudget(t.Context(), newReservation(owner, "gpt-4o", 1, budgetAt), roomy)
		if !errors.Is(err, budget.ErrExceeded) {
			t.Fatalf("ReserveOwnerBudget with spending at the maximum: %v, want ErrExceeded", err)
		}
	})

	t.Run("ExpiryReleasesBudget", func(t *testing.T) {
		t.Parallel()
		s, owner := open(t), levqor.NewID("usr")
		ctx := t.Context()
		limits := budget.Limits{Daily: 10 * cent, Monthly: 100 * cent}
		a := newReservation(owner, "gpt-4o", 10*cent, budgetAt)
		a.ExpiresAt = budgetAt.Add(time.Minute)
		mustReserve(t, s, a, limits)

		err := s.ReserveOwnerBudget(ctx, newReservation(owner, "gpt-4o", 1, budgetAt.Add(30*time.Second)), limits)
		checkExceeded(t, "before the reservation expires", err, 10*cent, 0, 10*cent, 1)
		day, _ := usageAt(t, s, owner, budgetAt.Add(30*time.Second))
		checkUsage(t, "day before expiry", day, budget.Usage{Reserved: 10 * cent})

		if n, err := s.ExpireOwnerReservations(ctx, budgetAt.Add(30*time.Second)); err != nil || n != 0 {
			t.Fatalf("ExpireOwnerReservations before expiry: n=%d err=%v, want 0", n, err)
		}
		// Past its ExpiresAt an open reservation still counts until the expiry sweep
		// releases it (the worker sweeps every second).
		err = s.ReserveOwnerBudget(ctx, newReservation(owner, "gpt-4o", 1, budgetAt.Add(2*time.Minute)), limits)
		checkExceeded(t, "after expiry, before the sweep", err, 10*cent, 0, 10*cent, 1)
		day, _ = usageAt(t, s, owner, budgetAt.Add(2*time.Minute))
		checkUsage(t, "day after expiry, before the sweep", day, budget.Usage{Reserved: 10 * cent})
		if n, err := s.ExpireOwnerReservations(ctx, budgetAt.Add(2*time.Minute)); err != nil || n != 1 {
			t.Fatalf("ExpireOwnerReservations after expiry: n=%d err=%v, want 1", n, err)
		}
		day, _ = usageAt(t, s, owner, budgetAt.Add(2*time.Minute))
		checkUsage(t, "day after the sweep", day, budget.Usage{})
		if n, err := s.ExpireOwnerReservations(ctx, budgetAt.Add(2*time.Minute)); err != nil || n != 0 {
			t.Fatalf("ExpireOwnerReservations again: n=%d err=%v, want 0", n, err)
		}
		mustReserve(t, s, newReservation(owner, "gpt-4o", 10*cent, budgetAt.Add(2*time.Minute)), limits)

		// A late settle of the expired reservation still records what was spent, once.
		mustSettle(t, s, owner, a.ID, 4*cent, budgetAt.Add(3*time.Minute))
		if err := s.SettleOwnerBudget(ctx, owner, a.ID, 4*cent, budgetAt.Add(3*time.Minute)); !errors.Is(err, budget.ErrUnknownReservation) {
			t.Errorf("second settle of the expired reservation: %v, want ErrUnknownReservation", err)
		}
		day, _ = usageAt(t, s, owner, budgetAt.Add(3*time.Minute))
		checkUsage(t, "day after the late settle", day, budget.Usage{Spent: 4 * cent, Reserved: 10 * cent, ByModel: map[string]budget.Nanos{"gpt-4o": 4 * cent}})
	})

	t.Run("UsagePerPeriodAndModel", func(t *testing.T) {
		t.Parallel()
		s, owner := open(t), levqor.NewID("usr")
		spend(t, s, owner, "gpt-4o", 3*cent, budgetAt)
		spend(t, s, owner, "claude-sonnet", 2*cent, budgetAt.Add(time.Hour))
		spend(t, s, owner, "gpt-4o", 5*cent, budgetAt.AddDate(0, 0, -20))
		spend(t, s, owner, "gpt-4o-mini", 1*cent, budgetAt.AddDate(0, 0, -20))
		spend(t, s, owner, "gpt-4o", 50*cent, budgetAt.AddDate(0, -1, 0))                  // May
		spend(t, s, levqor.NewID("usr"), "gpt-4o", 100*cent, budgetAt)                     // someone else
		mustReserve(t, s, newReservation(owner, "claude-sonnet", 4*cent, budgetAt), roomy) // open
		mustReserve(t, s, newReservation(owner, "gpt-4o", 6*cent, budgetAt.AddDate(0, 0, -20)), roomy)

		day, _ := usageAt(t, s, owner, budgetAt.AddDate(0, 0, -20).Add(time.Minute))
		checkUsage(t, "day 20 days before", day, budget.Usage{Spent: 6 * cent, Reserved: 6 * cent,
			ByModel: map[string]budget.Nanos{"gpt-4o": 5 * cent, "gpt-4o-mini": 1 * cent}})

		// The reservation made 20 days ago expired long before budgetAt; it stops
		// counting once the expiry sweep releases it.
		if n, err := s.ExpireOwnerReservations(t.Context(), budgetAt); err != nil || n != 1 {
			t.Fatalf("ExpireOwnerReservations: n=%d err=%v, want 1", n, err)
		}
		day, month := usageAt(t, s, owner, budgetAt)
		checkUsage(t, "day", day, budget.Usage{Spent: 5 * cent, Reserved: 4 * cent,
			ByModel: map[string]budget.Nanos{"gpt-4o": 3 * cent, "claude-sonnet": 2 * cent}})
		checkUsage(t, "month", month, budget.Usage{Spent: 11 * cent, Reserved: 4 * cent,
			ByModel: map[string]budget.Nanos{"gpt-4o": 8 * cent, "claude-sonnet": 2 * cent, "gpt-4o-mini": 1 * cent}})
		// OwnerTotals: the same sums without the per-model breakdown.
		tday, tmonth, err := s.OwnerTotals(t.Context(), owner, budgetAt)
		if err != nil {
			t.Fatal(err)
		}
		checkUsage(t, "totals day", tday, budget.Usage{Spent: 5 * cent, Reserved: 4 * cent})
		checkUsage(t, "totals month", tmonth, budget.Usage{Spent: 11 * cent, Reserved: 4 * cent})
		day, _ = usageAt(t, s, owner, budgetAt.AddDate(0, 0, -20).Add(time.Minute))
		checkUsage(t, "day 20 days before, after the sweep", day, budget.Usage{Spent: 6 * cent,
			ByModel: map[string]budget.Nanos{"gpt-4o": 5 * cent, "gpt-4o-mini": 1 * cent}})
	})

	t.Run("Limits", func(t *testing.T) {
		t.Parallel()
		s, owner, other := open(t), levqor.NewID("usr"), levqor.NewID("usr")
		ctx := t.Context()
		check := func(what string, wantOK bool, want budget.Limits) {
			t.Helper()
			got, ok, err := s.OwnerLimits(ctx, owner)
			if err != nil || ok != wantOK || got != want {
				t.Errorf("%s: OwnerLimits = %+v, %v, %v; want %+v, %v, nil", what, got, ok, err, want, wantOK)
			}
		}
		check("never set", false, budget.Limits{})
		for _, l := range []budget.Limits{{Daily: 1 * cent, Monthly: 20 * cent}, {Daily: 3 * cent, Monthly: 40 * cent}, {}} {
			if err := s.SetOwnerLimits(ctx, owner, &l, budgetAt); err != nil {
				t.Fatalf("SetOwnerLimits(%+v): %v", l, err)
			}
			check("after set", true, l)
		}
		if _, ok, err := s.OwnerLimits(ctx, other); err != nil || ok {
			t.Errorf("OwnerLimits of another owner: ok=%v err=%v, want none", ok, err)
		}
		for range 2 { // removing twice is not an error
			if err := s.SetOwnerLimits(ctx, owner, nil, budgetAt); err != nil {
				t.Fatalf("SetOwnerLimits(nil): %v", err)
			}
			check("after removal", false, budget.Limits{})
		}
	})

	t.Run("RaceOneStore", func(t *testing.T) {
		t.Parallel()
		s, owner := open(t), levqor.NewID("usr")
		if n := raceReservations(t, owner, 100, s); n != 10 {
			t.Errorf("%d of 100 concurrent reservations succeeded, want exactly 10", n)
		}
		day, _ := usageAt(t, s, owner, budgetAt)
		checkUsage(t, "day after the race", day, budget.Usage{Reserved: 70 * cent})
	})

	t.Run("RaceTwoInstances", func(t *testing.T) {
		t.Parallel()
		if open(t).Engine() != "postgres" {
			t.Skip("only PostgreSQL serves several instances")
		}
		// Two pools on one schema, as two server instances.
		url := PostgresURL(t)
		var stores []budget.OwnerStore
		for range 2 {
			db, err := postgres.Open(t.Context(), url)
			if err != nil {
				t.Fatalf("open PostgreSQL: %v", err)
			}
			stores = append(stores, migrated(t, db))
		}
		owner := levqor.NewID("usr")
		if n := raceReservations(t, owner, 100, stores...); n != 10 {
			t.Errorf("%d of 100 concurrent reservations over two instances succeeded, want exactly 10", n)
		}
		for i, s := range stores {
			day, _ := usageAt(t, s, owner, budgetAt)
			checkUsage(t, "day after the race, instance "+string(rune('A'+i)), day, budget.Usage{Reserved: 70 * cent})
		}
	})
}
