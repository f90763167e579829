package storetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/analytics"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
)

// analyticsNow is the fixed "now" of the analytics tests: the Monday after the end
// of daylight saving time in the USA (02:00 EDT on Sunday 2 November 2025), 7
// minutes into the quarter hour that starts at 12:00 UTC.
var analyticsNow = time.Date(2025, 11, 3, 12, 7, 0, 0, time.UTC)

// mustZone loads an IANA zone or fails the test.
func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load zone %s: %v", name, err)
	}
	return loc
}

// analyticsService returns a service over s whose clock stands at now.
func analyticsService(t *testing.T, s store.Store, now time.Time) *analytics.Service {
	t.Helper()
	svc, err := analytics.NewService(s, []byte("storetest-hash-secret-0123456789"))
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	return svc.WithClock(func() time.Time { return now })
}

// ev is a fixture event: a type at a UTC time, with what the top lists count.
func ev(typ, at, path, referrerHost, utmSource string, bot bool) analytics.Event {
	when, err := time.Parse(time.RFC3339, at)
	if err != nil {
		panic(err)
	}
	return analytics.Event{
		ID: levqor.NewID("evt"), Type: typ, At: when, Path: path, Ref: "https://levqor.ai" + path,
		ReferrerHost: referrerHost, UTM: analytics.UTM{Source: utmSource}, Bot: bot,
		Payload: []byte(`{"fixture":true}`),
	}
}

// summaryFixture is the fixed fixture of the summary tests. Its comments give each
// event's date in New York (EDT until 2 Nov 06:00 UTC, EST after) and Kolkata (+5:30).
func summaryFixture() []analytics.Event {
	const pv, cta, nl, conv = analytics.PageView, analytics.CTAClick, analytics.Newsletter, analytics.Conversion
	return []analytics.Event{
		ev(pv, "2025-03-10T03:59:00Z", "/spring", "", "", false),                        // NY 9 Mar 23:59 EDT (a 23-hour day)
		ev(pv, "2025-03-10T04:00:00Z", "/spring", "", "", false),                        // NY 10 Mar 00:00 EDT
		ev(pv, "2025-10-01T00:00:00Z", "/old", "", "", false),                           // before every window
		ev(conv, "2025-10-27T12:00:00Z", "/signup", "", "", false),                      // just before the 7-day window
		ev(cta, "2025-10-27T12:15:00Z", "/pricing", "", "", false),                      // first quarter of the 7-day window
		ev(pv, "2025-11-01T18:29:59Z", "/pricing", "news.example", "newsletter", false), // Kolkata 1 Nov 23:59:59
		ev(pv, "2025-11-01T18:30:00Z", "/pricing", "", "newsletter", false),             // Kolkata 2 Nov 00:00
		ev(cta, "2025-11-02T03:59:00Z", "/pricing", "", "", false),                      // NY 1 Nov 23:59 EDT
		ev(conv, "2025-11-02T04:30:00Z", "/signup", "", "", false),                      // NY 2 Nov 00:30 EDT
		ev(pv, "2025-11-02T12:14:59Z", "/", "news.example", "", false),                  // last second before the 24-hour window
		ev(pv, "2025-11-02T12:15:00Z", "/", "search.example", "ads", false),             // first quarter of the 24-hour window
		ev(pv, "2025-11-03T04:59:00Z", "/blog/a", "", "", false),                        // NY 2 Nov 23:59 EST (a 25-hour day)
		ev(pv, "2025-11-03T05:00:00Z", "/", "", "", false),                              // NY 3 Nov 00:00 EST
		ev(cta, "2025-11-03T09:00:00Z", "/pricing", "", "", false),                      //
		ev(pv, "2025-11-03T11:00:00Z", "/bot-only", "bot.example", "botnet", true),      // a robot: counted nowhere
		ev(nl, "2025-11-03T11:50:00Z", "/newsletter", "", "", false),                    //
		ev(conv, "2025-11-03T12:06:59Z", "/signup", "bot.example", "botnet", true),      /* */ // another robot
	}
}

// day is a daily entry of a summary.
func day(date string, c analytics.Counts) analytics.Day { return analytics.Day{Date: date, Counts: c} }

// top is an entry of a top list.
func top(value string, n int64) analytics.Top { return analytics.Top{Value: value, Count: n} }

