package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/levqor/levqor/analytics"
	"github.com/levqor/levqor/gen/pgdb"
	"github.com/levqor/levqor/store/internal/dbrow"
)

var _ analytics.Store = (*DB)(nil)

// copyEventsFrom is the batch size from which InsertEvents sends the events with
// COPY rather than one INSERT each.
const copyEventsFrom = 64

// InsertEvents implements analytics.Store: the events and their rollups in one
// transaction. Rollup rows are locked in the order analytics.RollupOf sorts them, so
// concurrent batches wait for each other but never deadlock; a day's quarter counts
// are read under its row lock, added to and written back.
func (db *DB) InsertEvents(ctx context.Context, events []analytics.Event) error {
	if len(events) == 0 {
		return nil
	}
	r := analytics.RollupOf(events)
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		q := db.q.WithTx(tx)
		if err := insertEvents(ctx, q, events); err != nil {
			return err
		}
		for _, t := range r.Totals {
			if err := q.AddAnalyticsTotal(ctx, pgdb.AddAnalyticsTotalParams{Type: t.Type, Delta: t.N}); err != nil {
				return fmt.Errorf("add to event totals: %w", err)
			}
		}
		for _, d := range r.Quarters {
			if err := addQuarters(ctx, q, d); err != nil {
				return err
			}
		}
		for _, t := range r.Tops {
			if err := addTop(ctx, q, t); err != nil {
				return fmt.Errorf("add to top %s: %w", t.Kind, err)
			}
		}
		return nil
	})
}

// insertEvents inserts the raw events: with COPY from copyEventsFrom on.
func insertEvents(ctx context.Context, q *pgdb.Queries, events []analytics.Event) error {
	if len(events) >= copyEventsFrom {
		rows := make([]pgdb.CopyAnalyticsEventsParams, len(events))
		for i, e := range events {
			rows[i] = pgdb.CopyAnalyticsEventsParams(dbrow.InsertAnalyticsEvent(e))
		}
		if _, err := q.CopyAnalyticsEvents(ctx, rows); err != nil {
			return fmt.Errorf("copy events: %w", err)
		}
		return nil
	}
	for _, e := range events {
		if err := q.InsertAnalyticsEvent(ctx, pgdb.InsertAnalyticsEventParams(dbrow.InsertAnalyticsEvent(e))); err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
	}
	return nil
}

// addQuarters adds d to its day's quarter counts under the row's lock, creating the
// row at zero first when there is none.
func addQuarters(ctx context.Context, q *pgdb.Queries, d analytics.DayQuarters) error {
	key := pgdb.LockAnalyticsQuartersParams{Day: d.Day, Type: d.Type}
	stored, err := q.LockAnalyticsQuarters(ctx, key)
	if errors.Is(err, pgx.ErrNoRows) {
		zero, zerr := analytics.AddQuarters(nil, &[analytics.QuartersPerDay]int64{})
		if zerr != nil {
			return zerr
		}
		if err := q.InsertAnalyticsQuartersIfAbsent(ctx, pgdb.InsertAnalyticsQuartersIfAbsentParams{Day: d.Day, Type: d.Type, Counts: zero}); err != nil {
			return fmt.Errorf("create quarter counts: %w", err)
		}
		stored, err = q.LockAnalyticsQuarters(ctx, key)
	}
	if err != nil {
		return fmt.Errorf("read quarter counts: %w", err)
	}
	counts, err := analytics.AddQuarters(stored, &d.Counts)
	if err != nil {
		return err
	}
	if err := q.SetAnalyticsQuarters(ctx, pgdb.SetAnalyticsQuartersParams{Day: d.Day, Type: d.Type, Counts: counts}); err != nil {
		return fmt.Errorf("write quarter counts: %w", err)
	}
	return nil
}

