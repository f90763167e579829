package analytics

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

const (
	// QuarterSeconds is the width of a rollup bucket: 15 minutes, the greatest
	// common divisor of the UTC offsets in use, so a day in any time zone is a whole
	// number of buckets.
	QuarterSeconds = 15 * 60
	// QuartersPerDay is the number of buckets in a UTC day.
	QuartersPerDay = 24 * 60 * 60 / QuarterSeconds
	// quartersBytes is the size of a stored day of quarter counts.
	quartersBytes = 4 * QuartersPerDay

	// MaxTopValuesPerDay bounds the distinct values a top list keeps per UTC day
	// (about: concurrent transactions may each add one more); later new values of
	// that day are counted under OtherValue, so the rollup cannot grow like the events.
	MaxTopValuesPerDay = 1000
	// OtherValue is the top-list value that counts the values over the bound.
	OtherValue = "(other)"
)

// DayQuarters are the counts of one event type in each 15-minute quarter of one
// UTC day (Day is days since 1970-01-01).
type DayQuarters struct {
	Day    int64
	Type   string
	Counts [QuartersPerDay]int64
}

// DayCuts are, for one UTC day and event type, the events before two quarters of
// the day (BeforeA, BeforeB) and in the whole day (Total).
type DayCuts struct {
	Day                     int64
	Type                    string
	BeforeA, BeforeB, Total int64
}

// TypeCount is a count of one event type.
type TypeCount struct {
	Type string
	N    int64
}

// TopCount is a count of one value of a top list on one UTC day.
type TopCount struct {
	Kind  string
	Day   int64
	Value string
	N     int64
}

// Rollup is what a batch of events adds to the rollups. Each list is sorted by
// its key, the order in which the stores lock rows, so that concurrent batches on
// PostgreSQL cannot deadlock.
type Rollup struct {
	Totals   []TypeCount   // by type
	Quarters []DayQuarters // by (day, type); Counts are additions
	Tops     []TopCount    // by (kind, day, value)
}

// floorDiv is a / b rounded towards minus infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// quarterOf returns the index of the quarter holding unix second s: quarters since
// the epoch.
func quarterOf(s int64) int64 { return floorDiv(s, QuarterSeconds) }

// dayAndSlot splits a quarter index into its UTC day and its place in that day.
func dayAndSlot(q int64) (day int64, slot int) {
	day = floorDiv(q, QuartersPerDay)
	return day, int(q - day*QuartersPerDay)
}

// RollupOf returns what events add to the rollups; bots add nothing.
func RollupOf(events []Event) Rollup {
	type dayKey struct {
		day int64
		typ string
	}
	totals := map[string]int64{}
	quarters := map[dayKey]*DayQuarters{}
	tops := map[TopCount]int64{} // keyed with N = 0
	for _, e := range events {
		if e.Bot {
			continue
		}
		totals[e.Type]++
		day, slot := dayAndSlot(quarterOf(e.At.Unix()))
		k := dayKey{day, e.Type}
		dq := quarters[k]
		if dq == nil {
			dq = &DayQuarters{Day: day, Type: e.Type}
			quarters[k] = dq
		}
		dq.Counts[slot]++
		for _, t := range [...]struct{ kind, value string }{
			{TopReferrer, e.ReferrerHost}, {TopPath, e.Path}, {TopUTMSource, e.UTM.Source},
		} {
			if t.value != "" {
				tops[TopCount{Kind: t.kind, Day: day, Value: t.value}]++
			}
		}
	}
	var r Rollup
	for t, n := range totals {
		r.Totals = append(r.Totals, TypeCount{Type: t, N: n})
	}
	slices.SortFunc(r.Totals, func(a, b TypeCount) int { return cmp.Compare(a.Type, b.Type) })
	for _, dq := range quarters {
		r.Quarters = append(r.Quarters, *dq)
	}
	slices.SortFunc(r.Quarters, func(a, b DayQuarters) int {
		return cmp.Or(cmp.Compare(a.Day, b.Day), cmp.Compare(a.Type, b.Type))
	})
	for k, n := range tops {
		k.N = n
		r.Tops = append(r.Tops, k)
	}
	slices.SortFunc(r.Tops, func(a, b TopCount) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Day, b.Day), cmp.Compare(a.Value, b.Value))
	})
	return r
}

// A day of quarter counts is stored as 96 big-endian uint32 running totals: entry i
// counts the events of quarters 0..i, so entry 95 is the day's total and the events
// before any quarter are one entry, which a store can read without sending the rest
// (EventDayCuts).

// DecodeQuarters unpacks a stored day of running totals into the count of each quarter.
func DecodeQuarters(b []byte) ([QuartersPerDay]int64, error) {
	var c [QuartersPerDay]int64
	if len(b) != quartersBytes {
		return c, fmt.Errorf("quarter counts: %d bytes, want %d", len(b), quartersBytes)
	}
	prev := int64(0)
	for i := range c {
		total := int64(binary.BigEndian.Uint32(b[4*i:]))
		c[i], prev = total-prev, total
	}
	return c, nil
}

// DecodeRunningTotal unpacks one stored running total (4 bytes of a stored day).
func DecodeRunningTotal(b []byte) (int64, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("running total: %d bytes, want 4", len(b))
	}
	return int64(binary.BigEndian.Uint32(b)), nil
}

// AddQuarters returns the stored day of running totals (nil for none yet) with the
// counts of delta added to its quarters, packed for storage. A total that would leave
// the uint32 range is an error (over 4 billion events of one type in a day).
func AddQuarters(stored []byte, delta *[QuartersPerDay]int64) ([]byte, error) {
	if stored != nil && len(stored) != quartersBytes {
		return nil, fmt.Errorf("quarter counts: %d bytes, want %d", len(stored), quartersBytes)
	}
	out := make([]byte, quartersBytes)
	added := int64(0)
	for i := range delta {
		added += delta[i]
		n := added
		if stored != nil {
			n += int64(binary.BigEndian.Uint32(stored[4*i:]))
		}
		if n < 0 || n > math.MaxUint32 {
			return nil, fmt.Errorf("quarter counts: the running total at quarter %d would be %d", i, n)
		}
		binary.BigEndian.PutUint32(out[4*i:], uint32(n))
	}
	return out, nil
}
