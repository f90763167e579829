package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/billing"
	"github.com/levqor/levqor/gen/pgdb"
	"github.com/levqor/levqor/store/internal/dbrow"
)

var _ billing.Store = (*DB)(nil)

// BillingAccount implements billing.Store.
func (db *DB) BillingAccount(ctx context.Context, userID string) (billing.Account, error) {
	row, err := db.q.GetBillingAccount(ctx, userID)
	if err != nil {
		return billing.Account{}, notFound(err, "Billing account")
	}
	return dbrow.ToBillingAccount(dbrow.BillingAccount(row)), nil
}

// BillingAccountByCustomer implements billing.Store.
func (db *DB) BillingAccountByCustomer(ctx context.Context, customerID string) (billing.Account, error) {
	row, err := db.q.GetBillingAccountByCustomer(ctx, customerID)
	if err != nil {
		return billing.Account{}, notFound(err, "Billing account")
	}
	return dbrow.ToBillingAccount(dbrow.BillingAccount(row)), nil
}

// BillingAccounts implements billing.Store.
func (db *DB) BillingAccounts(ctx context.Context) ([]billing.Account, error) {
	rows, err := db.q.ListBillingAccounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("list billing accounts: %w", err)
	}
	out := make([]billing.Account, len(rows))
	for i, r := range rows {
		out[i] = dbrow.ToBillingAccount(dbrow.BillingAccount(r))
	}
	return out, nil
}

// CreateBillingAccount implements billing.Store.
func (db *DB) CreateBillingAccount(ctx context.Context, userID, customerID string, now time.Time) (billing.Account, error) {
	if _, err := db.q.InsertBillingCustomer(ctx, pgdb.InsertBillingCustomerParams{
		UserID: userID, CustomerID: customerID, UpdatedAt: now.UTC(),
	}); err != nil {
		return billing.Account{}, fmt.Errorf("insert billing account: %w", err)
	}
	row, err := db.q.GetBillingAccount(ctx, userID)
	if err != nil {
		return billing.Account{}, fmt.Errorf("read billing account: %w", err)
	}
	return dbrow.ToBillingAccount(dbrow.BillingAccount(row)), nil
}

// ApplyBillingEvent implements billing.Store in one transaction. A second delivery of
// an event waits on the first one's row and then inserts nothing.
func (db *DB) ApplyBillingEvent(ctx context.Context, e billing.Event, a *billing.Account) (bool, error) {
	applied := false
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		q := db.q.WithTx(tx)
		if e.ID != "" {
			n, err := q.InsertBillingEvent(ctx, pgdb.InsertBillingEventParams{ID: e.ID, Type: e.Type, ReceivedAt: e.ReceivedAt.UTC()})
			if err != nil {
				return fmt.Errorf("record billing event: %w", err)
			}
			if n == 0 {
				return nil
			}
		}
		if a != nil {
			n, err := q.UpdateBillingAccount(ctx, pgdb.UpdateBillingAccountParams(dbrow.UpdateBillingAccount(*a)))
			if err != nil {
				return fmt.Errorf("update billing account: %w", err)
			}
			if n == 0 {
				return levqor.Errorf(levqor.ENotFound, "Billing account not found.")
			}
			if _, err := q.SetUserPlan(ctx, pgdb.SetUserPlanParams{UserID: a.UserID, Plan: a.Plan, UpdatedAt: a.UpdatedAt.UTC()}); err != nil {
				return fmt.Errorf("set user plan: %w", err)
			}
		}
		applied = true
		return nil
	})
	return applied && err == nil, err
}
