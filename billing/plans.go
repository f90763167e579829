package billing

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// FreePlan is the id of the plan without a subscription: the one an owner falls back
// to when a subscription ends or its payment fails past the grace period.
const FreePlan = "free"

// Plan is one entry of the price table: what Stripe charges for it and what it allows.
type Plan struct {
	ID        string  `json:"id"`         // stored as the user's plan, e.g. pro_monthly
	Name      string  `json:"name"`       // shown in emails, e.g. Pro
	PriceID   string  `json:"price_id"`   // Stripe price; "" for the free plan
	AmountUSD float64 `json:"amount_usd"` // what the price charges per interval (documentation and emails)
	Interval  string  `json:"interval"`   // month, year, or "" for free
	Limits    Limits  `json:"limits"`
}

// Limits are what a plan allows its owner.
type Limits struct {
	MonthlyAIUSD  float64 `json:"monthly_ai_usd"`  // AI spending per calendar month
	DailyAIUSD    float64 `json:"daily_ai_usd"`    // AI spending per UTC day
	JobsPerMinute int     `json:"jobs_per_minute"` // job intake per owner
}

// DefaultPlans is the price table without LEVQOR_PLANS: the seed's prices (Pro at $19 a
// month or $190 a year). The AI budgets are spending caps sized so that the price
// covers them; the price ids are placeholders to be replaced by the live ones.
func DefaultPlans() []Plan {
	return []Plan{
		{ID: FreePlan, Name: "Free", Limits: Limits{MonthlyAIUSD: 2, DailyAIUSD: 0.5, JobsPerMinute: 10}},
		{ID: "pro_monthly", Name: "Pro", PriceID: "price_pro_monthly", AmountUSD: 19, Interval: "month",
			Limits: Limits{MonthlyAIUSD: 15, DailyAIUSD: 2, JobsPerMinute: 120}},
		{ID: "pro_annual", Name: "Pro (annual)", PriceID: "price_pro_annual", AmountUSD: 190, Interval: "year",
			Limits: Limits{MonthlyAIUSD: 15, DailyAIUSD: 2, JobsPerMinute: 120}},
	}
}

// MaxPlans bounds the price table.
const MaxPlans = 32

var planID = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// ParsePlans reads a JSON price table (a list of Plan) and checks it: unique ids and
// price ids, a free plan without a price, every other plan with one, limits in range.
func ParsePlans(text string) ([]Plan, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	var plans []Plan
	if err := dec.Decode(&plans); err != nil {
		return nil, fmt.Errorf("want a JSON list of plans: %w", err)
	}
	return plans, CheckPlans(plans)
}

// CheckPlans checks a price table (see ParsePlans).
func CheckPlans(plans []Plan) error {
	if len(plans) == 0 || len(plans) > MaxPlans {
		return fmt.Errorf("want 1 to %d plans, got %d", MaxPlans, len(plans))
	}
	ids, prices := map[string]bool{}, map[string]bool{}
	var errs []error
	for _, p := range plans {
		switch {
		case !planID.MatchString(p.ID):
			errs = append(errs, fmt.Errorf("plan id %q: want 1-64 of a-z 0-9 _ -", p.ID))
		case ids[p.ID]:
			errs = append(errs, fmt.Errorf("plan %q is listed twice", p.ID))
		case p.ID == FreePlan && p.PriceID != "":
			errs = append(errs, errors.New("the free plan has no price_id"))
		case p.ID != FreePlan && !strings.HasPrefix(p.PriceID, "price_"):
			errs = append(errs, fmt.Errorf("plan %q: want a Stripe price_id (price_…)", p.ID))
		case p.PriceID != "" && prices[p.PriceID]:
			errs = append(errs, fmt.Errorf("plan %q: price_id %s is used twice", p.ID, p.PriceID))
		case p.Limits.MonthlyAIUSD < 0 || p.Limits.MonthlyAIUSD > 1e6 || p.Limits.DailyAIUSD < 0 || p.Limits.DailyAIUSD > 1e6:
			errs = append(errs, fmt.Errorf("plan %q: AI budgets want 0 to 1000000 USD", p.ID))
		case p.Limits.JobsPerMinute < 1 || p.Limits.JobsPerMinute > 1e6:
			errs = append(errs, fmt.Errorf("plan %q: jobs_per_minute wants 1 to 1000000", p.ID))
		}
		ids[p.ID], prices[p.PriceID] = true, p.PriceID != ""
	}
	if !ids[FreePlan] {
		errs = append(errs, errors.New("the table needs a plan with id free"))
	}
	return errors.Join(errs...)
}
