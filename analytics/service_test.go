package analytics_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/analytics"
	"github.com/levqor/levqor/static"
	"github.com/levqor/levqor/store/storetest"
)

const browser = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"

// clock is a settable time for a service under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func newService(t *testing.T) (*analytics.Service, *clock) {
	t.Helper()
	svc, err := analytics.NewService(storetest.OpenSQLite(t), []byte("service-test-secret-0123456789"))
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	copy, err := analytics.LoadCopy(static.MarketingFS())
	if err != nil {
		t.Fatalf("LoadCopy: %v", err)
	}
	c := &clock{t: time.Date(2025, 11, 3, 12, 0, 0, 0, time.UTC)}
	return svc.WithClock(c.now).WithCopy(copy), c
}

func TestTrackConcurrently(t *testing.T) {
	svc, _ := newService(t)
	const n = 300
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			in := analytics.TrackInput{Type: analytics.PageView, Path: "/", UserAgent: browser}
			if i%3 == 0 {
				in.Type, in.UserAgent = analytics.Conversion, "Googlebot/2.1"
			}
			id, err := svc.Track(t.Context(), in)
			if err != nil {
				t.Errorf("Track: %v", err)
			}
			ids <- id
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("id %q returned twice", id)
		}
		seen[id] = true
	}
	sum, err := svc.Summary(t.Context(), analytics.SummaryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (analytics.Counts{PageView: 200}); sum.Totals != want || sum.Last24h != want || sum.Daily[6].Counts != want {
		t.Errorf("after %d events, a third of them robots': totals %+v, 24 h %+v, today %+v; want %+v", n, sum.Totals, sum.Last24h, sum.Daily[6].Counts, want)
	}
}

func TestSummaryRefuses(t *testing.T) {
	svc, _ := newService(t)
	cases := map[string]analytics.SummaryQuery{
		"unknown zone":       {TZ: "Mars/Olympus_Mons"},
		"Local":              {TZ: "Local"},
		"from after to":      {From: "2025-11-03", To: "2025-11-02"},
		"367 days":           {From: "2024-01-01", To: "2025-01-02"},
		"malformed from":     {From: "2025-13-01"},
		"malformed to":       {To: "3 Nov 2025"},
		"from after default": {From: "2025-11-04"},
	}
	for name, q := range cases {
		_, err := svc.Summary(t.Context(), q)
		var le *levqor.Error
		if !errors.As(err, &le) || le.Code != levqor.EInvalid || len(le.Fields) != 1 {
			t.Errorf("%s: err = %v, want %s with the field", name, err, levqor.EInvalid)
		}
	}
	sum, err := svc.Summary(t.Context(), analytics.SummaryQuery{From: "2024-01-01", To: "2025-01-01", TZ: "Europe/London"})
	if err != nil || len(sum.Daily) != analytics.MaxRangeDays+1 || sum.Daily[0].Date != "2024-01-01" || sum.Daily[366].Date != "2025-01-01" {
		t.Errorf("the longest range: %d days, %v", len(sum.Daily), err)
	}
}

func TestMarketingCountsAndCaches(t *testing.T) {
	svc, clk := newService(t)
	ctx := t.Context()
	for _, typ := range []string{analytics.PageView, analytics.PageView, analytics.PageView, analytics.Conversion} {
		if _, err := svc.Track(ctx, analytics.TrackInput{Type: typ, UserAgent: browser}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Track(ctx, analytics.TrackInput{Type: analytics.PageView, UserAgent: "curl/8"}); err != nil {
		t.Fatal(err)
	}
	m, err := svc.Marketing(ctx)
	if err != nil {
		t.Fatalf("Marketing: %v", err)
	}
	if m.Events != 4 || m.ConversionRate != 33.33 || m.JobsProcessed != 0 || m.Users != 0 || !m.GeneratedAt.Equal(clk.now()) {
		t.Errorf("Marketing = %+v", m)
	}
	if len(m.Headlines) == 0 || len(m.Testimonials) == 0 {
		t.Errorf("Marketing without copy: %+v", m.Copy)
	}
	if _, err := svc.Track(ctx, analytics.TrackInput{Type: analytics.Newsletter, UserAgent: browser}); err != nil {
		t.Fatal(err)
	}
	clk.add(analytics.MarketingCacheFor - time.Second)
	if cached, err := svc.Marketing(ctx); err != nil || cached.Events != 4 || !cached.GeneratedAt.Equal(m.GeneratedAt) {
		t.Errorf("within the cache time: %d events at %s, %v; want the cached 4", cached.Events, cached.GeneratedAt, err)
	}
	clk.add(time.Second)
	if fresh, err := svc.Marketing(ctx); err != nil || fresh.Events != 5 || !fresh.GeneratedAt.Equal(clk.now()) {
		t.Errorf("after the cache time: %d events at %s, %v; want 5 counted now", fresh.Events, fresh.GeneratedAt, err)
	}
}
