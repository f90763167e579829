package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/gen/sqlitedb"
)

var _ budget.OwnerStore = (*DB)(nil)

// periods returns the UTC day ('YYYY-MM-DD') and month ('YYYY-MM') of t, as the
// ledger keys them.
func periods(t time.Time) (day, month string) {
	u := t.UTC()
	return u.Format("2006-01-02"), u.Format("2006-01")
}

// overLimit returns the *budget.ExceededError for a period when requested does not fit
// beside spent and reserved under limit, else nil.
func overLimit(limit, spent, reserved, requested budget.Nanos) error {
	if spent+reserved+requested <= limit {
		return nil
	}
	return &budget.ExceededError{
		LimitUSD: limit.USD(), SpentUSD: spent.USD(), ReservedUSD: reserved.USD(), RequestedUSD: requested.USD(),
	}
}

// ReserveOwnerBudget implements budget.OwnerStore. The check and the insert run in one
// transaction on the single writer connection (BEGIN IMMEDIATE), so no other write can
// come between them.
func (db *DB) ReserveOwnerBudget(ctx context.Context, r budget.OwnerReservation, limits budget.Limits) error {
	if r.Reserved < 0 {
		return fmt.Errorf("reserve owner budget: negative amount %d", r.Reserved)
	}
	day, month := periods(r.CreatedAt)
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	q := db.wq.WithTx(tx)
	tot, err := q.OwnerPeriodTotals(ctx, sqlitedb.OwnerPeriodTotalsParams{
		OwnerID: r.OwnerID, PeriodDay: day, PeriodMonth: month, At: r.CreatedAt.UTC(),
	})
	if err != nil {
		return fmt.Errorf("sum owner budget: %w", err)
	}
	if err := overLimit(limits.Daily, budget.Nanos(tot.DaySpent), budget.Nanos(tot.DayReserved), r.Reserved); err != nil {
		return err
	}
	if err := overLimit(limits.Monthly, budget.Nanos(tot.MonthSpent), budget.Nanos(tot.MonthReserved), r.Reserved); err != nil {
		return err
	}
	if err := q.InsertOwnerReservation(ctx, sqlitedb.InsertOwnerReservationParams{
		ID: r.ID, OwnerID: r.OwnerID, JobID: r.JobID, StepID: r.StepID, Model: r.Model,
		PeriodDay: day, PeriodMonth: month, ReservedNanos: int64(r.Reserved),
		ExpiresAt: r.ExpiresAt.UTC(), CreatedAt: r.CreatedAt.UTC(),
	}); err != nil {
		return fmt.Errorf("insert owner reservation: %w", err)
	}
	return tx.Commit()
}

// SettleOwnerBudget implements budget.OwnerStore.
func (db *DB) SettleOwnerBudget(ctx context.Context, id string, actual budget.Nanos, now time.Time) error {
	n, err := db.wq.SettleOwnerReservation(ctx, sqlitedb.SettleOwnerReservationParams{
		ID: id, SpentNanos: int64(actual), SettledAt: nullTime(&now),
	})
	if err != nil {
		return fmt.Errorf("settle owner reservation: %w", err)
	}
	if n == 0 {
		return budget.ErrUnknownReservation
	}
	return nil
}

// ExpireOwnerReservations implements budget.OwnerStore.
func (db *DB) ExpireOwnerReservations(ctx context.Context, now time.Time) (int, error) {
	n, err := db.wq.ExpireOwnerReservations(ctx, now.UTC())
	if err != nil {
		return 0, fmt.Errorf("expire owner reservations: %w", err)
	}
	return int(n), nil
}

// OwnerUsage implements budget.OwnerStore.
func (db *DB) OwnerUsage(ctx context.Context, ownerID string, at time.Time) (dayUsage, monthUsage budget.Usage, err error) {
	day, month := periods(at)
	tot, err := db.rq.OwnerPeriodTotals(ctx, sqlitedb.OwnerPeriodTotalsParams{
		OwnerID: ownerID, PeriodDay: day, PeriodMonth: month, At: at.UTC(),
	})
	if err != nil {
		return budget.Usage{}, budget.Usage{}, fmt.Errorf("sum owner usage: %w", err)
	}
	rows, err := db.rq.OwnerSpentByModel(ctx, sqlitedb.OwnerSpentByModelParams{
		OwnerID: ownerID, PeriodDay: day, PeriodMonth: month,
	})
	if err != nil {
		return budget.Usage{}, budget.Usage{}, fmt.Errorf("sum owner usage by model: %w", err)
	}
	dayUsage = budget.Usage{Spent: budget.Nanos(tot.DaySpent), Reserved: budget.Nanos(tot.DayReserved), ByModel: map[string]budget.Nanos{}}
	monthUsage = budget.Usage{Spent: budget.Nanos(tot.MonthSpent), Reserved: budget.Nanos(tot.MonthReserved), ByModel: map[string]budget.Nanos{}}
	for _, r := range rows {
		monthUsage.ByModel[r.Model] = budget.Nanos(r.MonthSpent)
		if r.DayRows > 0 {
			dayUsage.ByModel[r.Model] = budget.Nanos(r.DaySpent)
		}
	}
	return dayUsage, monthUsage, nil
}

// OwnerLimits implements budget.OwnerStore.
func (db *DB) OwnerLimits(ctx context.Context, ownerID string) (budget.Limits, bool, error) {
	row, err := db.rq.GetOwnerLimits(ctx, ownerID)
	if errors.Is(err, sql.ErrNoRows) {
		return budget.Limits{}, false, nil
	}
	if err != nil {
		return budget.Limits{}, false, fmt.Errorf("get owner limits: %w", err)
	}
	return budget.Limits{Daily: budget.Nanos(row.DailyNanos), Monthly: budget.Nanos(row.MonthlyNanos)}, true, nil
}

// SetOwnerLimits implements budget.OwnerStore.
func (db *DB) SetOwnerLimits(ctx context.Context, ownerID string, l *budget.Limits, now time.Time) error {
	if l == nil {
		if err := db.wq.DeleteOwnerLimits(ctx, ownerID); err != nil {
			return fmt.Errorf("delete owner limits: %w", err)
		}
		return nil
	}
	if err := db.wq.UpsertOwnerLimits(ctx, sqlitedb.UpsertOwnerLimitsParams{
		OwnerID: ownerID, DailyNanos: int64(l.Daily), MonthlyNanos: int64(l.Monthly), UpdatedAt: now.UTC(),
	}); err != nil {
		return fmt.Errorf("set owner limits: %w", err)
	}
	return nil
}
