package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/analytics"
	"github.com/levqor/levqor/gen/api"
)

// userAgentKey carries the request's User-Agent to TrackEvent, whose strict handler
// sees only the decoded body.
type userAgentKey struct{}

// withUserAgent is a strict middleware that puts the User-Agent of a TrackEvent
// request in its context, for the bot filter.
func withUserAgent(next api.StrictHandlerFunc, operationID string) api.StrictHandlerFunc {
	if operationID != "TrackEvent" {
		return next
	}
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, request any) (any, error) {
		return next(context.WithValue(ctx, userAgentKey{}, r.UserAgent()), w, r, request)
	}
}

// analyticsOff answers the analytics routes of a server built without the service.
func analyticsOff() error {
	return levqor.Errorf(levqor.EUnavailable, "Analytics is not available on this server.")
}

// TrackEvent implements api.StrictServerInterface: 202 once the event is stored.
// Over-long fields are 400; a payload over 8 KiB is 413, as any over-long body.
func (s *handlers) TrackEvent(ctx context.Context, req api.TrackEventRequestObject) (api.TrackEventResponseObject, error) {
	if s.analytics == nil {
		return nil, analyticsOff()
	}
	b := req.Body
	in := analytics.TrackInput{
		Type: string(b.Type), Ref: deref(b.Ref), Referrer: deref(b.Referrer), Path: deref(b.Path), Email: deref(b.Email),
	}
	if b.Payload != nil {
		in.Payload = *b.Payload
	}
	in.UserAgent, _ = ctx.Value(userAgentKey{}).(string)
	id, err := s.analytics.Track(ctx, in)
	if err != nil {
		return nil, err
	}
	return api.TrackEvent202JSONResponse{Id: id}, nil
}

// GetMetricsSummary implements api.StrictServerInterface (scope metrics:read, which
// the gate enforces).
func (s *handlers) GetMetricsSummary(ctx context.Context, req api.GetMetricsSummaryRequestObject) (api.GetMetricsSummaryResponseObject, error) {
	if s.analytics == nil {
		return nil, analyticsOff()
	}
	p := req.Params
	q := analytics.SummaryQuery{TZ: deref(p.Tz)}
	if p.From != nil {
		q.From = p.From.Format(time.DateOnly)
	}
	if p.To != nil {
		q.To = p.To.Format(time.DateOnly)
	}
	sum, err := s.analytics.Summary(ctx, q)
	if err != nil {
		return nil, err
	}
	out, err := toAPISummary(sum)
	if err != nil {
		return nil, err
	}
	return api.GetMetricsSummary200JSONResponse(out), nil
}

// GetMarketingSummary implements api.StrictServerInterface: public, and cacheable
// for as long as the service reuses its figures.
func (s *handlers) GetMarketingSummary(ctx context.Context, _ api.GetMarketingSummaryRequestObject) (api.GetMarketingSummaryResponseObject, error) {
	if s.analytics == nil {
		return nil, analyticsOff()
	}
	m, err := s.analytics.Marketing(ctx)
	if err != nil {
		return nil, err
	}
	out := api.MarketingSummary{
		JobsProcessed: m.JobsProcessed, Users: m.Users, Events: m.Events, ConversionRate: m.ConversionRate, GeneratedAt: m.GeneratedAt,
		Headlines: append([]string{}, m.Headlines...), Ctas: make([]api.MarketingCTA, len(m.CTAs)),
		Usps: make([]api.MarketingUSP, len(m.USPs)), Testimonials: make([]api.Testimonial, len(m.Testimonials)),
	}
	for i, c := range m.CTAs {
		out.Ctas[i] = api.MarketingCTA{Label: c.Label, Url: c.URL}
	}
	for i, u := range m.USPs {
		out.Usps[i] = api.MarketingUSP{Title: u.Title, Body: u.Body}
	}
	for i, t := range m.Testimonials {
		out.Testimonials[i] = api.Testimonial{Quote: t.Quote, Name: t.Name, Role: t.Role}
	}
	cache := fmt.Sprintf("public, max-age=%d", int(analytics.MarketingCacheFor/time.Second))
	return api.GetMarketingSummary200JSONResponse{Body: out, Headers: api.GetMarketingSummary200ResponseHeaders{CacheControl: &cache}}, nil
}

func toAPISummary(s analytics.Summary) (api.MetricsSummary, error) {
	from, err := time.Parse(time.DateOnly, s.From)
	if err != nil {
		return api.MetricsSummary{}, fmt.Errorf("summary from: %w", err)
	}
	to, err := time.Parse(time.DateOnly, s.To)
	if err != nil {
		return api.MetricsSummary{}, fmt.Errorf("summary to: %w", err)
	}
	out := api.MetricsSummary{
		Totals: toAPICounts(s.Totals), Last24h: toAPICounts(s.Last24h), Last7d: toAPICounts(s.Last7d),
		ConversionRate: s.ConversionRate, Ctr: s.CTR, Tz: s.TZ,
		From: openapi_types.Date{Time: from}, To: openapi_types.Date{Time: to},
		Daily:        make([]api.DailyCounts, len(s.Daily)),
		TopReferrers: toAPITop(s.TopReferrers), TopPaths: toAPITop(s.TopPaths), TopUtmSources: toAPITop(s.TopUTMSources),
	}
	for i, d := range s.Daily {
		day, err := time.Parse(time.DateOnly, d.Date)
		if err != nil {
			return api.MetricsSummary{}, fmt.Errorf("summary day: %w", err)
		}
		out.Daily[i] = api.DailyCounts{Date: openapi_types.Date{Time: day}, Counts: toAPICounts(d.Counts)}
	}
	return out, nil
}

func toAPICounts(c analytics.Counts) api.EventCounts {
	return api.EventCounts{PageView: c.PageView, CtaClick: c.CTAClick, Newsletter: c.Newsletter, Conversion: c.Conversion}
}

func toAPITop(ts []analytics.Top) []api.TopEntry {
	out := make([]api.TopEntry, len(ts))
	for i, t := range ts {
		out[i] = api.TopEntry{Value: t.Value, Count: t.Count}
	}
	return out
}
