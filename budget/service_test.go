package budget_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/store/storetest"
)

// TestSoftThresholdWarnsOncePerPeriod: the warning is logged when settled spending
// first reaches 80 % of a period's limit, and not again in that period.
func TestSoftThresholdWarnsOncePerPeriod(t *testing.T) {
	var logs bytes.Buffer
	svc := budget.NewService(storetest.OpenSQLite(t), budget.Limits{Daily: budget.USDToNanos(1), Monthly: budget.USDToNanos(100)}).
		WithLogger(slog.New(slog.NewJSONHandler(&logs, nil)))
	var hooked []string
	svc.OnThreshold(func(_ context.Context, owner string, p budget.Period) { hooked = append(hooked, owner+" "+p.Name) })
	ctx := context.Background()
	limits, err := svc.Limits(ctx, "usr_soft")
	if err != nil {
		t.Fatal(err)
	}
	spend := func(usd float64) {
		t.Helper()
		o := svc.Owner(limits, "usr_soft", "job_soft", "ask", time.Minute)
		r, err := budget.Reserve(ctx, o, "gpt-4o-mini", usd)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Settle(ctx, r, usd); err != nil {
			t.Fatal(err)
		}
	}
	warnings := func() int { return strings.Count(logs.String(), "AI budget soft threshold reached") }

	spend(0.5)
	if warnings() != 0 {
		t.Fatalf("warned at 50 %%: %s", logs.String())
	}
	spend(0.35) // 85 % of the day
	if warnings() != 1 || !strings.Contains(logs.String(), `"period":"`+time.Now().UTC().Format("2006-01-02")+`"`) {
		t.Fatalf("want one warning for the day at 85 %%, got: %s", logs.String())
	}
	spend(0.1)
	if warnings() != 1 {
		t.Errorf("warned again in the same period: %s", logs.String())
	}
	if want := "usr_soft " + time.Now().UTC().Format("2006-01-02"); len(hooked) != 1 || hooked[0] != want {
		t.Errorf("OnThreshold calls = %q, want [%q]", hooked, want)
	}
}

// TestThresholdSeesOtherInstancesWithinTTL: spending settled by another instance is
// not seen while this process trusts its headroom (no read per settlement), and is
// seen — and warned about — once the headroom is older than 10 s.
func TestThresholdSeesOtherInstancesWithinTTL(t *testing.T) {
	st := storetest.OpenSQLite(t)
	var logs bytes.Buffer
	clock := time.Now()
	now := func() time.Time { return clock }
	limits := budget.Limits{Daily: budget.USDToNanos(1), Monthly: budget.USDToNanos(100)}
	svc := budget.NewService(st, limits).WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))).WithClock(now)
	other := budget.NewService(st, limits).WithLogger(slog.New(slog.DiscardHandler)).WithClock(now) // another instance
	ctx := context.Background()
	spend := func(s *budget.Service, usd float64) {
		t.Helper()
		o := s.Owner(limits, "usr_ttl", "job_ttl", "ask", time.Minute)
		r, err := budget.Reserve(ctx, o, "gpt-4o-mini", usd)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Settle(ctx, r, usd); err != nil {
			t.Fatal(err)
		}
	}
	warned := func() bool { return strings.Contains(logs.String(), "soft threshold reached") }

	spend(svc, 0.1)    // reads the totals: 0.7 USD of headroom before 80 %
	spend(other, 0.75) // 0.85 spent in all
	spend(svc, 0.01)   // within the headroom and 10 s: no read, no warning yet
	if warned() {
		t.Fatal("warned without reading the totals again")
	}
	clock = clock.Add(10 * time.Second)
	spend(svc, 0.01) // the headroom is stale: the totals are read, 0.87 of 1 USD
	if !warned() {
		t.Fatalf("no warning 10 s later at 87 %% of the day: %s", logs.String())
	}
}

// TestOnSpendNamesTheModel: every settlement on an owner's budget reaches OnSpend with
// the model its reservation named and the settled amount (metrics of spend by model),
// also through a budget.All that holds the owner budget.
func TestOnSpendNamesTheModel(t *testing.T) {
	svc := budget.NewService(storetest.OpenSQLite(t), budget.Limits{Daily: budget.USDToNanos(10), Monthly: budget.USDToNanos(100)})
	spent := map[string]budget.Nanos{}
	svc.OnSpend(func(model string, actual budget.Nanos) { spent[model] += actual })
	ctx := context.Background()
	limits, err := svc.Limits(ctx, "usr_spend")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		model          string
		reserve, spend float64
	}{{"gpt-4o-mini", 0.2, 0.05}, {"gpt-4o", 0.3, 0.25}, {"gpt-4o-mini", 0.1, 0.02}} {
		jb, err := budget.NewJobBudget(1)
		if err != nil {
			t.Fatal(err)
		}
		b := budget.NewAll(jb, svc.Owner(limits, "usr_spend", "job_spend", "ask", time.Minute))
		r, err := budget.Reserve(ctx, b, c.model, c.reserve)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Settle(ctx, r, c.spend); err != nil {
			t.Fatal(err)
		}
	}
	if spent["gpt-4o-mini"] != budget.USDToNanos(0.07) || spent["gpt-4o"] != budget.USDToNanos(0.25) || len(spent) != 2 {
		t.Errorf("OnSpend saw %v, want gpt-4o-mini 0.07 and gpt-4o 0.25 USD", spent)
	}
}

// TestOwnerDeferredReadsLimitsOnceAtFirstReservation: a step that never reserves
// reads no limits; one that reserves reads them once, and they are enforced.
func TestOwnerDeferredReadsLimitsOnceAtFirstReservation(t *testing.T) {
	svc := budget.NewService(storetest.OpenSQLite(t), budget.Limits{Daily: budget.USDToNanos(1), Monthly: budget.USDToNanos(100)})
	ctx := context.Background()
	loads := 0
	load := func(context.Context) budget.Limits {
		loads++
		return budget.Limits{Daily: budget.USDToNanos(0.5), Monthly: budget.USDToNanos(100)}
	}
	_ = svc.OwnerDeferred(load, "usr_lazy", "job_lazy", "idle", time.Minute)
	if loads != 0 {
		t.Fatalf("limits read %d times by a step that reserved nothing, want 0", loads)
	}
	o := svc.OwnerDeferred(load, "usr_lazy", "job_lazy", "ask", time.Minute)
	r, err := budget.Reserve(ctx, o, "gpt-4o-mini", 0.3)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Settle(ctx, r, 0.3); err != nil {
		t.Fatal(err)
	}
	if _, err := budget.Reserve(ctx, o, "gpt-4o-mini", 0.3); !errors.Is(err, budget.ErrExceeded) {
		t.Fatalf("0.6 of the loaded 0.5 daily limit: err = %v, want ErrExceeded (the loaded limits, not the service's 1.0)", err)
	}
	if loads != 1 {
		t.Errorf("limits read %d times, want 1", loads)
	}
}
