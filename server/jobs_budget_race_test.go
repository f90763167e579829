package server_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/ai"
	"github.com/levqor/levqor/connectors/ai/aitest"
	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/gen/client"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/outbound"
	"github.com/levqor/levqor/server"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
)

// exactChat is aitest's Chat Completions fake, for the key withBudgetedEngine
// configures: a call's settled cost equals its reservation, so a budget of 10 calls
// fits 10.
func exactChat(t *testing.T) (*httptest.Server, *atomic.Int64) {
	c := aitest.NewExactChat(t, "sk-test", 0)
	return c.Server, &c.Calls
}

// withBudgetedEngine runs a job engine with the ai connector and owner budgets on st.
func withBudgetedEngine(t *testing.T, st store.Store, chatURL string) func(*testOptions) {
	return func(o *testOptions) {
		o.Store = st
		guard, err := outbound.NewGuard(nil)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := ai.New(ai.Config{BaseURL: chatURL + "/v1", APIKey: "sk-test", DefaultModel: "gpt-4o-mini", MaxRetries: -1})
		if err != nil {
			t.Fatal(err)
		}
		reg, err := connectors.NewRegistry(core.New(), conn)
		if err != nil {
			t.Fatal(err)
		}
		o.Budgets = budget.NewService(st, budget.Limits{Daily: 1e9, Monthly: 1e9})
		e := startEngine(t, jobs.Config{
			Store: st, Registry: reg, Guard: guard, ShutdownTimeout: 5 * time.Second,
			Worker:  jobs.WorkerOptions{Concurrency: 16, Lease: 3 * time.Second, Poll: 50 * time.Millisecond},
			Budgets: o.Budgets,
			Encode:  server.EncodeJob, Logger: o.Logger,
		})
		o.Jobs, o.Hub = e.Service, e.Hub
	}
}

// budgetRace submits 100 AI jobs at once, spread over the instances, for one owner
// whose daily budget fits exactly 10 calls: exactly 10 succeed, the rest fail
// budget_exceeded, the provider is called 10 times and the settled spend is within
// the budget.
func budgetRace(t *testing.T, instances []*bundle, calls *atomic.Int64) {
	ctx := t.Context()
	ten := instances[0].newTenant(t, "racer@example.com")
	aiStep := step("ask", "ai", "complete", map[string]any{"prompt": "Say hi to the racer.", "max_tokens": 40})

	perCall, err := aitest.CallCost("gpt-4o-mini", "Say hi to the racer.", 40)
	if err != nil {
		t.Fatal(err)
	}
	limit := budget.Limits{Daily: 10 * perCall, Monthly: 10 * perCall}
	if err := instances[0].Store.SetOwnerLimits(ctx, ten.owner, &limit, time.Now()); err != nil {
		t.Fatal(err)
	}

	// Jobs run while others are still being submitted: once the budget is spent,
	// intake itself refuses (402) — the other half of the same guarantee.
	ids := make([]string, 100)
	codes := make([]int, 100)
	body := bodyBytes(t, map[string]any{"workflow": "race", "payload": map[string]any{}, "steps": []any{aiStep}})
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, acc, err := instances[i%len(instances)].tryIntake(ctx, ten.key, body, "")
			if err != nil {
				t.Errorf("intake %d: %v", i, err)
			}
			codes[i], ids[i] = code, acc.JobId
		}()
	}
	wg.Wait()

	succeeded, exceeded := 0, 0
	for i, id := range ids {
		if codes[i] == http.StatusPaymentRequired {
			exceeded++
			continue
		}
		if codes[i] != http.StatusAccepted {
			t.Fatalf("intake %d: status %d", i, codes[i])
		}
		b := instances[i%len(instances)]
		j := b.waitJob(t, ten.key, id, 30*time.Second, "terminal", func(j client.Job) bool {
			return j.Status == "succeeded" || j.Status == "failed" || j.Status == "canceled"
		})
		switch {
		case j.Status == "succeeded":
			succeeded++
		case j.Error != nil && j.Error.Code == ai.CodeBudgetExceeded:
			exceeded++
		default:
			t.Errorf("job %s ended %s with %+v", id, j.Status, j.Error)
		}
	}
	if succeeded != 10 || exceeded != 90 {
		t.Errorf("%d succeeded and %d were refused (402 at intake or budget_exceeded when run), want exactly 10 and 90", succeeded, exceeded)
	}
	if calls.Load() != 10 {
		t.Errorf("the provider was called %d times, want 10", calls.Load())
	}
	day, _, err := instances[0].Store.OwnerUsage(ctx, ten.owner, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if day.Spent > limit.Daily || day.Spent != 10*perCall || day.Reserved != 0 {
		t.Errorf("settled %d nano-USD (reserved %d) against a budget of %d; want exactly 10 calls' worth", day.Spent, day.Reserved, limit.Daily)
	}
}

