package server

import (
	"context"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/billing"
	"github.com/levqor/levqor/gen/api"
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
	r, err := s.billing.Webhook(ctx, info.body, req.Params.StripeSignature)
	if err != nil {
		return nil, err
	}
	out := api.StripeWebhook200JSONResponse{Received: true}
	if r.Duplicate {
		out.Duplicate = &r.Duplicate
	}
	return out, nil
}
