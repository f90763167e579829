package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/levqor/levqor/billing"
	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/server"
)

// TestListPlans: GET /api/v1/billing/plans answers without a key, from the configured
// table in its order, with prices in cents and no Stripe price id; it is served when
// Stripe is not configured (checkout then says 503), and it is limited per IP.
func TestListPlans(t *testing.T) {
	plans := []billing.Plan{
		{ID: billing.FreePlan, Name: "Free", Limits: billing.Limits{MonthlyAIUSD: 1, DailyAIUSD: 0.25, JobsPerMinute: 5}},
		{ID: "team_monthly", Name: "Team", PriceID: "price_secret_team", AmountUSD: 49.99, Interval: "month",
			Limits: billing.Limits{MonthlyAIUSD: 40, DailyAIUSD: 4, JobsPerMinute: 300}},
	}
	b := setup(t, withAdmin, func(o *testOptions) {
		svc, err := billing.NewService(o.Store, o.Store, billing.Config{PublicURL: "https://levqor.test", Plans: plans,
			Grace: time.Hour, Logger: o.Logger})
		if err != nil {
			t.Fatal(err)
		}
		o.Billing = svc
		o.Limits = &server.Limits{IP: limiter.Rate{Period: time.Minute, Limit: 3}, Global: limiter.Rate{Period: time.Minute, Limit: 1000},
			Key: limiter.Rate{Period: time.Minute, Limit: 1000}, Store: memory.NewStore()}
	})
	resp, body := b.do(t, "GET", "/api/v1/billing/plans", http.Header{}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET plans without a key: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "price_") {
		t.Errorf("the plan list shows a Stripe price id: %s", body)
	}
	var got api.PlanList
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Plans) != 2 {
		t.Fatalf("plans: %s", body)
	}
	free, team := got.Plans[0], got.Plans[1]
	if free.Id != "free" || free.AmountCents != 0 || free.Interval != nil || free.Checkout || free.Limits.JobsPerMinute != 5 || free.Limits.DailyAiUsd != 0.25 {
		t.Errorf("free plan: %+v", free)
	}
	if team.Id != "team_monthly" || team.Name != "Team" || team.AmountCents != 4999 || team.Currency != "USD" ||
		team.Interval == nil || *team.Interval != "month" || !team.Checkout ||
		team.Limits != (api.PlanLimits{MonthlyAiUsd: 40, DailyAiUsd: 4, JobsPerMinute: 300}) {
		t.Errorf("team plan: %+v", team)
	}

	// Without Stripe, a user's checkout for a listed plan is 503, readable as such.
	u := b.createUser(t, "visitor@example.com")
	key := b.createKey(t, u.Id, "users:write").Key
	resp, body = b.do(t, "POST", "/api/v1/billing/checkout", hdr(key, "application/json"), strings.NewReader(`{"plan":"team_monthly"}`))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "not configured") {
		t.Errorf("checkout without Stripe: %d %s", resp.StatusCode, body)
	}

	// Public, so limited per IP: two more requests use the budget of 3 up.
	var last int
	for range 3 {
		resp, _ = b.do(t, "GET", "/api/v1/billing/plans", http.Header{}, nil)
		last = resp.StatusCode
	}
	if last != http.StatusTooManyRequests {
		t.Errorf("plans past the per-IP limit: %d, want 429", last)
	}
}