func TestOwnerBudgetRaceSQLite(t *testing.T) {
	chat, calls := exactChat(t)
	b := setup(t, withBudgetedEngine(t, storetest.OpenSQLite(t), chat.URL), withAdmin)
	budgetRace(t, []*bundle{b}, calls)
	usageAfterRace(t, b)
}

// usageAfterRace: with the budget used up, usage shows it, intake refuses AI jobs
// with 402 (other jobs still run), and an admin override makes room again.
func usageAfterRace(t *testing.T, b *bundle) {
	ten := b.newTenant(t, "racer@example.com") // the same owner (upsert by email), a new key
	resp, body := b.do(t, "GET", "/api/v1/usage", hdr(ten.key, ""), nil)
	u := decode[client.Usage](t, resp, body, http.StatusOK)
	if u.OwnerId != ten.owner || u.Day.RemainingUsd != 0 || u.Day.SpentUsd != u.Day.LimitUsd || u.Day.ByModel["gpt-4o-mini"] != u.Day.SpentUsd || u.Month.SpentUsd != u.Day.SpentUsd {
		t.Fatalf("usage after the race = %+v", u)
	}
	aiJob := map[string]any{"workflow": "more", "payload": map[string]any{}, "steps": []any{step("ask", "ai", "complete", map[string]any{"prompt": "hi", "max_tokens": 5})}}
	resp, body = b.intake(t, ten.key, aiJob, "")
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusPaymentRequired || p.Code != "budget_exceeded" || p.Type != "https://levqor.ai/problems/budget-exceeded" {
		t.Fatalf("AI intake with no budget left: %d %s", resp.StatusCode, body)
	}
	if resp, body := b.intake(t, ten.key, echoJob("free"), ""); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("a job without AI steps: %d %s", resp.StatusCode, body)
	}
	other := b.newTenant(t, "bystander@example.com")
	if resp, _ := b.do(t, "GET", "/api/v1/usage?owner_id="+ten.owner, hdr(other.key, ""), nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("another owner's usage: %d, want 403", resp.StatusCode)
	}
	if resp, _ := b.do(t, "PUT", "/api/v1/budgets/"+ten.owner, hdr(ten.key, "application/json"), strings.NewReader(`{"daily_usd":100,"monthly_usd":100}`)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a non-admin raising its own budget: %d, want 403", resp.StatusCode)
	}
	resp, body = b.do(t, "PUT", "/api/v1/budgets/"+ten.owner, hdr(adminKey, "application/json"), strings.NewReader(`{"daily_usd":1,"monthly_usd":5}`))
	if l := decode[client.BudgetLimits](t, resp, body, http.StatusOK); l.DailyUsd != 1 || l.MonthlyUsd != 5 {
		t.Fatalf("override = %+v", l)
	}
	resp, body = b.do(t, "GET", "/api/v1/usage?owner_id="+ten.owner, hdr(adminKey, ""), nil)
	if u := decode[client.Usage](t, resp, body, http.StatusOK); u.Day.LimitUsd != 1 || u.Month.LimitUsd != 5 || u.Day.RemainingUsd <= 0 {
		t.Fatalf("usage after the override = %+v", u)
	}
	if resp, body := b.intake(t, ten.key, aiJob, ""); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("AI intake after the override: %d %s", resp.StatusCode, body)
	}
	if resp, _ := b.do(t, "DELETE", "/api/v1/budgets/"+ten.owner, hdr(adminKey, ""), nil); resp.StatusCode != http.StatusNoContent {
		t.Errorf("removing the override: %d", resp.StatusCode)
	}
}

