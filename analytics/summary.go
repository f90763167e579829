package analytics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/levqor/levqor"
)

const (
	// MaxRangeDays is how many days To may be after From in a summary.
	MaxRangeDays = 366
	// defaultRangeDays is the length of the default daily breakdown, To included.
	defaultRangeDays = 7
	// topLimit is the length of each top list.
	topLimit = 10
	// secondsPerDay is the length of a UTC day.
	secondsPerDay = 24 * 60 * 60
)

// Summary returns the summary q selects, read from the rollups only: totals, the
// counts of the last 24 hours and 7 days (in whole quarters: from the quarter hour
// that began 24 h or 7 d before the current one, to now), the rates, one entry per
// day From..To in TZ (with the days of a DST change 23 or 25 hours long), and the
// top lists over the UTC days with the dates From..To. It answers levqor.EInvalid
// for an unknown zone, a malformed date, From after To, or To more than MaxRangeDays
// after From.
func (s *Service) Summary(ctx context.Context, q SummaryQuery) (Summary, error) {
	loc, tz, err := zone(q.TZ)
	if err != nil {
		return Summary{}, err
	}
	now := s.now()
	from, to, err := dateRange(q, now.In(loc))
	if err != nil {
		return Summary{}, err
	}
	days := int(to.Sub(from)/(secondsPerDay*time.Second)) + 1
	// bounds[i] is the first quarter of day i in loc; bounds[days] ends the last day.
	// Zones whose midnight falls inside a quarter (local mean time before 1900 or so)
	// start their days at that quarter.
	bounds := make([]int64, days+1)
	for i := range bounds {
		d := from.AddDate(0, 0, i)
		bounds[i] = quarterOf(time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, loc).Unix())
	}
	current := quarterOf(now.Unix())
	week := current - 7*QuartersPerDay + 1
	firstDay, lastDay := from.Unix()/secondsPerDay, to.Unix()/secondsPerDay
	out := Summary{From: from.Format(time.DateOnly), To: to.Format(time.DateOnly), TZ: tz, Daily: make([]Day, days)}

	// The reads are independent: they run at once, each on a connection of its own.
	var (
		wg                sync.WaitGroup
		dayTotals, recent before
		errs              [6]error
	)
	wg.Go(func() { dayTotals, errs[0] = s.rangeTotals(ctx, bounds) })
	wg.Go(func() {
		recent, errs[1] = s.quarterTotals(ctx, floorDiv(week, QuartersPerDay), floorDiv(current, QuartersPerDay))
	})
	wg.Go(func() {
		if out.Totals, errs[2] = s.store.EventTotals(ctx); errs[2] != nil {
			errs[2] = fmt.Errorf("read event totals: %w", errs[2])
		}
	})
	for i, t := range []struct {
		kind string
		dst  *[]Top
	}{{TopReferrer, &out.TopReferrers}, {TopPath, &out.TopPaths}, {TopUTMSource, &out.TopUTMSources}} {
		wg.Go(func() {
			if *t.dst, errs[3+i] = s.store.TopValues(ctx, t.kind, firstDay, lastDay, topLimit); errs[3+i] != nil {
				errs[3+i] = fmt.Errorf("read top %s: %w", t.kind, errs[3+i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return Summary{}, err
	}

	for i := range out.Daily {
		out.Daily[i] = Day{Date: from.AddDate(0, 0, i).Format(time.DateOnly), Counts: between(dayTotals, bounds[i], bounds[i+1])}
	}
	out.Last24h = between(recent, current-QuartersPerDay+1, current+1)
	out.Last7d = between(recent, week, current+1)
	out.ConversionRate = percent(out.Totals.Conversion, out.Totals.PageView)
	out.CTR = percent(out.Totals.CTAClick, out.Totals.PageView)
	return out, nil
}

// zone loads the IANA zone name ("" is UTC) and returns it with its name.
func zone(name string) (*time.Location, string, error) {
	if name == "" || name == "UTC" {
		return time.UTC, "UTC", nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "Local" {
		return nil, "", &levqor.Error{Code: levqor.EInvalid, Message: fmt.Sprintf("Unknown time zone %q: want an IANA name such as Europe/London.", name),
			Fields: []levqor.FieldError{{Pointer: "query.tz", Detail: "Unknown time zone."}}}
	}
	return loc, name, nil
}

// dateRange returns the From and To days of q as UTC midnights, with their defaults:
// To is today where now is, From the sixth day before To.
func dateRange(q SummaryQuery, now time.Time) (from, to time.Time, err error) {
	to = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if q.To != "" {
		if to, err = parseDate("query.to", q.To); err != nil {
			return from, to, err
		}
	}
	from = to.AddDate(0, 0, 1-defaultRangeDays)
	if q.From != "" {
		if from, err = parseDate("query.from", q.From); err != nil {
			return from, to, err
		}
	}
	if from.After(to) {
		return from, to, &levqor.Error{Code: levqor.EInvalid, Message: fmt.Sprintf("from (%s) is after to (%s).", q.From, to.Format(time.DateOnly)),
			Fields: []levqor.FieldError{{Pointer: "query.from", Detail: "After to."}}}
	}
	if to.Sub(from) > MaxRangeDays*secondsPerDay*time.Second {
		return from, to, &levqor.Error{Code: levqor.EInvalid, Message: fmt.Sprintf("to may be at most %d days after from.", MaxRangeDays),
			Fields: []levqor.FieldError{{Pointer: "query.to", Detail: fmt.Sprintf("More than %d days after from.", MaxRangeDays)}}}
	}
	return from, to, nil
}

func parseDate(pointer, s string) (time.Time, error) {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return d, &levqor.Error{Code: levqor.EInvalid, Message: fmt.Sprintf("%q is not a date: want YYYY-MM-DD.", s),
			Fields: []levqor.FieldError{{Pointer: pointer, Detail: "Want YYYY-MM-DD."}}}
	}
	return d, nil
}

// percent is num / den × 100 rounded to 2 decimals, or 0 when den is 0.
func percent(num, den int64) float64 {
	if den == 0 {
		return 0
	}
	return math.Round(float64(num)*10000/float64(den)) / 100
}

// before tells, for a UTC day and a quarter of it (0..QuartersPerDay), how many
// events of each type (in typeIndex order) came before that quarter on that day;
// QuartersPerDay asks for the whole day. It knows only some days and quarters: those
// its maker read.
type before func(day int64, quarter int) [4]int64

// between counts the events of the quarters from..to-1 with b, which must know the
// UTC days of from up to the day of to, the whole days in between, and the quarters
// of from and to.
func between(b before, from, to int64) Counts {
	var c [4]int64
	if from < to {
		d0, q0 := dayAndSlot(from)
		d1, q1 := dayAndSlot(to)
		for d := d0; d < d1; d++ {
			for i, n := range b(d, QuartersPerDay) {
				c[i] += n
			}
		}
		start, end := b(d0, q0), b(d1, q1)
		for i := range c {
			c[i] += end[i] - start[i]
		}
	}
	return Counts{PageView: c[0], CTAClick: c[1], Newsletter: c[2], Conversion: c[3]}
}

// typeIndex orders the event types in arrays of four; -1 for no type.
func typeIndex(t string) int {
	switch t {
	case PageView:
		return 0
	case CTAClick:
		return 1
	case Newsletter:
		return 2
	case Conversion:
		return 3
	}
	return -1
}

// rangeTotals reads what between needs for the days of a zone that bounds (the first
// quarter of each, and the end of the last) delimit. The days of a zone start at one
// quarter of the UTC day, or two or three over a year with changes of offset; with at
// most two, it reads just the running totals at those quarters (EventDayCuts), else
// every quarter.
func (s *Service) rangeTotals(ctx context.Context, bounds []int64) (before, error) {
	first, last := floorDiv(bounds[0], QuartersPerDay), floorDiv(bounds[len(bounds)-1], QuartersPerDay)
	var cuts []int
	for _, b := range bounds {
		if _, q := dayAndSlot(b); q != 0 && !slices.Contains(cuts, q) {
			cuts = append(cuts, q)
		}
	}
	if len(cuts) > 2 {
		return s.quarterTotals(ctx, first, last)
	}
	cuts = append(cuts, 1, 1) // unused places
	rows, err := s.store.EventDayCuts(ctx, first, last, cuts[0], cuts[1])
	if err != nil {
		return nil, fmt.Errorf("read day totals: %w", err)
	}
	type dayRow struct{ a, b, total [4]int64 }
	byDay := map[int64]*dayRow{}
	for _, r := range rows {
		i := typeIndex(r.Type)
		if i < 0 {
			continue
		}
		d := byDay[r.Day]
		if d == nil {
			d = &dayRow{}
			byDay[r.Day] = d
		}
		d.a[i], d.b[i], d.total[i] = r.BeforeA, r.BeforeB, r.Total
	}
	return func(day int64, quarter int) [4]int64 {
		d := byDay[day]
		switch {
		case d == nil || quarter == 0:
			return [4]int64{}
		case quarter == QuartersPerDay:
			return d.total
		case quarter == cuts[0]:
			return d.a
		case quarter == cuts[1]:
			return d.b
		}
		panic(fmt.Sprintf("analytics: quarter %d of day %d was not read", quarter, day))
	}, nil
}

// quarterTotals reads every quarter of the UTC days first..last.
func (s *Service) quarterTotals(ctx context.Context, first, last int64) (before, error) {
	rows, err := s.store.EventQuarters(ctx, first, last)
	if err != nil {
		return nil, fmt.Errorf("read quarter counts: %w", err)
	}
	// running[day][type][q] counts the events before quarter q.
	running := map[int64]*[4][QuartersPerDay + 1]int64{}
	for _, r := range rows {
		i := typeIndex(r.Type)
		if i < 0 {
			continue
		}
		d := running[r.Day]
		if d == nil {
			d = &[4][QuartersPerDay + 1]int64{}
			running[r.Day] = d
		}
		for q, n := range r.Counts {
			d[i][q+1] = d[i][q] + n
		}
	}
	return func(day int64, quarter int) [4]int64 {
		var out [4]int64
		if d := running[day]; d != nil {
			for i := range out {
				out[i] = d[i][quarter]
			}
		}
		return out
	}, nil
}
