// Package billing takes payments through Stripe and decides which plan's limits an
// owner runs under: Checkout and the billing portal for the user, Stripe's signed
// webhook applied once per event, and a reconciliation of Levqor's records with
// Stripe's. A user's plan is set here (and by admins), nowhere else.
package billing

import (
	"context"
	"time"
)

// Account is a user's billing record: its Stripe customer and what Levqor last learnt
// of its subscription.
type Account struct {
	UserID              string
	CustomerID          string
	SubscriptionID      string
	Plan                string // the subscription's plan; free without one
	Status              string // Stripe's subscription status; "" before one exists
	PriceID             string
	CurrentPeriodEnd    time.Time // zero: unknown
	PaymentFailedAt     time.Time // zero: no failed payment outstanding
	LatestInvoiceID     string
	LatestInvoiceStatus string
	UpdatedAt           time.Time
}

// Event is a Stripe event as recorded: applied once.
type Event struct {
	ID         string // evt_…
	Type       string
	ReceivedAt time.Time
}

// Store keeps billing accounts and the events applied to them. Implementations live in
// store/sqlite and store/postgres and pass the conformance suite (store/storetest).
type Store interface {
	// BillingAccount returns the user's account, or a levqor.ENotFound error.
	BillingAccount(ctx context.Context, userID string) (Account, error)
	// BillingAccountByCustomer returns the account of a Stripe customer, or a levqor.ENotFound error.
	BillingAccountByCustomer(ctx context.Context, customerID string) (Account, error)
	// BillingAccounts returns every account, by user id.
	BillingAccounts(ctx context.Context) ([]Account, error)
	// CreateBillingAccount stores the user's Stripe customer unless the user has one
	// already, and returns the account stored: concurrent callers all get the first.
	CreateBillingAccount(ctx context.Context, userID, customerID string, now time.Time) (Account, error)
	// ApplyBillingEvent records e and, when a is not nil, writes a (by a.UserID) and sets
	// the user's plan to a.Plan, all in one transaction. It reports false, and changes
	// nothing, when e was recorded before. An empty e.ID records no event (a correction
	// made by reconciliation).
	ApplyBillingEvent(ctx context.Context, e Event, a *Account) (applied bool, err error)
}