// counts builds analytics.Counts in the order page views, CTA clicks, newsletters, conversions.
func counts(pv, cta, nl, conv int64) analytics.Counts {
	return analytics.Counts{PageView: pv, CTAClick: cta, Newsletter: nl, Conversion: conv}
}

// mustSummary runs Summary and fails the test on error.
func mustSummary(t *testing.T, svc *analytics.Service, q analytics.SummaryQuery) analytics.Summary {
	t.Helper()
	sum, err := svc.Summary(t.Context(), q)
	if err != nil {
		t.Fatalf("Summary(%+v): %v", q, err)
	}
	return sum
}

// checkDaily fails the test unless daily is want, day by day.
func checkDaily(t *testing.T, what string, daily []analytics.Day, want []analytics.Day) {
	t.Helper()
	if !slices.Equal(daily, want) {
		t.Errorf("%s daily:\n got %v\nwant %v", what, daily, want)
	}
}

// RunAnalytics checks the analytics.Store contract, and the summary arithmetic of
// analytics.Service on the engine's rollups.
func RunAnalytics(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("SummaryOfFixture", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		if err := s.InsertEvents(t.Context(), summaryFixture()); err != nil {
			t.Fatalf("InsertEvents: %v", err)
		}
		svc := analyticsService(t, s, analyticsNow)

		utc := mustSummary(t, svc, analytics.SummaryQuery{From: "2025-10-31", To: "2025-11-03", TZ: "UTC"})
		if want := counts(9, 3, 1, 2); utc.Totals != want {
			t.Errorf("Totals = %+v, want %+v (robots excluded)", utc.Totals, want)
		}
		if want := counts(3, 1, 1, 0); utc.Last24h != want {
			t.Errorf("Last24h = %+v, want %+v", utc.Last24h, want)
		}
		if want := counts(6, 3, 1, 1); utc.Last7d != want {
			t.Errorf("Last7d = %+v, want %+v", utc.Last7d, want)
		}
		// 2 conversions and 3 CTA clicks over 9 page views.
		if utc.ConversionRate != 22.22 || utc.CTR != 33.33 {
			t.Errorf("ConversionRate, CTR = %v, %v; want 22.22, 33.33", utc.ConversionRate, utc.CTR)
		}
		if utc.From != "2025-10-31" || utc.To != "2025-11-03" || utc.TZ != "UTC" {
			t.Errorf("From, To, TZ = %q, %q, %q", utc.From, utc.To, utc.TZ)
		}
		checkDaily(t, "UTC", utc.Daily, []analytics.Day{
			day("2025-10-31", counts(0, 0, 0, 0)),
			day("2025-11-01", counts(2, 0, 0, 0)),
			day("2025-11-02", counts(2, 1, 0, 1)),
			day("2025-11-03", counts(2, 1, 1, 0)),
		})
		wantPaths := []analytics.Top{top("/pricing", 4), top("/", 3), top("/blog/a", 1), top("/newsletter", 1), top("/signup", 1)}
		if !slices.Equal(utc.TopPaths, wantPaths) {
			t.Errorf("TopPaths = %v, want %v", utc.TopPaths, wantPaths)
		}
		if want := []analytics.Top{top("news.example", 2), top("search.example", 1)}; !slices.Equal(utc.TopReferrers, want) {
			t.Errorf("TopReferrers = %v, want %v", utc.TopReferrers, want)
		}
		if want := []analytics.Top{top("newsletter", 2), top("ads", 1)}; !slices.Equal(utc.TopUTMSources, want) {
			t.Errorf("TopUTMSources = %v, want %v", utc.TopUTMSources, want)
		}

		kolkata := mustSummary(t, svc, analytics.SummaryQuery{From: "2025-11-01", To: "2025-11-03", TZ: "Asia/Kolkata"})
		checkDaily(t, "Asia/Kolkata", kolkata.Daily, []analytics.Day{
			day("2025-11-01", counts(1, 0, 0, 0)),
			day("2025-11-02", counts(3, 1, 0, 1)),
			day("2025-11-03", counts(2, 1, 1, 0)),
		})
		if kolkata.TZ != "Asia/Kolkata" || kolkata.Totals != utc.Totals || kolkata.Last24h != utc.Last24h {
			t.Errorf("Asia/Kolkata: TZ %q, totals %+v, last 24 h %+v: the zone changed more than the days", kolkata.TZ, kolkata.Totals, kolkata.Last24h)
		}
		// Top lists use the UTC days of the same dates: 2 and 3 November.
		kolkataNov2 := mustSummary(t, svc, analytics.SummaryQuery{From: "2025-11-02", To: "2025-11-03", TZ: "Asia/Kolkata"})
		if want := []analytics.Top{top("/", 3), top("/pricing", 2), top("/blog/a", 1), top("/newsletter", 1), top("/signup", 1)}; !slices.Equal(kolkataNov2.TopPaths, want) {
			t.Errorf("Asia/Kolkata 2-3 Nov TopPaths = %v, want %v", kolkataNov2.TopPaths, want)
		}

		// +5:45: a quarter-hour offset. Both 1 November 18:29:59 and 18:30 UTC are 2 November there.
		kathmandu := mustSummary(t, svc, analytics.SummaryQuery{From: "2025-11-01", To: "2025-11-02", TZ: "Asia/Kathmandu"})
		checkDaily(t, "Asia/Kathmandu", kathmandu.Daily, []analytics.Day{
			day("2025-11-01", counts(0, 0, 0, 0)),
			day("2025-11-02", counts(4, 1, 0, 1)),
		})

		newYork := mustSummary(t, svc, analytics.SummaryQuery{From: "2025-11-01", To: "2025-11-03", TZ: "America/New_York"})
		checkDaily(t, "America/New_York (autumn)", newYork.Daily, []analytics.Day{
			day("2025-11-01", counts(2, 1, 0, 0)),
			day("2025-11-02", counts(3, 0, 0, 1)), // 25 hours
			day("2025-11-03", counts(1, 1, 1, 0)),
		})
		spring := mustSummary(t, svc, analytics.SummaryQuery{From: "2025-03-09", To: "2025-03-10", TZ: "America/New_York"})
		checkDaily(t, "America/New_York (spring)", spring.Daily, []analytics.Day{
			day("2025-03-09", counts(1, 0, 0, 0)), // 23 hours
			day("2025-03-10", counts(1, 0, 0, 0)),
		})
		springUTC := mustSummary(t, svc, analytics.SummaryQuery{From: "2025-03-09", To: "2025-03-10"})
		checkDaily(t, "UTC (spring)", springUTC.Daily, []analytics.Day{
			day("2025-03-09", counts(0, 0, 0, 0)),
			day("2025-03-10", counts(2, 0, 0, 0)),
		})
	})

	t.Run("SummaryDefaults", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		if err := s.InsertEvents(t.Context(), summaryFixture()); err != nil {
			t.Fatalf("InsertEvents: %v", err)
		}
		svc := analyticsService(t, s, analyticsNow)
		sum := mustSummary(t, svc, analytics.SummaryQuery{})
		if sum.From != "2025-10-28" || sum.To != "2025-11-03" || sum.TZ != "UTC" || len(sum.Daily) != 7 {
			t.Fatalf("defaults: From %q To %q TZ %q, %d days; want the 7 UTC days to 2025-11-03", sum.From, sum.To, sum.TZ, len(sum.Daily))
		}
		if last := sum.Daily[6]; last != (analytics.Day{Date: "2025-11-03", Counts: counts(2, 1, 1, 0)}) {
			t.Errorf("today = %+v", last)
		}
		// At 12:07 UTC it is already 4 November at +14:00.
		kiritimati := mustSummary(t, svc, analytics.SummaryQuery{TZ: "Pacific/Kiritimati"})
		if kiritimati.From != "2025-10-29" || kiritimati.To != "2025-11-04" {
			t.Errorf("defaults in Pacific/Kiritimati: %s..%s, want 2025-10-29..2025-11-04", kiritimati.From, kiritimati.To)
		}
	})

	t.Run("NoPageViews", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		svc := analyticsService(t, s, analyticsNow)
		empty := mustSummary(t, svc, analytics.SummaryQuery{})
		if empty.Totals != (analytics.Counts{}) || empty.ConversionRate != 0 || empty.CTR != 0 || len(empty.Daily) != 7 ||
			len(empty.TopPaths) != 0 || len(empty.TopReferrers) != 0 || len(empty.TopUTMSources) != 0 {
			t.Errorf("summary of no events = %+v", empty)
		}
		events := []analytics.Event{
			ev(analytics.Conversion, "2025-11-03T10:00:00Z", "/signup", "", "", false),
			ev(analytics.CTAClick, "2025-11-03T10:01:00Z", "/", "", "", false),
			ev(analytics.PageView, "2025-11-03T10:02:00Z", "/", "", "", true), // a robot's page view does not count
		}
		if err := s.InsertEvents(t.Context(), events); err != nil {
			t.Fatalf("InsertEvents: %v", err)
		}
		sum := mustSummary(t, svc, analytics.SummaryQuery{})
		if sum.Totals != counts(0, 1, 0, 1) || sum.ConversionRate != 0 || sum.CTR != 0 {
			t.Errorf("no page views: totals %+v, conversion rate %v, CTR %v; want rates 0", sum.Totals, sum.ConversionRate, sum.CTR)
		}
	})

	t.Run("RollupsAgreeWithEvents", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// 20 February to 11 April 2025: both daylight-saving changes of 2025 in America and Europe.
		events := randomEvents(1500, time.Date(2025, 2, 20, 0, 0, 0, 0, time.UTC), 50)
		// Batches of every size: one event (as Track sends when alone), and large ones
		// (PostgreSQL copies those).
		for rest, size := events, 1; len(rest) > 0; size = size*3 + 1 {
			n := min(size, len(rest))
			if err := s.InsertEvents(t.Context(), rest[:n]); err != nil {
				t.Fatalf("InsertEvents(%d events): %v", n, err)
			}
			rest = rest[n:]
		}
		for _, now := range []time.Time{
			time.Date(2025, 3, 9, 7, 0, 0, 0, time.UTC),   // just after the US change
			time.Date(2025, 3, 31, 0, 30, 0, 0, time.UTC), // just after the EU change
			time.Date(2025, 4, 12, 0, 0, 0, 0, time.UTC),  // after the last event
		} {
			svc := analyticsService(t, s, now)
			for _, tz := range []string{"UTC", "Asia/Kolkata", "America/New_York", "Europe/London", "Asia/Kathmandu", "Pacific/Chatham", "America/St_Johns"} {
				q := analytics.SummaryQuery{From: "2025-02-18", To: "2025-04-12", TZ: tz}
				got := mustSummary(t, svc, q)
				want := bruteSummary(events, mustZone(t, tz), q, now)
				what := fmt.Sprintf("%s at %s", tz, now.Format(time.RFC3339))
				checkDaily(t, what, got.Daily, want.Daily)
				if got.Totals != want.Totals || got.Last24h != want.Last24h || got.Last7d != want.Last7d {
					t.Errorf("%s: totals, 24 h, 7 d = %+v, %+v, %+v; counted from the events %+v, %+v, %+v",
						what, got.Totals, got.Last24h, got.Last7d, want.Totals, want.Last24h, want.Last7d)
				}
				if !slices.Equal(got.TopPaths, want.TopPaths) || !slices.Equal(got.TopReferrers, want.TopReferrers) || !slices.Equal(got.TopUTMSources, want.TopUTMSources) {
					t.Errorf("%s: top lists\n got %v %v %v\nwant %v %v %v", what,
						got.TopPaths, got.TopReferrers, got.TopUTMSources, want.TopPaths, want.TopReferrers, want.TopUTMSources)
				}
			}
		}
	})

	t.Run("ZoneOfThreeOffsets", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// Colombo went from +5:30 to +6:30 on 25 May 1996 and to +6:00 on 26 October:
		// its days of 1996 start at three different quarters of the UTC day.
		events := randomEvents(1200, time.Date(1996, 1, 1, 0, 0, 0, 0, time.UTC), 366)
		if err := s.InsertEvents(t.Context(), events); err != nil {
			t.Fatalf("InsertEvents: %v", err)
		}
		now := time.Date(1997, 1, 1, 0, 0, 0, 0, time.UTC)
		q := analytics.SummaryQuery{From: "1996-01-01", To: "1996-12-31", TZ: "Asia/Colombo"}
		got := mustSummary(t, analyticsService(t, s, now), q)
		want := bruteSummary(events, mustZone(t, q.TZ), q, now)
		checkDaily(t, q.TZ+" 1996", got.Daily, want.Daily)
		if got.Totals != want.Totals {
			t.Errorf("totals %+v, counted from the events %+v", got.Totals, want.Totals)
		}
	})

	t.Run("ConcurrentBatches", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const writers, batches = 8, 20
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				for b := range batches {
					// Every batch touches the same rollup rows, the ones of other writers too.
					batch := []analytics.Event{
						ev(analytics.PageView, "2025-11-02T10:00:00Z", "/", "a.example", "x", false),
						ev(analytics.PageView, "2025-11-03T10:00:00Z", fmt.Sprintf("/w%d/b%d", w, b), "b.example", "y", false),
						ev(analytics.Conversion, "2025-11-03T10:00:00Z", "/", "a.example", "x", false),
					}
					if err := s.InsertEvents(t.Context(), batch); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent InsertEvents: %v", err)
		}
		sum := mustSummary(t, analyticsService(t, s, analyticsNow), analytics.SummaryQuery{From: "2025-11-02", To: "2025-11-03"})
		n := int64(writers * batches)
		if sum.Totals != counts(2*n, 0, 0, n) {
			t.Errorf("totals after %d concurrent batches: %+v", n, sum.Totals)
		}
		checkDaily(t, "concurrent", sum.Daily, []analytics.Day{day("2025-11-02", counts(n, 0, 0, 0)), day("2025-11-03", counts(n, 0, 0, n))})
		if len(sum.TopPaths) == 0 || sum.TopPaths[0] != (analytics.Top{Value: "/", Count: 2 * n}) {
			t.Errorf("top paths after concurrent batches: %v", sum.TopPaths)
		}
	})

	t.Run("TopValuesBounded", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		var events []analytics.Event
		for i := range analytics.MaxTopValuesPerDay + 1 {
			events = append(events, ev(analytics.PageView, "2025-11-03T10:00:00Z", fmt.Sprintf("/p%04d", i), "", "", false))
		}
		if err := s.InsertEvents(ctx, events); err != nil {
			t.Fatalf("InsertEvents: %v", err)
		}
		later := []analytics.Event{
			ev(analytics.PageView, "2025-11-03T11:00:00Z", "/zzz", "", "", false),   // new: counted as (other)
			ev(analytics.PageView, "2025-11-03T11:00:00Z", "/p0000", "", "", false), // known: counted as itself
			ev(analytics.PageView, "2025-11-04T11:00:00Z", "/zzz", "", "", false),   // the next day has room
		}
		if err := s.InsertEvents(ctx, later); err != nil {
			t.Fatalf("InsertEvents: %v", err)
		}
		today := analyticsNow.Unix() / 86400
		kept, err := s.TopValues(ctx, analytics.TopPath, today, today, 2*analytics.MaxTopValuesPerDay)
		if err != nil {
			t.Fatalf("TopValues: %v", err)
		}
		if len(kept) != analytics.MaxTopValuesPerDay+1 {
			t.Errorf("%d distinct values kept, want %d and %q", len(kept), analytics.MaxTopValuesPerDay, analytics.OtherValue)
		}
		if !slices.Equal(kept[:2], []analytics.Top{top(analytics.OtherValue, 2), top("/p0000", 2)}) {
			t.Errorf("first entries %v: want (other) and /p0000 at 2", kept[:2])
		}
		if i := slices.IndexFunc(kept, func(e analytics.Top) bool { return e.Value == "/zzz" || e.Value == "/p1000" }); i >= 0 {
			t.Errorf("value over the bound kept: %v", kept[i])
		}
		next, err := s.TopValues(ctx, analytics.TopPath, today+1, today+1, 10)
		if err != nil || !slices.Equal(next, []analytics.Top{top("/zzz", 1)}) {
			t.Errorf("next day's top: %v, %v", next, err)
		}
		if got, err := s.TopValues(ctx, analytics.TopPath, today, today+1, 3); err != nil || len(got) != 3 {
			t.Errorf("TopValues with limit 3: %d entries, %v", len(got), err)
		}
	})

	t.Run("MarketingCounts", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		owner := addOwner(t, s, "marketing@example.com")
		addOwner(t, s, "second@example.com")
		for range 4 {
			insertJob(t, s, newJob(owner))
		}
		claimed := claimJobs(t, s, "lease-1", jobAt, jobAt.Add(time.Minute), 3)
		if len(claimed) != 3 {
			t.Fatalf("claimed %d jobs, want 3", len(claimed))
		}
		done := jobAt.Add(time.Second)
		finishJobs(t, s, done,
			jobs.Finish{ID: claimed[0].ID, LeaseToken: "lease-1", Status: jobs.StatusSucceeded, Steps: claimed[0].Steps, RunAt: claimed[0].RunAt, FinishedAt: &done},
			jobs.Finish{ID: claimed[1].ID, LeaseToken: "lease-1", Status: jobs.StatusFailed, Steps: claimed[1].Steps, RunAt: claimed[1].RunAt, FinishedAt: &done,
				ErrorCode: "upstream_timeout", ErrorMessage: "timed out"})
		jobsFinished, users, err := s.MarketingCounts(ctx)
		if err != nil {
			t.Fatalf("MarketingCounts: %v", err)
		}
		// One job still queued and one running: neither has reached a final state.
		if jobsFinished != 2 || users != 2 {
			t.Errorf("MarketingCounts = %d jobs, %d users; want 2 and 2", jobsFinished, users)
		}
	})
}

