// Package analytics records privacy-friendly product events and summarises them from rollups.
package analytics

import (
	"context"
	"errors"
)

// Store is what the database keeps for analytics. (Filled in by the analytics work.)
type Store interface{}

// Counts are event counts per type.
type Counts struct {
	PageView   int64
	CTAClick   int64
	Newsletter int64
	Conversion int64
}

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

// Service records events and summarises them. (Filled in by the analytics work.)
type Service struct{}

// Summary returns the summary q selects.
func (s *Service) Summary(ctx context.Context, q SummaryQuery) (Summary, error) {
	return Summary{}, errors.New("analytics: not built yet")
}
