package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/gen/pgdb"
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

// ReserveOwnerBudget implements budget.OwnerStore. The transaction first takes a
// per-owner advisory lock, held until it ends, so reservations of one owner from any
// connection of any instance check and insert one after another. (READ COMMITTED
// suffices: each statement after the lock sees every reservation committed before it.)
func (db *DB) ReserveOwnerBudget(ctx context.Context, r budget.OwnerReservation, limits budget.Limits) error {
	if r.Reserved < 0 {
		return fmt.Errorf("reserve owner budget: negative amount %d", r.Reserved)
	}
	day, month := periods(r.CreatedAt)
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		q := db.q.WithTx(tx)
		if err := q.LockOwnerBudget(ctx, r.OwnerID); err != nil {
			return fmt.Errorf("lock owner budget: %w", err)
		}
		tot, err := q.OwnerPeriodTotals(ctx, pgdb.OwnerPeriodTotalsParams{
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
		if err := q.InsertOwnerReservation(ctx, pgdb.InsertOwnerReservationParams{
			ID: r.ID, OwnerID: r.OwnerID, JobID: r.JobID, StepID: r.StepID, Model: r.Model,
			PeriodDay: day, PeriodMonth: month, ReservedNanos: int64(r.Reserved),
			ExpiresAt: r.ExpiresAt.UTC(), CreatedAt: r.CreatedAt.UTC(),
		}); err != nil {
			return fmt.Errorf("insert owner reservation: %w", err)
		}
		return nil
	})
}

// SettleOwnerBudget implements budget.OwnerStore.
func (db *DB) SettleOwnerBudget(ctx context.Context, id string, actual budget.Nanos, now time.Time) error {
	now = now.UTC()
	n, err := db.q.SettleOwnerReservation(ctx, pgdb.SettleOwnerReservationParams{
		ID: id, SpentNanos: int64(actual), SettledAt: &now,
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
	n, err := db.q.ExpireOwnerReservations(ctx, now.UTC())
	if err != nil {
		return 0, fmt.Errorf("expire owner reservations: %w", err)
	}
	return int(n), nil
}

// OwnerUsage implements budget.OwnerStore.
func (db *DB) OwnerUsage(ctx context.Context, ownerID string, at time.Time) (dayUsage, monthUsage budget.Usage, err error) {
	day, month := periods(at)
	tot, err := db.q.OwnerPeriodTotals(ctx, pgdb.OwnerPeriodTotalsParams{
		OwnerID: ownerID, PeriodDay: day, PeriodMonth: month, At: at.UTC(),
	})
	if err != nil {
		return budget.Usage{}, budget.Usage{}, fmt.Errorf("sum owner usage: %w", err)
	}
	rows, err := db.q.OwnerSpentByModel(ctx, pgdb.OwnerSpentByModelParams{
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
	row, err := db.q.GetOwnerLimits(ctx, ownerID)
	if errors.Is(err, pgx.ErrNoRows) {
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
		if err := db.q.DeleteOwnerLimits(ctx, ownerID); err != nil {
			return fmt.Errorf("delete owner limits: %w", err)
		}
		return nil
	}
	if err := db.q.UpsertOwnerLimits(ctx, pgdb.UpsertOwnerLimitsParams{
		OwnerID: ownerID, DailyNanos: int64(l.Daily), MonthlyNanos: int64(l.Monthly), UpdatedAt: now.UTC(),
	}); err != nil {
		return fmt.Errorf("set owner limits: %w", err)
	}
	return nil
}
