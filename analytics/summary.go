package analytics

import (
	"context"
	"fmt"
	"math"
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
	qt := quarterTable{}
	if err := qt.load(ctx, s.store, floorDiv(bounds[0], QuartersPerDay), floorDiv(bounds[days]-1, QuartersPerDay)); err != nil {
		return Summary{}, err
	}
	week := current - 7*QuartersPerDay + 1
	if err := qt.load(ctx, s.store, floorDiv(week, QuartersPerDay), floorDiv(current, QuartersPerDay)); err != nil {
		return Summary{}, err
	}

	out := Summary{From: from.Format(time.DateOnly), To: to.Format(time.DateOnly), TZ: tz, Daily: make([]Day, days)}
	for i := range out.Daily {
		out.Daily[i] = Day{Date: from.AddDate(0, 0, i).Format(time.DateOnly), Counts: qt.sum(bounds[i], bounds[i+1])}
	}
	out.Last24h = qt.sum(current-QuartersPerDay+1, current+1)
	out.Last7d = qt.sum(week, current+1)
	if out.Totals, err = s.store.EventTotals(ctx); err != nil {
		return Summary{}, fmt.Errorf("read event totals: %w", err)
	}
	out.ConversionRate = percent(out.Totals.Conversion, out.Totals.PageView)
	out.CTR = percent(out.Totals.CTAClick, out.Totals.PageView)

	firstDay, lastDay := from.Unix()/secondsPerDay, to.Unix()/secondsPerDay
	for _, t := range []struct {
		kind string
		dst  *[]Top
	}{{TopReferrer, &out.TopReferrers}, {TopPath, &out.TopPaths}, {TopUTMSource, &out.TopUTMSources}} {
		top, err := s.store.TopValues(ctx, t.kind, firstDay, lastDay, topLimit)
		if err != nil {
			return Summary{}, fmt.Errorf("read top %s: %w", t.kind, err)
		}
		*t.dst = top
	}
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

// quarterTable holds quarter counts by UTC day, as read from the rollups.
type quarterTable map[int64]*[4][QuartersPerDay]int64

// typeIndex orders the event types in a quarterTable row; -1 for no type.
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

// load reads the UTC days first..last into qt (replacing days read before).
func (qt quarterTable) load(ctx context.Context, st Store, first, last int64) error {
	rows, err := st.EventQuarters(ctx, first, last)
	if err != nil {
		return fmt.Errorf("read quarter counts: %w", err)
	}
	seen := map[int64]bool{}
	for _, r := range rows {
		i := typeIndex(r.Type)
		if i < 0 {
			continue
		}
		day := qt[r.Day]
		if day == nil || !seen[r.Day] {
			day = &[4][QuartersPerDay]int64{}
			qt[r.Day] = day
			seen[r.Day] = true
		}
		day[i] = r.Counts
	}
	return nil
}

// sum adds up the quarters from..to-1.
func (qt quarterTable) sum(from, to int64) Counts {
	var c [4]int64
	for q := from; q < to; {
		day, slot := dayAndSlot(q)
		end := min(to, (day+1)*QuartersPerDay) // the rest of this day within the range
		if row := qt[day]; row != nil {
			for i := range c {
				for s := slot; s < slot+int(end-q); s++ {
					c[i] += row[i][s]
				}
			}
		}
		q = end
	}
	return Counts{PageView: c[0], CTAClick: c[1], Newsletter: c[2], Conversion: c[3]}
}
