package ai_test

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/ai"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
)

// TestImplausibleUsageIsChargedTheReservation runs AI steps through the registry
// under a job budget and an owner's durable budget (as the worker does), against a
// fake provider that reports usage no request could produce: negative counts (which
// would lower the owner's spending), counts past the request's bound, and MaxInt64
// (which would overflow). Each such call is charged its reservation, with a warning
// that names no secret; the owner's spending only ever grows, by exactly that. An
// honest report is charged as reported.
func TestImplausibleUsageIsChargedTheReservation(t *testing.T) {
	for _, engine := range []struct {
		name string
		open func(testing.TB) store.Store
	}{{"SQLite", storetest.OpenSQLite}, {"PostgreSQL", storetest.OpenPostgres}} {
		t.Run(engine.name, func(t *testing.T) {
			st := engine.open(t)
			const prompt = "Name a prime number."
			msgs := []ai.Message{{Role: "user", Content: prompt}}
			est := estimate(t, "gpt-4o", msgs...)
			worst := cost(est, 500) // 500: the configured default max_tokens
			for _, c := range []struct {
				name               string
				prompt, completion int64
				honest             bool
			}{
				{"NegativePrompt", -1_000_000, 5, false},
				{"NegativeCompletion", 10, -1_000_000, false},
				{"BothNegative", -5, -5, false},
				{"MaxInt64Prompt", math.MaxInt64, 1, false},
				{"MaxInt64Both", math.MaxInt64, math.MaxInt64, false},
				{"CompletionOverMaxTokens", 10, 501, false},
				{"PromptOverTheBytesSent", 10_000, 1, false},
				{"Honest", est, 500, true}, // the very worst case is still honest
			} {
				t.Run(c.name, func(t *testing.T) {
					var logs bytes.Buffer
					fake := newFakeProvider(t, testKey, fakeReply{Content: "7", PromptTokens: c.prompt, CompletionTokens: c.completion})
					conn, err := ai.New(ai.Config{BaseURL: fake.baseURL(), APIKey: testKey, DefaultModel: "gpt-4o", DefaultMaxTokens: 500,
						Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
					if err != nil {
						t.Fatal(err)
					}
					reg, err := connectors.NewRegistry(conn)
					if err != nil {
						t.Fatal(err)
					}
					limits := budget.Limits{Daily: budget.USDToNanos(100), Monthly: budget.USDToNanos(100)}
					svc := budget.NewService(st, limits).WithLogger(slog.New(slog.DiscardHandler))
					owner := "usr_" + strings.ToLower(c.name)
					spent := func() budget.Nanos {
						t.Helper()
						day, month, err := st.OwnerTotals(t.Context(), owner, time.Now())
						if err != nil {
							t.Fatal(err)
						}
						if day.Spent != month.Spent || day.Reserved != 0 {
							t.Fatalf("day %+v, month %+v", day, month)
						}
						return day.Spent
					}
					jb, err := budget.NewJobBudget(10)
					if err != nil {
						t.Fatal(err)
					}
					for i := range 3 {
						before := spent()
						all := budget.NewAll(jb, svc.Owner(limits, owner, "job_usage", "ask", time.Minute))
						ctx := connectors.WithStep(budget.WithBudget(context.Background(), all), connectors.Step{JobID: "job_usage", StepID: "ask", OwnerID: owner, Attempt: 1})
						if _, err := reg.Run(ctx, ai.Name, "complete", []byte(`{"prompt": "`+prompt+`"}`)); err != nil {
							t.Fatalf("call %d: %v", i, err)
						}
						want := worst
						if c.honest {
							want = cost(c.prompt, c.completion)
						}
						after := spent()
						if after < before {
							t.Fatalf("call %d lowered the owner's spending: %d → %d nanos", i, before, after)
						}
						if after-before != budget.USDToNanos(want) {
							t.Fatalf("call %d charged the owner %d nanos; want %d ($%.9f)", i, after-before, budget.USDToNanos(want), want)
						}
					}
					if got := jb.SpentUSD(); !near(got, 3*func() float64 {
						if c.honest {
							return cost(c.prompt, c.completion)
						}
						return worst
					}()) {
						t.Fatalf("job spent $%.9f", got)
					}
					warned := strings.Count(logs.String(), "usage the request cannot have produced")
					if c.honest && warned != 0 || !c.honest && warned != 3 {
						t.Fatalf("%d warnings for 3 calls (honest %v): %s", warned, c.honest, logs.String())
					}
					if strings.Contains(logs.String(), testKey) || strings.Contains(logs.String(), prompt) {
						t.Fatalf("the warning carries the key or the prompt: %s", logs.String())
					}
					if !c.honest && !strings.Contains(logs.String(), `"job_id":"job_usage"`) {
						t.Fatalf("the warning does not name the job: %s", logs.String())
					}
				})
			}
		})
	}
}

// TestImplausibleUsageInAnErrorIsChargedTheReservation: a failed call whose error body
// reports negative usage is charged its reservation, not a negative amount.
func TestImplausibleUsageInAnErrorIsChargedTheReservation(t *testing.T) {
	b := setup(t, []fakeReply{{Status: 500, Raw: `{"error": {"message": "boom", "type": "server_error", "code": null},
		"usage": {"prompt_tokens": -900000000, "completion_tokens": 40, "total_tokens": 49}}`}},
		func(c *ai.Config) { c.MaxRetries = -1; c.Logger = slog.New(slog.DiscardHandler) })
	_, err := b.run(b.ctx, "complete", `{"prompt": "hello"}`)
	wantStepError(t, err, connectors.CodeUpstreamError, true)
	b.wantSpent(t, cost(estimate(t, "gpt-4o", ai.Message{Role: "user", Content: "hello"}), 500))
}