func TestOwnerBudgetRacePostgres(t *testing.T) {
	chat, calls := exactChat(t)
	b := setup(t, withBudgetedEngine(t, storetest.OpenPostgres(t), chat.URL), withAdmin)
	budgetRace(t, []*bundle{b}, calls)
}

// TestOwnerBudgetRaceTwoInstancesPostgres: two servers, each with its own pool and
// workers, on one PostgreSQL schema.
func TestOwnerBudgetRaceTwoInstancesPostgres(t *testing.T) {
	chat, calls := exactChat(t)
	url := storetest.PostgresURL(t)
	open := func() store.Store {
		st, err := store.Open(t.Context(), configFor(url))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if err := st.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		return st
	}
	a := setup(t, withBudgetedEngine(t, open(), chat.URL), withAdmin)
	z := setup(t, withBudgetedEngine(t, open(), chat.URL), withAdmin)
	budgetRace(t, []*bundle{a, z}, calls)
}

// configFor is the store options that select the PostgreSQL database at url.
func configFor(url string) store.Options {
	return store.Options{Engine: "postgres", PostgresURL: url}
}

// TestIntakeRefusesJobThatCannotFit: intake sums the worst case of a job's AI steps'
// first calls and refuses (402, naming what remains) a job that cannot fit the owner's
// remaining budget, while one that fits is accepted.
func TestIntakeRefusesJobThatCannotFit(t *testing.T) {
	chat, calls := exactChat(t)
	b := setup(t, withBudgetedEngine(t, storetest.OpenSQLite(t), chat.URL), withAdmin)
	ten := b.newTenant(t, "fitter@example.com")
	input := map[string]any{"prompt": "Say hi to the racer.", "max_tokens": 40}
	perCall, err := aitest.CallCost("gpt-4o-mini", "Say hi to the racer.", 40)
	if err != nil {
		t.Fatal(err)
	}
	limit := budget.Limits{Daily: perCall * 3 / 2, Monthly: 100 * perCall}
	if err := b.Store.SetOwnerLimits(t.Context(), ten.owner, &limit, time.Now()); err != nil {
		t.Fatal(err)
	}

	two := map[string]any{"workflow": "two", "payload": map[string]any{}, "steps": []any{step("a", "ai", "complete", input), step("b", "ai", "complete", input)}}
	resp, body := b.intake(t, ten.key, two, "")
	p := problemOf(t, resp, body)
	if resp.StatusCode != http.StatusPaymentRequired || p.Code != "budget_exceeded" {
		t.Fatalf("two AI steps over a budget for one and a half: %d %s", resp.StatusCode, body)
	}
	remaining := fmt.Sprintf("$%.6f remaining", (perCall * 3 / 2).USD())
	if p.Detail == nil || !strings.Contains(*p.Detail, remaining) {
		t.Errorf("detail %v does not name the remaining %q", p.Detail, remaining)
	}
	one := map[string]any{"workflow": "one", "payload": map[string]any{}, "steps": []any{step("a", "ai", "complete", input)}}
	resp, body = b.intake(t, ten.key, one, "")
	acc := decode[client.JobAccepted](t, resp, body, http.StatusAccepted)
	if j := b.waitStatus(t, ten.key, acc.JobId, "succeeded", 20*time.Second); j.CostUsd == nil || *j.CostUsd <= 0 {
		t.Errorf("the job that fits: cost %v", j.CostUsd)
	}
	if calls.Load() != 1 {
		t.Errorf("the provider was called %d times, want 1 (the refused job made no call)", calls.Load())
	}
}
