package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/gen/pgdb"
	"github.com/levqor/levqor/store/internal/dbrow"
)

var _ budget.OwnerStore = (*DB)(nil)

// periods returns the UTC day ('YYYY-MM-DD') and month ('YYYY-MM') of t, as the
// ledger keys them.
func periods(t time.Time) (day, month string) {
	u := t.UTC()
	return u.Format("2006-01-02"), u.Format("2006-01")
}

// totalsKeys returns the budget_totals period keys of a ledger row's day and month.
func totalsKeys(day, month string) (dayKey, monthKey string) {
	return "D" + day, "M" + month
}

// expireBatch is how many reservations ExpireOwnerReservations releases per transaction.
const expireBatch = 500

// totalsDelta is a change to one row of budget_totals.
type totalsDelta struct {
	owner, period   string
	spent, reserved int64
}

// sumTotalsDeltas adds up the deltas of each (owner, period) and returns them in
// ascending (owner, period) order, the order in which every transaction touches
// totals rows.
func sumTotalsDeltas(ds []totalsDelta) []totalsDelta {
	type key struct{ owner, period string }
	sums := map[key]*totalsDelta{}
	var out []totalsDelta
	for _, d := range ds {
		k := key{d.owner, d.period}
		if s, ok := sums[k]; ok {
			s.spent += d.spent
			s.reserved += d.reserved
			continue
		}
		dd := d
		sums[k] = &dd
	}
	for _, s := range sums {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b totalsDelta) int {
		return cmp.Or(cmp.Compare(a.owner, b.owner), cmp.Compare(a.period, b.period))
	})
	return out
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

// ReserveOwnerBudget implements budget.OwnerStore. The transaction first takes a
// per-owner advisory lock, held until it ends, so reservations of one owner from any
// connection of any instance check and update the running totals one after another.
// The totals rows are then locked (by the upsert) before they are read, so settles
// and expiries of the owner cannot change them between the check and the update.
func (db *DB) ReserveOwnerBudget(ctx context.Context, r budget.OwnerReservation, limits budget.Limits) error {
	if r.Reserved < 0 {
		return fmt.Errorf("reserve owner budget: negative amount %d", r.Reserved)
	}
	day, month := periods(r.CreatedAt)
	dayKey, monthKey := totalsKeys(day, month)
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		q := db.q.WithTx(tx)
		if err := q.LockOwnerBudget(ctx, r.OwnerID); err != nil {
			return fmt.Errorf("lock owner budget: %w", err)
		}
		add := func(amount int64) error {
			for _, period := range []string{dayKey, monthKey} { // ascending, as everywhere
				if err := q.UpsertOwnerTotal(ctx, pgdb.UpsertOwnerTotalParams{
					OwnerID: r.OwnerID, Period: period, ReservedDelta: amount,
				}); err != nil {
					return fmt.Errorf("update owner budget totals: %w", err)
				}
			}
			return nil
		}
		if err := add(0); err != nil {
			return err
		}
		tot, err := q.OwnerTotals(ctx, pgdb.OwnerTotalsParams{OwnerID: r.OwnerID, DayKey: dayKey, MonthKey: monthKey})
		if err != nil {
			return fmt.Errorf("read owner budget totals: %w", err)
		}
		if err := overLimit(limits.Daily, budget.Nanos(tot.DaySpent), budget.Nanos(tot.DayReserved), r.Reserved); err != nil {
			return err
		}
		if err := overLimit(limits.Monthly, budget.Nanos(tot.MonthSpent), budget.Nanos(tot.MonthReserved), r.Reserved); err != nil {
			return err
		}
		if err := add(int64(r.Reserved)); err != nil {
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

// SettleOwnerBudget implements budget.OwnerStore. In one transaction it closes the
// reservation and, in both periods of its created_at, adds actual to the spending and
// (if it was still open) takes its amount out of the reserved total. The first
// UPDATE only matches an open row, so a concurrent expiry and this settle never both
// release the amount.
func (db *DB) SettleOwnerBudget(ctx context.Context, ownerID, id string, actual budget.Nanos, now time.Time) error {
	if actual < 0 {
		return fmt.Errorf("settle owner budget: negative amount %d", actual) // spending never shrinks
	}
	now = now.UTC()
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		q := db.q.WithTx(tx)
		var owner, day, month string
		var release int64
		open, err := q.SettleOpenOwnerReservation(ctx, pgdb.SettleOpenOwnerReservationParams{
			ID: id, OwnerID: ownerID, SpentNanos: int64(actual), SettledAt: dbrow.NullTime(&now),
		})
		switch {
		case err == nil:
			owner, day, month, release = open.OwnerID, open.PeriodDay, open.PeriodMonth, open.ReservedNanos
		case errors.Is(err, pgx.ErrNoRows):
			// An expired reservation may still be settled: the money was spent all
			// the same. Its amount already left the reserved totals when it expired.
			exp, err := q.SettleExpiredOwnerReservation(ctx, pgdb.SettleExpiredOwnerReservationParams{
				ID: id, OwnerID: ownerID, SpentNanos: int64(actual), SettledAt: dbrow.NullTime(&now),
			})
			if errors.Is(err, pgx.ErrNoRows) {
				return budget.ErrUnknownReservation
			}
			if err != nil {
				return fmt.Errorf("settle owner reservation: %w", err)
			}
			owner, day, month = exp.OwnerID, exp.PeriodDay, exp.PeriodMonth
		default:
			return fmt.Errorf("settle owner reservation: %w", err)
		}
		dayKey, monthKey := totalsKeys(day, month)
		for _, period := range []string{dayKey, monthKey} {
			if err := q.UpsertOwnerTotal(ctx, pgdb.UpsertOwnerTotalParams{
				OwnerID: owner, Period: period, SpentDelta: int64(actual), ReservedDelta: -release,
			}); err != nil {
				return fmt.Errorf("update owner budget totals: %w", err)
			}
		}
		return nil
	})
}

