package billing

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v86"
)

// Mismatch is one difference between Stripe and Levqor's records.
type Mismatch struct {
	UserID, CustomerID, ObjectID string // ObjectID: the subscription or invoice
	Field                        string // plan, status, price, invoice_status, customer
	Local, Stripe                string
	Fixed                        bool // --fix wrote Stripe's value
}

func (m Mismatch) String() string {
	s := fmt.Sprintf("MISMATCH user=%s customer=%s object=%s field=%s local=%q stripe=%q",
		orDash(m.UserID), orDash(m.CustomerID), orDash(m.ObjectID), m.Field, m.Local, m.Stripe)
	if m.Fixed {
		s += " fixed=true"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Report is what Reconcile found.
type Report struct {
	Subscriptions, Invoices int // read from Stripe
	Mismatches              []Mismatch
}

// OK reports whether nothing is left differing (every mismatch was fixed, or none found).
func (r Report) OK() bool {
	for _, m := range r.Mismatches {
		if !m.Fixed {
			return false
		}
	}
	return true
}

// Mode is "test" or "live", from the secret key's prefix ("" without a key).
func (s *Service) Mode() string {
	switch {
	case strings.HasPrefix(s.cfg.SecretKey, "sk_live_"), strings.HasPrefix(s.cfg.SecretKey, "rk_live_"):
		return "live"
	case s.cfg.SecretKey != "":
		return "test"
	}
	return ""
}

// Reconcile compares Stripe's subscriptions and invoices created since since with the
// stored accounts (and the accounts changed since then with their subscriptions in
// Stripe). With fix, each account that differs is given Stripe's subscription state.
func (s *Service) Reconcile(ctx context.Context, since time.Time, fix bool) (Report, error) {
	if !s.secretSet {
		return Report{}, errNotConfigured
	}
	accounts, err := s.store.BillingAccounts(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("reconcile: read accounts: %w", err)
	}
	byCustomer := map[string]Account{}
	for _, a := range accounts {
		byCustomer[a.CustomerID] = a
	}
	var rep Report
	seen := map[string]bool{} // subscriptions compared

	compare := func(acct Account, sub *stripe.Subscription) error {
		seen[sub.ID] = true
		want := s.withSubscription(acct, sub)
		var diffs []Mismatch
		for _, f := range []struct{ name, local, stripe string }{
			{"plan", acct.Plan, want.Plan}, {"status", acct.Status, want.Status}, {"price", acct.PriceID, want.PriceID},
		} {
			if f.local != f.stripe {
				diffs = append(diffs, Mismatch{UserID: acct.UserID, CustomerID: acct.CustomerID, ObjectID: sub.ID, Field: f.name, Local: f.local, Stripe: f.stripe})
			}
		}
		if len(diffs) > 0 && fix {
			want.UpdatedAt = s.now().UTC()
			if _, err := s.store.ApplyBillingEvent(ctx, Event{}, &want); err != nil {
				return fmt.Errorf("reconcile: fix account of %s: %w", acct.UserID, err)
			}
			for i := range diffs {
				diffs[i].Fixed = true
			}
		}
		rep.Mismatches = append(rep.Mismatches, diffs...)
		return nil
	}

	subs := &stripe.SubscriptionListParams{Status: stripe.String("all"), CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	for sub, err := range s.stripe.V1Subscriptions.List(ctx, subs).All(ctx) {
		if err != nil {
			return Report{}, stripeError("list subscriptions", err)
		}
		rep.Subscriptions++
		customer := ""
		if sub.Customer != nil {
			customer = sub.Customer.ID
		}
		acct, ok := byCustomer[customer]
		if !ok {
			rep.Mismatches = append(rep.Mismatches, Mismatch{CustomerID: customer, ObjectID: sub.ID, Field: "customer",
				Local: "no account", Stripe: string(sub.Status)})
			continue
		}
		if acct.SubscriptionID != "" && acct.SubscriptionID != sub.ID && !live(sub.Status) {
			continue // an older, ended subscription of a customer who has another
		}
		if err := compare(acct, sub); err != nil {
			return Report{}, err
		}
	}
	// Accounts changed in the window whose subscription was created before it.
	for _, acct := range accounts {
		if acct.SubscriptionID == "" || seen[acct.SubscriptionID] || acct.UpdatedAt.Before(since) {
			continue
		}
		sub, err := s.stripe.V1Subscriptions.Retrieve(ctx, acct.SubscriptionID, &stripe.SubscriptionRetrieveParams{})
		if isNotFound(err) {
			sub = &stripe.Subscription{ID: acct.SubscriptionID, Status: stripe.SubscriptionStatusCanceled}
		} else if err != nil {
			return Report{}, stripeError("read subscription", err)
		}
		rep.Subscriptions++
		if err := compare(acct, sub); err != nil {
			return Report{}, err
		}
	}

	invs := &stripe.InvoiceListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	for inv, err := range s.stripe.V1Invoices.List(ctx, invs).All(ctx) {
		if err != nil {
			return Report{}, stripeError("list invoices", err)
		}
		rep.Invoices++
		if inv.Customer == nil {
			continue
		}
		acct, ok := byCustomer[inv.Customer.ID]
		if !ok || inv.ID != acct.LatestInvoiceID || string(inv.Status) == acct.LatestInvoiceStatus {
			continue
		}
		// The webhook of the invoice's last change was missed: report it; --fix only
		// corrects subscriptions (an invoice's email is not sent late).
		rep.Mismatches = append(rep.Mismatches, Mismatch{UserID: acct.UserID, CustomerID: acct.CustomerID, ObjectID: inv.ID,
			Field: "invoice_status", Local: acct.LatestInvoiceStatus, Stripe: string(inv.Status)})
	}
	return rep, nil
}

// live reports whether a subscription in status can still be paid.
func live(status stripe.SubscriptionStatus) bool {
	switch status {
	case stripe.SubscriptionStatusActive, stripe.SubscriptionStatusTrialing, stripe.SubscriptionStatusPastDue, stripe.SubscriptionStatusUnpaid:
		return true
	}
	return false
}
