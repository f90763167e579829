package budget_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/store/storetest"
)

// BenchmarkOwnerReserveSettleSQLite measures what the durable owner budget adds to
// one AI call — a reservation and its settlement in the owner's ledger, on a real
// SQLite file — and reports the p99 (issue #5 asks ≤ 1 ms) besides the mean.
func BenchmarkOwnerReserveSettleSQLite(b *testing.B) {
	st := storetest.OpenSQLite(b)
	svc := budget.NewService(st, budget.Limits{Daily: budget.USDToNanos(1e6), Monthly: budget.USDToNanos(1e6)})
	ctx := context.Background()
	limits, err := svc.Limits(ctx, "usr_bench")
	if err != nil {
		b.Fatal(err)
	}
	owner := svc.Owner(limits, "usr_bench", "job_bench", "ask", time.Minute)
	took := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		r, err := budget.Reserve(ctx, owner, "gpt-4o-mini", 0.0004)
		if err != nil {
			b.Fatal(err)
		}
		if err := owner.Settle(ctx, r, 0.0003); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
}
