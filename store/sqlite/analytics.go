package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/levqor/levqor/analytics"
	"github.com/levqor/levqor/gen/sqlitedb"
	"github.com/levqor/levqor/store/internal/dbrow"
)

var _ analytics.Store = (*DB)(nil)

// InsertEvents implements analytics.Store: the events and their rollups in one
// transaction on the single writer. A day's quarter counts are read, added to and
// written back, which is safe because no other write can come between.
func (db *DB) InsertEvents(ctx context.Context, events []analytics.Event) error {
	if len(events) == 0 {
		return nil
	}
	r := analytics.RollupOf(events)
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	q := db.wtx(tx)
	for _, e := range events {
		if err := q.InsertAnalyticsEvent(ctx, dbrow.InsertAnalyticsEvent(e)); err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
	}
	for _, t := range r.Totals {
		if err := q.AddAnalyticsTotal(ctx, sqlitedb.AddAnalyticsTotalParams{Type: t.Type, Delta: t.N}); err != nil {
			return fmt.Errorf("add to event totals: %w", err)
		}
	}
	for _, d := range r.Quarters {
		stored, err := q.GetAnalyticsQuarters(ctx, sqlitedb.GetAnalyticsQuartersParams{Day: d.Day, Type: d.Type})
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read quarter counts: %w", err)
		}
		counts, err := analytics.AddQuarters(stored, &d.Counts)
		if err != nil {
			return err
		}
		if err := q.PutAnalyticsQuarters(ctx, sqlitedb.PutAnalyticsQuartersParams{Day: d.Day, Type: d.Type, Counts: counts}); err != nil {
			return fmt.Errorf("write quarter counts: %w", err)
		}
	}
	for _, t := range r.Tops {
		if err := addTop(ctx, q, t); err != nil {
			return fmt.Errorf("add to top %s: %w", t.Kind, err)
		}
	}
	return tx.Commit()
}

// addTop adds t to its top-list row, creating the row unless the day already has
// analytics.MaxTopValuesPerDay values of the list; then it adds to OtherValue instead.
func addTop(ctx context.Context, q *sqlitedb.Queries, t analytics.TopCount) error {
	n, err := q.AddAnalyticsTop(ctx, sqlitedb.AddAnalyticsTopParams{Delta: t.N, Kind: t.Kind, Day: t.Day, Value: t.Value})
	if err != nil || n > 0 {
		return err
	}
	distinct, err := q.CountAnalyticsTopValues(ctx, sqlitedb.CountAnalyticsTopValuesParams{Kind: t.Kind, Day: t.Day})
	if err != nil {
		return err
	}
	if distinct >= analytics.MaxTopValuesPerDay {
		t.Value = analytics.OtherValue
	}
	return q.UpsertAnalyticsTop(ctx, sqlitedb.UpsertAnalyticsTopParams{Kind: t.Kind, Day: t.Day, Value: t.Value, Delta: t.N})
}

// EventQuarters implements analytics.Store.
func (db *DB) EventQuarters(ctx context.Context, first, last int64) ([]analytics.DayQuarters, error) {
	rows, err := db.rq.ListAnalyticsQuarters(ctx, sqlitedb.ListAnalyticsQuartersParams{First: first, Last: last})
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
	rows, err := db.rq.ListAnalyticsDayCuts(ctx, sqlitedb.ListAnalyticsDayCutsParams{CutA: int64(cutA), CutB: int64(cutB), First: first, Last: last})
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
	rows, err := db.rq.ListAnalyticsTotals(ctx)
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
	rows, err := db.rq.TopAnalyticsValues(ctx, sqlitedb.TopAnalyticsValuesParams{Kind: kind, First: first, Last: last, Top: int64(limit)})
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
	r, err := db.rq.MarketingCounts(ctx)
	return r.JobsFinished, r.Users, err
}