// addTop adds t to its top-list row, creating the row unless the day already has
// analytics.MaxTopValuesPerDay values of the list; then it adds to OtherValue instead.
func addTop(ctx context.Context, q *pgdb.Queries, t analytics.TopCount) error {
	n, err := q.AddAnalyticsTop(ctx, pgdb.AddAnalyticsTopParams{Delta: t.N, Kind: t.Kind, Day: t.Day, Value: t.Value})
	if err != nil || n > 0 {
		return err
	}
	distinct, err := q.CountAnalyticsTopValues(ctx, pgdb.CountAnalyticsTopValuesParams{Kind: t.Kind, Day: t.Day})
	if err != nil {
		return err
	}
	if distinct >= analytics.MaxTopValuesPerDay {
		t.Value = analytics.OtherValue
	}
	return q.UpsertAnalyticsTop(ctx, pgdb.UpsertAnalyticsTopParams{Kind: t.Kind, Day: t.Day, Value: t.Value, Delta: t.N})
}

// EventQuarters implements analytics.Store.
func (db *DB) EventQuarters(ctx context.Context, first, last int64) ([]analytics.DayQuarters, error) {
	rows, err := db.q.ListAnalyticsQuarters(ctx, pgdb.ListAnalyticsQuartersParams{First: first, Last: last})
	if err != nil {
		return nil, err
	}
	out := make([]analytics.DayQuarters, len(rows))
	for i, r := range rows {
		out[i] = analytics.DayQuarters{Day: r.Day, Type: r.Type}
		if out[i].Counts, err = analytics.DecodeQuarters(r.Counts); err != nil {
			return nil, fmt.Errorf("day %d %s: %w", r.Day, r.Type, err)
		}
	}
	return out, nil
}

// EventDayCuts implements analytics.Store.
func (db *DB) EventDayCuts(ctx context.Context, first, last int64, cutA, cutB int) ([]analytics.DayCuts, error) {
	if cutA < 1 || cutA >= analytics.QuartersPerDay || cutB < 1 || cutB >= analytics.QuartersPerDay {
		return nil, fmt.Errorf("event day cuts: quarters %d and %d, want 1..%d", cutA, cutB, analytics.QuartersPerDay-1)
	}
	rows, err := db.q.ListAnalyticsDayCuts(ctx, pgdb.ListAnalyticsDayCutsParams{CutA: int64(cutA), CutB: int64(cutB), First: first, Last: last})
	if err != nil {
		return nil, err
	}
	out := make([]analytics.DayCuts, len(rows))
	for i, r := range rows {
		d := analytics.DayCuts{Day: r.Day, Type: r.Type}
		var errA, errB, errT error
		d.BeforeA, errA = analytics.DecodeRunningTotal(r.BeforeA)
		d.BeforeB, errB = analytics.DecodeRunningTotal(r.BeforeB)
		d.Total, errT = analytics.DecodeRunningTotal(r.DayTotal)
		if err := errors.Join(errA, errB, errT); err != nil {
			return nil, fmt.Errorf("day %d %s: %w", r.Day, r.Type, err)
		}
		out[i] = d
	}
	return out, nil
}

// EventTotals implements analytics.Store.
func (db *DB) EventTotals(ctx context.Context) (analytics.Counts, error) {
	rows, err := db.q.ListAnalyticsTotals(ctx)
	if err != nil {
		return analytics.Counts{}, err
	}
	var c analytics.Counts
	for _, r := range rows {
		c.Add(r.Type, r.N)
	}
	return c, nil
}

// TopValues implements analytics.Store.
func (db *DB) TopValues(ctx context.Context, kind string, first, last int64, limit int) ([]analytics.Top, error) {
	rows, err := db.q.TopAnalyticsValues(ctx, pgdb.TopAnalyticsValuesParams{Kind: kind, First: first, Last: last, Top: int64(limit)})
	if err != nil {
		return nil, err
	}
	out := make([]analytics.Top, len(rows))
	for i, r := range rows {
		out[i] = analytics.Top{Value: r.Value, Count: r.Total}
	}
	return out, nil
}

// MarketingCounts implements analytics.Store.
func (db *DB) MarketingCounts(ctx context.Context) (jobsFinished, users int64, err error) {
	r, err := db.q.MarketingCounts(ctx)
	return r.JobsFinished, r.Users, err
}
