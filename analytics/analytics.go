// Package analytics records privacy-friendly product events and summarises them from rollups.
//
// Emails are kept only as keyed hashes, obvious robots are stored flagged and left out of
// every count, and the rollups are updated in the transaction that stores the events, so
// a summary reads a bounded number of rows however many events there are
// (docs/adr/0007-analytics-rollups.md).
package analytics

import (
	"context"
	"encoding/json"
	"time"
)

// The event types, as the API names them.
const (
	PageView   = "page_view"
	CTAClick   = "cta_click"
	Newsletter = "newsletter"
	Conversion = "conversion"
)

// ValidType reports whether t is one of the four event types.
func ValidType(t string) bool {
	switch t {
	case PageView, CTAClick, Newsletter, Conversion:
		return true
	}
	return false
}

// The top lists, as the rollups name them.
const (
	TopReferrer  = "referrer"   // the referrer's host
	TopPath      = "path"       // the page path
	TopUTMSource = "utm_source" // utm_source from the page URL
)

// Store is what the database keeps for analytics. Both engines implement it.
type Store interface {
	// InsertEvents stores events and, in the same transaction, adds RollupOf(events)
	// to the rollups (new values of a top list beyond MaxTopValuesPerDay on a day are
	// counted under OtherValue).
	InsertEvents(ctx context.Context, events []Event) error
	// EventQuarters returns the quarter counts of the UTC days first..last (days since
	// 1970-01-01) that have any, in any order.
	EventQuarters(ctx context.Context, first, last int64) ([]DayQuarters, error)
	// EventDayCuts returns, for each UTC day of first..last that has counts and each
	// type, the events before quarters cutA and cutB of the day (each 1..95) and the
	// day's total, in any order: the little a long summary needs of each day.
	EventDayCuts(ctx context.Context, first, last int64, cutA, cutB int) ([]DayCuts, error)
	// EventTotals returns the all-time counts.
	EventTotals(ctx context.Context) (Counts, error)
	// TopValues returns up to limit values of a top list (TopReferrer, TopPath,
	// TopUTMSource) with their counts over the UTC days first..last, the most frequent
	// first and ties by value.
	TopValues(ctx context.Context, kind string, first, last int64, limit int) ([]Top, error)
	// MarketingCounts returns how many jobs reached a final state and how many users there are.
	MarketingCounts(ctx context.Context) (jobsFinished, users int64, err error)
}

// Event is one tracked event as stored; Track fills it from a TrackInput.
type Event struct {
	ID           string
	Type         string
	At           time.Time
	Path         string // the page path without query or fragment; "" when unknown
	Ref          string // the page URL with only its utm_* parameters
	Referrer     string // the referrer's URL without query or fragment
	ReferrerHost string // the referrer's lower-case host without "www."; "" when none
	UTM          UTM
	EmailHash    string          // hex HMAC-SHA-256 of the normalised email; "" without one
	Payload      json.RawMessage // a compact JSON object, or nil
	Bot          bool            // stored, but left out of every rollup
}

// Counts are event counts per type.
type Counts struct {
	PageView   int64
	CTAClick   int64
	Newsletter int64
	Conversion int64
}

// Add adds n to the count of event type t; other types are ignored.
func (c *Counts) Add(t string, n int64) {
	switch t {
	case PageView:
		c.PageView += n
	case CTAClick:
		c.CTAClick += n
	case Newsletter:
		c.Newsletter += n
	case Conversion:
		c.Conversion += n
	}
}

// Sum is the count of all types together.
func (c Counts) Sum() int64 { return c.PageView + c.CTAClick + c.Newsletter + c.Conversion }

// Day is one day's counts in the summary's time zone; Date is YYYY-MM-DD.
type Day struct {
	Date   string
	Counts Counts
}

// Top is one entry of a top-N list (referrers, paths, UTM sources).
type Top struct {
	Value string
	Count int64
}

// SummaryQuery selects the daily breakdown: From and To are YYYY-MM-DD days in TZ
// (an IANA name); empty values take the defaults (the last 7 days, UTC).
type SummaryQuery struct {
	From, To, TZ string
}

// Summary is what GET /api/v1/metrics/summary and the dashboard show. Bots are excluded.
type Summary struct {
	Totals, Last24h, Last7d Counts
	ConversionRate          float64 // conversions / page views × 100, 2 decimals, 0 without page views
	CTR                     float64 // CTA clicks / page views × 100, 2 decimals, 0 without page views
	From, To, TZ            string
	Daily                   []Day
	TopReferrers            []Top
	TopPaths                []Top
	TopUTMSources           []Top
}
