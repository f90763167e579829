package server

import (
	"context"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/ulule/limiter/v3"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/billing"
	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/keys"
)

// errNoBilling answers the billing routes of a server built without billing.
var errNoBilling = levqor.Errorf(levqor.EUnavailable, "Billing is not configured on this server.")

// GetBilling implements api.StrictServerInterface.
func (s *handlers) GetBilling(ctx context.Context, _ api.GetBillingRequestObject) (api.GetBillingResponseObject, error) {
	if s.billing == nil {
		return nil, errNoBilling
	}
	st, err := s.billing.Status(ctx, principalFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.GetBilling200JSONResponse(toAPIBilling(st)), nil
}

// toAPIBilling is the API view of an owner's billing state.
func toAPIBilling(st billing.Status) api.Billing {
	out := api.Billing{Plan: st.Plan.ID, Status: st.Status, Limits: api.PlanLimits{
		MonthlyAiUsd: st.Plan.Limits.MonthlyAIUSD, DailyAiUsd: st.Plan.Limits.DailyAIUSD, JobsPerMinute: st.Plan.Limits.JobsPerMinute}}
	if st.SubscribedPlan != "" {
		out.SubscribedPlan = &st.SubscribedPlan
	}
	if !st.CurrentPeriodEnd.IsZero() {
		out.CurrentPeriodEnd = &st.CurrentPeriodEnd
	}
	if !st.GraceUntil.IsZero() {
		out.GraceUntil = &st.GraceUntil
	}
	return out
}

// ListPlans implements api.StrictServerInterface. It shows the price table without
// Stripe's price ids, and answers whether or not Stripe is configured: the pricing
// page lists the plans either way, and checkout says 503 on its own.
func (s *handlers) ListPlans(_ context.Context, _ api.ListPlansRequestObject) (api.ListPlansResponseObject, error) {
	if s.billing == nil {
		return nil, errNoBilling
	}
	plans := s.billing.Plans()
	out := api.ListPlans200JSONResponse{Plans: make([]api.PlanOffer, 0, len(plans))}
	for _, p := range plans {
		offer := api.PlanOffer{Id: p.ID, Name: p.Name, AmountCents: int64(math.Round(p.AmountUSD * 100)),
			Currency: api.PlanOfferCurrencyUSD, Checkout: p.ID != billing.FreePlan,
			Limits: api.PlanLimits{MonthlyAiUsd: p.Limits.MonthlyAIUSD, DailyAiUsd: p.Limits.DailyAIUSD, JobsPerMinute: p.Limits.JobsPerMinute}}
		if p.Interval != "" {
			offer.Interval = &p.Interval
		}
		out.Plans = append(out.Plans, offer)
	}
	return out, nil
}

// CreateCheckout implements api.StrictServerInterface.
func (s *handlers) CreateCheckout(ctx context.Context, req api.CreateCheckoutRequestObject) (api.CreateCheckoutResponseObject, error) {
	if s.billing == nil {
		return nil, errNoBilling
	}
	url, err := s.billing.Checkout(ctx, principalFrom(ctx), req.Body.Plan)
	if err != nil {
		return nil, err
	}
	return api.CreateCheckout200JSONResponse{Url: url}, nil
}

// CreateBillingPortal implements api.StrictServerInterface.
func (s *handlers) CreateBillingPortal(ctx context.Context, _ api.CreateBillingPortalRequestObject) (api.CreateBillingPortalResponseObject, error) {
	if s.billing == nil {
		return nil, errNoBilling
	}
	url, err := s.billing.Portal(ctx, principalFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.CreateBillingPortal200JSONResponse{Url: url}, nil
}

// StripeWebhook implements api.StrictServerInterface. The signature covers the body
// byte for byte, so it is verified over the body as received (kept by guardJSON), not
// over the decoded request.
func (s *handlers) StripeWebhook(ctx context.Context, req api.StripeWebhookRequestObject) (api.StripeWebhookResponseObject, error) {
	if s.billing == nil {
		return nil, errNoBilling
	}
	info := requestInfoFrom(ctx)
	if info == nil || info.body == nil {
		return nil, levqor.Errorf(levqor.EInvalid, "The body is not a JSON Stripe event.")
	}
	signature := ""
	if req.Params.StripeSignature != nil {
		signature = *req.Params.StripeSignature
	}
	r, err := s.billing.Webhook(ctx, info.body, signature)
	if err != nil {
		return nil, err
	}
	out := api.StripeWebhook200JSONResponse{Received: true}
	if r.Duplicate {
		out.Duplicate = &r.Duplicate
	}
	return out, nil
}

// planIntake limits each owner's job intake to its plan's jobs per minute, over the
// rate-limit store (Redis when configured, so every instance counts together). There
// is one limiter per rate in the price table, made when first needed.
type planIntake struct {
	rl     *rateLimits
	store  limiter.Store
	mu     sync.Mutex
	byRate map[int]*limiter.Limiter
}

func newPlanIntake(rl *rateLimits, l *Limits) *planIntake {
	if rl == nil || l == nil || l.Store == nil {
		return nil
	}
	return &planIntake{rl: rl, store: l.Store, byRate: map[int]*limiter.Limiter{}}
}

func (p *planIntake) limiter(perMinute int) *limiter.Limiter {
	p.mu.Lock()
	defer p.mu.Unlock()
	lim, ok := p.byRate[perMinute]
	if !ok {
		lim = limiter.New(p.store, limiter.Rate{Period: time.Minute, Limit: int64(perMinute)})
		p.byRate[perMinute] = lim
	}
	return lim
}

// takePlanIntake counts n jobs (one intake, or a batch's) against the owner's plan
// (owners with a billing account; others are limited by the per-key limit only)
// and refuses them with 429 and Retry-After past the plan's jobs per minute.
func (s *handlers) takePlanIntake(ctx context.Context, p keys.Principal, n int) error {
	if s.billing == nil || s.planIntake == nil || p.OwnerID == "" {
		return nil
	}
	perMinute, ok, err := s.billing.JobsPerMinute(ctx, p.OwnerID)
	if err != nil || !ok {
		return err
	}
	h := http.Header{}
	if info := requestInfoFrom(ctx); info != nil && info.header != nil {
		h = info.header
	}
	return s.planIntake.rl.take(ctx, h, quota{name: "plan:" + p.OwnerID, lim: s.planIntake.limiter(perMinute), n: int64(n)})
}
