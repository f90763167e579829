package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/gen/sqlitedb"
	"github.com/levqor/levqor/store/internal/dbrow"
)

var _ budget.OwnerStore = (*DB)(nil)

// periods returns the UTC day ('YYYY-MM-DD') and month ('YYYY-MM') of t, as the
// ledger keys them.
func periods(t time.Time) (day, month string) {
	u := t.UTC()
	return u.Format("2006-01-02"), u.Format("2006-01")
}

// totalsKeys returns the budget_spent period keys of a day and its month.
func totalsKeys(day, month string) (dayKey, monthKey string) {
	return "D" + day, "M" + month
}

// overLimit returns the *budget.ExceededError for a period when requested does not fit
// beside spent and reserved under limit, else nil.
func overLimit(limit, spent, reserved, requested budget.Nanos) error {
	if spent.Add(reserved).Add(requested) <= limit { // saturating: a huge amount cannot wrap into room
		return nil
	}
	return &budget.ExceededError{
		LimitUSD: limit.USD(), SpentUSD: spent.USD(), ReservedUSD: reserved.USD(), RequestedUSD: requested.USD(),
	}
}

// ownerTotals reads an owner's spending and open reservations in a UTC day and its month,
// through q (the writer inside a transaction, or the readers).
func ownerTotals(ctx context.Context, q *sqlitedb.Queries, ownerID, day, month string) (dayUsage, monthUsage budget.Usage, err error) {
	dayKey, monthKey := totalsKeys(day, month)
	tot, err := q.OwnerTotals(ctx, sqlitedb.OwnerTotalsParams{
		OwnerID: ownerID, DayKey: dayKey, PeriodDay: day, MonthKey: monthKey, PeriodMonth: month,
	})
	if err != nil {
		return budget.Usage{}, budget.Usage{}, fmt.Errorf("read owner budget totals: %w", err)
	}
	return budget.Usage{Spent: budget.Nanos(tot.DaySpent), Reserved: budget.Nanos(tot.DayReserved)},
		budget.Usage{Spent: budget.Nanos(tot.MonthSpent), Reserved: budget.Nanos(tot.MonthReserved)}, nil
}

