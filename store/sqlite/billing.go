package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/billing"
	"github.com/levqor/levqor/gen/sqlitedb"
	"github.com/levqor/levqor/store/internal/dbrow"
)

var _ billing.Store = (*DB)(nil)

// BillingAccount implements billing.Store.
func (db *DB) BillingAccount(ctx context.Context, userID string) (billing.Account, error) {
	row, err := db.rq.GetBillingAccount(ctx, userID)
	if err != nil {
		return billing.Account{}, notFound(err, "Billing account")
	}
	return dbrow.ToBillingAccount(row), nil
}

// BillingAccountByCustomer implements billing.Store.
func (db *DB) BillingAccountByCustomer(ctx context.Context, customerID string) (billing.Account, error) {
	row, err := db.rq.GetBillingAccountByCustomer(ctx, customerID)
	if err != nil {
		return billing.Account{}, notFound(err, "Billing account")
	}
	return dbrow.ToBillingAccount(row), nil
}

// BillingAccounts implements billing.Store.
func (db *DB) BillingAccounts(ctx context.Context) ([]billing.Account, error) {
	rows, err := db.rq.ListBillingAccounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("list billing accounts: %w", err)
	}
	out := make([]billing.Account, len(rows))
	for i, r := range rows {
		out[i] = dbrow.ToBillingAccount(r)
	}
	return out, nil
}

// CreateBillingAccount implements billing.Store. It reads back through the writer, so
// the row it returns is certainly the one stored.
func (db *DB) CreateBillingAccount(ctx context.Context, userID, customerID string, now time.Time) (billing.Account, error) {
	if _, err := db.wq.InsertBillingCustomer(ctx, sqlitedb.InsertBillingCustomerParams{
		UserID: userID, CustomerID: customerID, UpdatedAt: now.UTC(),
	}); err != nil {
		return billing.Account{}, fmt.Errorf("insert billing account: %w", err)
	}
	row, err := db.wq.GetBillingAccount(ctx, userID)
	if err != nil {
		return billing.Account{}, fmt.Errorf("read billing account: %w", err)
	}
	return dbrow.ToBillingAccount(row), nil
}

// ApplyBillingEvent implements billing.Store in one transaction on the single writer.
func (db *DB) ApplyBillingEvent(ctx context.Context, e billing.Event, a *billing.Account) (bool, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	q := db.wtx(tx)
	if e.ID != "" {
		n, err := q.InsertBillingEvent(ctx, sqlitedb.InsertBillingEventParams{ID: e.ID, Type: e.Type, ReceivedAt: e.ReceivedAt.UTC()})
		if err != nil {
			return false, fmt.Errorf("record billing event: %w", err)
		}
		if n == 0 {
			return false, nil
		}
	}
	if a != nil {
		n, err := q.UpdateBillingAccount(ctx, dbrow.UpdateBillingAccount(*a))
		if err != nil {
			return false, fmt.Errorf("update billing account: %w", err)
		}
		if n == 0 {
			return false, levqor.Errorf(levqor.ENotFound, "Billing account not found.")
		}
		if _, err := q.SetUserPlan(ctx, sqlitedb.SetUserPlanParams{UserID: a.UserID, Plan: a.Plan, UpdatedAt: a.UpdatedAt.UTC()}); err != nil {
			return false, fmt.Errorf("set user plan: %w", err)
		}
	}
	return true, tx.Commit()
}
