package ai_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/ai"
	"github.com/levqor/levqor/store/storetest"
)

// BenchmarkStepGuardrail runs whole ai.complete steps against the local fake provider,
// first under the in-memory job budget alone, then under the job budget and the
// durable owner budget on a real SQLite file (what the worker gives every AI step).
// Besides each step's p50/p99 it reports the p50/p99/p99.9 of the time spent inside the
// budget's Reserve and Settle in each step — what the guardrails add to a step (issue
// #5 asks for at most 1 ms at p99) — and the p99 of the rest of the step.
func BenchmarkStepGuardrail(b *testing.B) {
	fake := newFakeProvider(b, testKey, fakeReply{Content: "ok", PromptTokens: 12, CompletionTokens: 2})
	conn, err := ai.New(ai.Config{BaseURL: fake.baseURL(), APIKey: testKey, DefaultModel: "gpt-4o-mini", MaxRetries: -1})
	if err != nil {
		b.Fatal(err)
	}
	reg, err := connectors.NewRegistry(conn)
	if err != nil {
		b.Fatal(err)
	}
	input := json.RawMessage(`{"prompt": "Say ok.", "max_tokens": 16}`)
	svc := budget.NewService(storetest.OpenSQLite(b), budget.Limits{Daily: budget.USDToNanos(1e6), Monthly: budget.USDToNanos(1e6)})

	run := func(b *testing.B, withOwner bool) {
		took, guard, rest := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
		for b.Loop() {
			jb, err := budget.NewJobBudget(1)
			if err != nil {
				b.Fatal(err)
			}
			var bud budget.Budget = jb
			if withOwner {
				bud = budget.NewAll(jb, svc.Owner(budget.Limits{Daily: budget.USDToNanos(1e6), Monthly: budget.USDToNanos(1e6)},
					"usr_bench", "job_bench", "ask", time.Minute))
			}
			timed := &timedBudget{Budget: bud}
			start := time.Now()
			if _, err := reg.Run(budget.WithBudget(context.Background(), timed), ai.Name, "complete", input); err != nil {
				b.Fatal(err)
			}
			took, guard = append(took, time.Since(start)), append(guard, timed.spent)
			rest = append(rest, took[len(took)-1]-timed.spent)
		}
		slices.Sort(took)
		slices.Sort(guard)
		slices.Sort(rest)
		b.ReportMetric(float64(rest[len(rest)*99/100].Microseconds()), "rest-p99-µs")
		b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(guard[len(guard)/2].Microseconds()), "guard-p50-µs")
		b.ReportMetric(float64(guard[len(guard)*99/100].Microseconds()), "guard-p99-µs")
		b.ReportMetric(float64(guard[len(guard)*999/1000].Microseconds()), "guard-p999-µs")
	}
	b.Run("job-budget", func(b *testing.B) { run(b, false) })
	b.Run("job+owner-sqlite", func(b *testing.B) { run(b, true) })
}

// timedBudget adds up the time its budget spends reserving and settling.
type timedBudget struct {
	budget.Budget
	spent time.Duration
}

func (t *timedBudget) ReserveModel(ctx context.Context, model string, usd float64) (budget.Reservation, error) {
	defer t.time(time.Now())
	return budget.Reserve(ctx, t.Budget, model, usd)
}

func (t *timedBudget) Settle(ctx context.Context, r budget.Reservation, actualUSD float64) error {
	defer t.time(time.Now())
	return t.Budget.Settle(ctx, r, actualUSD)
}

func (t *timedBudget) time(start time.Time) { t.spent += time.Since(start) }