// ReserveOwnerBudget implements budget.OwnerStore. The check and the insert run in one
// transaction on the single writer connection (BEGIN IMMEDIATE), so no other write can
// come between them. It writes one row of budget_open (migration 0009).
func (db *DB) ReserveOwnerBudget(ctx context.Context, r budget.OwnerReservation, limits budget.Limits) error {
	if r.Reserved < 0 {
		return fmt.Errorf("reserve owner budget: negative amount %d", r.Reserved)
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	q := db.wtx(tx)
	day, month := periods(r.CreatedAt)
	dayUsage, monthUsage, err := ownerTotals(ctx, q, r.OwnerID, day, month)
	if err != nil {
		return err
	}
	if err := overLimit(limits.Daily, dayUsage.Spent, dayUsage.Reserved, r.Reserved); err != nil {
		return err
	}
	if err := overLimit(limits.Monthly, monthUsage.Spent, monthUsage.Reserved, r.Reserved); err != nil {
		return err
	}
	if err := q.InsertOwnerReservation(ctx, sqlitedb.InsertOwnerReservationParams{
		OwnerID: r.OwnerID, ID: r.ID, JobID: r.JobID, StepID: r.StepID, Model: r.Model,
		PeriodDay: day, PeriodMonth: month, ReservedNanos: int64(r.Reserved),
		ExpiresAt: r.ExpiresAt.UTC(), CreatedAt: r.CreatedAt.UTC(),
	}); err != nil {
		return fmt.Errorf("insert owner reservation: %w", err)
	}
	return tx.Commit()
}

// SettleOwnerBudget implements budget.OwnerStore. In one transaction it moves the open
// reservation to budget_closed as settled (or settles it there if the sweep had expired
// it) and adds actual to the spending of both periods of its created_at.
func (db *DB) SettleOwnerBudget(ctx context.Context, ownerID, id string, actual budget.Nanos, now time.Time) error {
	if actual < 0 {
		return fmt.Errorf("settle owner budget: negative amount %d", actual) // spending never shrinks
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	q := db.wtx(tx)
	settled := dbrow.NullTime(&now)
	var day, month string
	open, err := q.DeleteOpenOwnerReservation(ctx, sqlitedb.DeleteOpenOwnerReservationParams{OwnerID: ownerID, ID: id})
	switch {
	case err == nil:
		day, month = open.PeriodDay, open.PeriodMonth
		if err := q.InsertClosedOwnerReservation(ctx, closedRow(open, "settled", actual, settled)); err != nil {
			return fmt.Errorf("settle owner reservation: %w", err)
		}
	case errors.Is(err, sql.ErrNoRows):
		// An expired reservation may still be settled: the money was spent all the
		// same. Its amount stopped counting as reserved when it expired.
		exp, err := q.SettleExpiredOwnerReservation(ctx, sqlitedb.SettleExpiredOwnerReservationParams{
			OwnerID: ownerID, ID: id, SpentNanos: int64(actual), SettledAt: settled,
		})
		if errors.Is(err, sql.ErrNoRows) {
			return budget.ErrUnknownReservation
		}
		if err != nil {
			return fmt.Errorf("settle owner reservation: %w", err)
		}
		day, month = exp.PeriodDay, exp.PeriodMonth
	default:
		return fmt.Errorf("settle owner reservation: %w", err)
	}
	dayKey, monthKey := totalsKeys(day, month)
	if err := q.AddOwnerSpent(ctx, sqlitedb.AddOwnerSpentParams{
		OwnerID: ownerID, DayKey: dayKey, MonthKey: monthKey, Spent: int64(actual),
	}); err != nil {
		return fmt.Errorf("add owner spending: %w", err)
	}
	return tx.Commit()
}

// closedRow is the budget_closed row of open closed in state with spent.
func closedRow(open sqlitedb.BudgetOpen, state string, spent budget.Nanos, settledAt sql.NullTime) sqlitedb.InsertClosedOwnerReservationParams {
	return sqlitedb.InsertClosedOwnerReservationParams{
		OwnerID: open.OwnerID, PeriodMonth: open.PeriodMonth, ID: open.ID, JobID: open.JobID, StepID: open.StepID,
		Model: open.Model, PeriodDay: open.PeriodDay, ReservedNanos: open.ReservedNanos, SpentNanos: int64(spent),
		State: state, ExpiresAt: open.ExpiresAt, CreatedAt: open.CreatedAt, SettledAt: settledAt,
	}
}

// ExpireOwnerReservations implements budget.OwnerStore: in one transaction it moves the
// open reservations past their expiry to budget_closed as expired. budget_open holds
// only the AI calls in flight, so one statement scans it whole.
func (db *DB) ExpireOwnerReservations(ctx context.Context, now time.Time) (int, error) {
	n, err := db.expire(ctx, now.UTC())
	if err != nil {
		return 0, fmt.Errorf("expire owner reservations: %w", err)
	}
	return n, nil
}

func (db *DB) expire(ctx context.Context, now time.Time) (int, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	q := db.wtx(tx)
	rows, err := q.ExpireOwnerReservations(ctx, now)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	for _, r := range rows {
		if err := q.InsertClosedOwnerReservation(ctx, closedRow(r, "expired", 0, sql.NullTime{})); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return len(rows), nil
}

// OwnerTotals implements budget.OwnerStore: no ledger scan.
func (db *DB) OwnerTotals(ctx context.Context, ownerID string, at time.Time) (dayUsage, monthUsage budget.Usage, err error) {
	day, month := periods(at)
	return ownerTotals(ctx, db.rq, ownerID, day, month)
}

// OwnerUsage implements budget.OwnerStore: the running totals, and the spending per
// model from the ledger.
func (db *DB) OwnerUsage(ctx context.Context, ownerID string, at time.Time) (dayUsage, monthUsage budget.Usage, err error) {
	day, month := periods(at)
	dayUsage, monthUsage, err = ownerTotals(ctx, db.rq, ownerID, day, month)
	if err != nil {
		return budget.Usage{}, budget.Usage{}, err
	}
	rows, err := db.rq.OwnerSpentByModel(ctx, sqlitedb.OwnerSpentByModelParams{
		OwnerID: ownerID, PeriodDay: day, PeriodMonth: month,
	})
	if err != nil {
		return budget.Usage{}, budget.Usage{}, fmt.Errorf("sum owner usage by model: %w", err)
	}
	dayUsage.ByModel, monthUsage.ByModel = map[string]budget.Nanos{}, map[string]budget.Nanos{}
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