// randomEvents returns n events over the days after start with random types,
// paths, referrers and sources, a tenth of them robots'. The seed is fixed.
func randomEvents(n int, start time.Time, days int) []analytics.Event {
	r := rand.New(rand.NewPCG(7, 2025))
	span := int64(time.Duration(days) * 24 * time.Hour / time.Second)
	types := []string{analytics.PageView, analytics.PageView, analytics.PageView, analytics.CTAClick, analytics.Newsletter, analytics.Conversion}
	values := func(prefix string, k int) string {
		if r.IntN(5) == 0 {
			return "" // none
		}
		return fmt.Sprintf("%s%d", prefix, r.IntN(k))
	}
	out := make([]analytics.Event, n)
	for i := range out {
		out[i] = analytics.Event{
			ID: levqor.NewID("evt"), Type: types[r.IntN(len(types))], At: start.Add(time.Duration(r.Int64N(span)) * time.Second),
			Path: values("/page", 14), ReferrerHost: values("ref", 12), UTM: analytics.UTM{Source: values("src", 11)},
			Bot: r.IntN(10) == 0,
		}
	}
	return out
}

// bruteSummary counts what Summary should answer for q in loc at now directly from
// the events: each event's local date for the daily breakdown, its quarter for the
// windows, and its UTC date for the top lists.
func bruteSummary(events []analytics.Event, loc *time.Location, q analytics.SummaryQuery, now time.Time) analytics.Summary {
	from, _ := time.Parse(time.DateOnly, q.From)
	to, _ := time.Parse(time.DateOnly, q.To)
	var out analytics.Summary
	index := map[string]int{}
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		index[d.Format(time.DateOnly)] = len(out.Daily)
		out.Daily = append(out.Daily, analytics.Day{Date: d.Format(time.DateOnly)})
	}
	current := now.Truncate(15 * time.Minute)
	tops := map[string]map[string]int64{}
	for _, e := range events {
		if e.Bot {
			continue
		}
		out.Totals.Add(e.Type, 1)
		if i, ok := index[e.At.In(loc).Format(time.DateOnly)]; ok {
			out.Daily[i].Counts.Add(e.Type, 1)
		}
		if !e.At.Before(current.Add(-95*15*time.Minute)) && e.At.Before(current.Add(15*time.Minute)) {
			out.Last24h.Add(e.Type, 1)
		}
		if !e.At.Before(current.Add(-671*15*time.Minute)) && e.At.Before(current.Add(15*time.Minute)) {
			out.Last7d.Add(e.Type, 1)
		}
		if utcDay := e.At.UTC().Truncate(24 * time.Hour); utcDay.Before(from) || utcDay.After(to) {
			continue
		}
		for kind, v := range map[string]string{analytics.TopPath: e.Path, analytics.TopReferrer: e.ReferrerHost, analytics.TopUTMSource: e.UTM.Source} {
			if v != "" {
				if tops[kind] == nil {
					tops[kind] = map[string]int64{}
				}
				tops[kind][v]++
			}
		}
	}
	topOf := func(kind string) []analytics.Top {
		var list []analytics.Top
		for v, n := range tops[kind] {
			list = append(list, analytics.Top{Value: v, Count: n})
		}
		slices.SortFunc(list, func(a, b analytics.Top) int {
			if a.Count != b.Count {
				return int(b.Count - a.Count)
			}
			return strings.Compare(a.Value, b.Value)
		})
		return list[:min(len(list), 10)]
	}
	out.TopPaths, out.TopReferrers, out.TopUTMSources = topOf(analytics.TopPath), topOf(analytics.TopReferrer), topOf(analytics.TopUTMSource)
	return out
}