// ExpireOwnerReservations implements budget.OwnerStore. Each batch marks its
// reservations expired and releases their amounts from the reserved totals in one
// transaction; rows locked by a concurrent settle or sweep are skipped.
func (db *DB) ExpireOwnerReservations(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for {
		n, err := db.expireBatch(ctx, now.UTC())
		total += n
		if err != nil {
			return total, fmt.Errorf("expire owner reservations: %w", err)
		}
		if n < expireBatch {
			return total, nil
		}
	}
}

// expireBatch expires up to expireBatch reservations and returns how many.
func (db *DB) expireBatch(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		q := db.q.WithTx(tx)
		rows, err := q.ExpireOwnerReservations(ctx, pgdb.ExpireOwnerReservationsParams{Now: now, Batch: expireBatch})
		if err != nil {
			return err
		}
		ds := make([]totalsDelta, 0, 2*len(rows))
		for _, r := range rows {
			dayKey, monthKey := totalsKeys(r.PeriodDay, r.PeriodMonth)
			ds = append(ds,
				totalsDelta{owner: r.OwnerID, period: dayKey, reserved: -r.ReservedNanos},
				totalsDelta{owner: r.OwnerID, period: monthKey, reserved: -r.ReservedNanos})
		}
		for _, d := range sumTotalsDeltas(ds) {
			if err := q.UpsertOwnerTotal(ctx, pgdb.UpsertOwnerTotalParams{
				OwnerID: d.owner, Period: d.period, SpentDelta: d.spent, ReservedDelta: d.reserved,
			}); err != nil {
				return err
			}
		}
		n = len(rows)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// OwnerTotals implements budget.OwnerStore: running totals only, no ledger scan.
func (db *DB) OwnerTotals(ctx context.Context, ownerID string, at time.Time) (dayUsage, monthUsage budget.Usage, err error) {
	day, month := periods(at)
	dayKey, monthKey := totalsKeys(day, month)
	tot, err := db.q.OwnerTotals(ctx, pgdb.OwnerTotalsParams{OwnerID: ownerID, DayKey: dayKey, MonthKey: monthKey})
	if err != nil {
		return budget.Usage{}, budget.Usage{}, fmt.Errorf("read owner usage: %w", err)
	}
	return budget.Usage{Spent: budget.Nanos(tot.DaySpent), Reserved: budget.Nanos(tot.DayReserved)},
		budget.Usage{Spent: budget.Nanos(tot.MonthSpent), Reserved: budget.Nanos(tot.MonthReserved)}, nil
}

// OwnerUsage implements budget.OwnerStore: the running totals, and the spending per
// model from the ledger.
func (db *DB) OwnerUsage(ctx context.Context, ownerID string, at time.Time) (dayUsage, monthUsage budget.Usage, err error) {
	dayUsage, monthUsage, err = db.OwnerTotals(ctx, ownerID, at)
	if err != nil {
		return budget.Usage{}, budget.Usage{}, err
	}
	day, month := periods(at)
	rows, err := db.q.OwnerSpentByModel(ctx, pgdb.OwnerSpentByModelParams{
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
