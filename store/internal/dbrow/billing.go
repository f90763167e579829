package dbrow

import (
	"database/sql"
	"time"

	"github.com/levqor/levqor/billing"
	"github.com/levqor/levqor/gen/sqlitedb"
)

// The rows and parameters of the billing queries.
type (
	BillingAccount             = sqlitedb.BillingAccount
	UpdateBillingAccountParams = sqlitedb.UpdateBillingAccountParams
)

// ToBillingAccount converts a billing_accounts row.
func ToBillingAccount(r BillingAccount) billing.Account {
	return billing.Account{
		UserID: r.UserID, CustomerID: r.CustomerID, SubscriptionID: r.SubscriptionID, Plan: r.Plan, Status: r.Status,
		PriceID: r.PriceID, CurrentPeriodEnd: fromNullTime(r.CurrentPeriodEnd), PaymentFailedAt: fromNullTime(r.PaymentFailedAt),
		LatestInvoiceID: r.LatestInvoiceID, LatestInvoiceStatus: r.LatestInvoiceStatus, UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// UpdateBillingAccount converts an account to the parameters that overwrite its row.
func UpdateBillingAccount(a billing.Account) UpdateBillingAccountParams {
	return UpdateBillingAccountParams{
		UserID: a.UserID, SubscriptionID: a.SubscriptionID, Plan: a.Plan, Status: a.Status, PriceID: a.PriceID,
		CurrentPeriodEnd: toNullTime(a.CurrentPeriodEnd), PaymentFailedAt: toNullTime(a.PaymentFailedAt),
		LatestInvoiceID: a.LatestInvoiceID, LatestInvoiceStatus: a.LatestInvoiceStatus, UpdatedAt: a.UpdatedAt.UTC(),
	}
}

func fromNullTime(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

func toNullTime(t time.Time) sql.NullTime {
	if t.IsZero() {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: t.UTC(), Valid: true}
}
