package server_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"
	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/levqor/levqor/analytics"
	"github.com/levqor/levqor/gen/client"
	"github.com/levqor/levqor/server"
	"github.com/levqor/levqor/static"
	"github.com/levqor/levqor/store/sqlite"
)

const (
	// testHashSecret keys the email hashes of servers started withAnalytics.
	testHashSecret = "metrics-test-hash-secret-0123456789"
	// trackUA is a person's browser; the default Go client's User-Agent is a robot's.
	trackUA = "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0"
)

// withAnalytics gives the server an analytics service over its store. Put it after
// any option that replaces the store.
func withAnalytics(t *testing.T) func(*testOptions) {
	return func(o *testOptions) {
		svc, err := analytics.NewService(o.Store, []byte(testHashSecret))
		if err != nil {
			t.Fatalf("analytics.NewService: %v", err)
		}
		o.Analytics = svc.WithCopy(marketingCopy(t))
	}
}

// track posts body to the track route from a browser and returns the response.
func (b *bundle) track(t *testing.T, body string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {trackUA}}
	for k, v := range header {
		h[k] = v
	}
	return b.do(t, "POST", "/api/v1/metrics/track", h, strings.NewReader(body))
}

// summary reads the metrics summary with key and query and decodes it.
func (b *bundle) summary(t *testing.T, key, query string) client.MetricsSummary {
	t.Helper()
	resp, body := b.do(t, "GET", "/api/v1/metrics/summary"+query, hdr(key, ""), nil)
	return decode[client.MetricsSummary](t, resp, body, http.StatusOK)
}

// metricsKey creates a user and a key of theirs with only metrics:read.
func (b *bundle) metricsKey(t *testing.T) string {
	t.Helper()
	u := b.createUser(t, "analyst@example.com")
	return b.createKey(t, u.Id, "metrics:read").Key
}

func TestTrackAndSummarise(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin, withAnalytics(t))
	key := b.metricsKey(t)

	resp, body := b.track(t, `{"type":"page_view","path":"/pricing","ref":"https://levqor.ai/pricing?utm_source=Newsletter",`+
		`"referrer":"https://www.example.com/post","payload":{"plan":"pro","n":[1,{"x":null}]}}`, nil)
	accepted := decode[client.TrackAccepted](t, resp, body, http.StatusAccepted)
	if !strings.HasPrefix(accepted.Id, "evt_") {
		t.Errorf("id %q, want evt_…", accepted.Id)
	}
	for _, typ := range []string{"cta_click", "conversion", "newsletter"} {
		resp, body := b.track(t, `{"type":"`+typ+`","path":"/pricing"}`, nil)
		decode[client.TrackAccepted](t, resp, body, http.StatusAccepted)
	}
	// A robot's event is accepted (it must not learn it is filtered) and counted nowhere.
	resp, body = b.track(t, `{"type":"page_view","path":"/bots","referrer":"https://bot.example/"}`, http.Header{"User-Agent": {"curl/8.5.0"}})
	decode[client.TrackAccepted](t, resp, body, http.StatusAccepted)

	sum := b.summary(t, key, "?tz=Europe/London")
	want := client.EventCounts{PageView: 1, CtaClick: 1, Conversion: 1, Newsletter: 1}
	if sum.Totals != want || sum.Last24h != want || sum.Last7d != want {
		t.Errorf("totals %+v, 24 h %+v, 7 d %+v; want %+v each", sum.Totals, sum.Last24h, sum.Last7d, want)
	}
	if sum.ConversionRate != 100 || sum.Ctr != 100 || sum.Tz != "Europe/London" || len(sum.Daily) != 7 {
		t.Errorf("rates %v %v, tz %q, %d days", sum.ConversionRate, sum.Ctr, sum.Tz, len(sum.Daily))
	}
	today := time.Now().In(mustLoad(t, "Europe/London")).Format(time.DateOnly)
	if last := sum.Daily[6]; last.Date.Format(time.DateOnly) != today || last.Counts != want {
		t.Errorf("last day %s %+v, want %s %+v", last.Date, last.Counts, today, want)
	}
	if len(sum.TopPaths) != 1 || sum.TopPaths[0] != (client.TopEntry{Value: "/pricing", Count: 4}) {
		t.Errorf("top paths %+v", sum.TopPaths)
	}
	if len(sum.TopReferrers) != 1 || sum.TopReferrers[0] != (client.TopEntry{Value: "example.com", Count: 1}) {
		t.Errorf("top referrers %+v", sum.TopReferrers)
	}
	if len(sum.TopUtmSources) != 1 || sum.TopUtmSources[0] != (client.TopEntry{Value: "newsletter", Count: 1}) {
		t.Errorf("top UTM sources %+v", sum.TopUtmSources)
	}

	// An explicit range, through the generated client.
	from, to := "2025-01-01", "2025-01-03"
	got, err := b.Client.GetMetricsSummaryWithResponse(t.Context(), &client.GetMetricsSummaryParams{
		From: mustDate(t, from), To: mustDate(t, to), Tz: ptr("Asia/Kolkata"),
	}, withKey(key))
	if err != nil || got.JSON200 == nil {
		t.Fatalf("GetMetricsSummary: %v %s", err, got.Body)
	}
	if d := got.JSON200.Daily; len(d) != 3 || d[0].Date.Format(time.DateOnly) != from || d[2].Date.Format(time.DateOnly) != to || d[1].Counts != (client.EventCounts{}) {
		t.Errorf("daily %s..%s: %+v", from, to, d)
	}
}

func TestSummaryRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin, withAnalytics(t))
	key := b.metricsKey(t)
	cases := map[string]string{
		"unknown zone":      "?tz=Mars/Olympus",
		"Local":             "?tz=Local",
		"zone with a dot":   "?tz=../etc/passwd",
		"from after to":     "?from=2025-11-03&to=2025-11-02",
		"367 days":          "?from=2024-01-01&to=2025-01-02",
		"malformed date":    "?from=2025-02-30",
		"not a date":        "?to=yesterday",
		"long zone":         "?tz=" + strings.Repeat("A", 65),
		"from without a to": "?from=2999-01-01",
	}
	for name, q := range cases {
		resp, body := b.do(t, "GET", "/api/v1/metrics/summary"+q, hdr(key, ""), nil)
		if p := problemOf(t, resp, body); resp.StatusCode != http.StatusBadRequest || p.Code != "invalid" {
			t.Errorf("%s (%s): %d %s", name, q, resp.StatusCode, body)
		}
	}
	// 366 days after from is the longest range.
	if sum := b.summary(t, key, "?from=2024-01-01&to=2025-01-01"); len(sum.Daily) != 367 {
		t.Errorf("366 days after from: %d days", len(sum.Daily))
	}
}

func TestSummaryNeedsMetricsScope(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin, withAnalytics(t))
	u := b.createUser(t, "reader@example.com")
	usersOnly := b.createKey(t, u.Id, "users:read").Key
	resp, body := b.do(t, "GET", "/api/v1/metrics/summary", hdr(usersOnly, ""), nil)
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusForbidden || p.Code != "forbidden" {
		t.Errorf("key without metrics:read: %d %s", resp.StatusCode, body)
	}
	resp, body = b.do(t, "GET", "/api/v1/metrics/summary", nil, nil)
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusUnauthorized || p.Code != "unauthorized" {
		t.Errorf("no key: %d %s", resp.StatusCode, body)
	}
	b.summary(t, adminKey, "") // admin keys hold every scope
}

func TestTrackRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t, withAnalytics(t))
	manyProps := func(n int) string {
		props := make([]string, n)
		for i := range props {
			props[i] = fmt.Sprintf(`"p%d":1`, i)
		}
		return strings.Join(props, ",")
	}
	nest := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	cases := []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"unknown type", "application/json", `{"type":"purchase"}`, 400, "invalid"},
		{"no type", "application/json", `{"path":"/"}`, 400, "invalid"},
		{"type of the wrong kind", "application/json", `{"type":1}`, 400, "invalid"},
		{"additional property", "application/json", `{"type":"page_view","ip":"203.0.113.9"}`, 400, "invalid"},
		{"payload not an object", "application/json", `{"type":"page_view","payload":[1,2]}`, 400, "invalid"},
		{"payload of 257 properties", "application/json", `{"type":"page_view","payload":{` + manyProps(257) + `}}`, 400, "invalid"},
		{"payload over 8 KiB", "application/json", `{"type":"page_view","payload":{"x":"` + strings.Repeat("a", 8<<10) + `"}}`, 413, "too_large"},
		{"payload 17 levels deep", "application/json", `{"type":"page_view","payload":` + nest(17) + `}`, 400, "invalid"},
		{"body 40 levels deep", "application/json", `{"type":"page_view","payload":` + nest(40) + `}`, 400, "invalid"},
		{"ref over 2000 characters", "application/json", `{"type":"page_view","ref":"https://levqor.ai/?` + strings.Repeat("x", 2000) + `"}`, 400, "invalid"},
		{"email over 254 characters", "application/json", `{"type":"page_view","email":"` + strings.Repeat("e", 250) + `@x.io"}`, 400, "invalid"},
		{"not JSON", "application/json", `{"type":`, 400, "invalid"},
		{"empty body", "application/json", ``, 400, "invalid"},
		{"wrong content type", "text/plain", `{"type":"page_view"}`, 415, "unsupported_media_type"},
		{"form content type", "application/x-www-form-urlencoded", `type=page_view`, 415, "unsupported_media_type"},
	}
	for _, tc := range cases {
		resp, body := b.track(t, tc.body, http.Header{"Content-Type": {tc.contentType}})
		if p := problemOf(t, resp, body); resp.StatusCode != tc.status || string(p.Code) != tc.code {
			t.Errorf("%s: %d %s %.200s, want %d %s", tc.name, resp.StatusCode, p.Code, deref(p.Detail), tc.status, tc.code)
		}
	}
	// 16 levels and 8 KiB are allowed.
	resp, body := b.track(t, `{"type":"page_view","payload":`+nest(15)+`}`, nil) // the payload object and 15 more
	decode[client.TrackAccepted](t, resp, body, http.StatusAccepted)
	resp, body = b.track(t, `{"type":"page_view","payload":{"x":"`+strings.Repeat("a", 8<<10-8)+`"}}`, nil)
	decode[client.TrackAccepted](t, resp, body, http.StatusAccepted)
}

func TestTrackPerIPLimit(t *testing.T) {
	t.Parallel()
	rate := func(n int64) limiter.Rate { return limiter.Rate{Period: time.Minute, Limit: n} }
	b := setup(t, withAnalytics(t), func(o *testOptions) {
		o.Limits = &server.Limits{IP: rate(5), Global: rate(100), Key: rate(100), Store: memory.NewStore()}
	})
	for i := 1; i <= 7; i++ {
		resp, body := b.track(t, `{"type":"page_view"}`, nil)
		switch {
		case i <= 5 && resp.StatusCode != http.StatusAccepted:
			t.Fatalf("request %d of 5 allowed: %d %s", i, resp.StatusCode, body)
		case i > 5:
			if p := problemOf(t, resp, body); resp.StatusCode != http.StatusTooManyRequests || p.Code != "rate_limited" || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("request %d, over the per-IP limit of 5: %d %s (Retry-After %q)", i, resp.StatusCode, body, resp.Header.Get("Retry-After"))
			}
		}
	}
}

func TestTrackCORS(t *testing.T) {
	t.Parallel()
	b := setup(t, withAnalytics(t), func(o *testOptions) { o.CORSOrigins = []string{"https://levqor.ai"} })
	resp, body := b.track(t, `{"type":"cta_click"}`, http.Header{"Origin": {"https://levqor.ai"}})
	decode[client.TrackAccepted](t, resp, body, http.StatusAccepted)
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://levqor.ai" {
		t.Errorf("allow-listed origin: Access-Control-Allow-Origin %q", got)
	}
	resp, body = b.track(t, `{"type":"cta_click"}`, http.Header{"Origin": {"https://evil.example"}})
	decode[client.TrackAccepted](t, resp, body, http.StatusAccepted)
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("other origin got %s", k)
		}
	}
	// A browser asks first, since the body is JSON.
	for origin, allowed := range map[string]bool{"https://levqor.ai": true, "https://evil.example": false} {
		req, err := http.NewRequestWithContext(t.Context(), "OPTIONS", b.URL+"/api/v1/metrics/track", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		pre, err := http.DefaultClient.Do(req) // no operation in the spec answers OPTIONS: not the validating client
		if err != nil {
			t.Fatal(err)
		}
		pre.Body.Close()
		if got := pre.Header.Get("Access-Control-Allow-Origin") == origin; got != allowed {
			t.Errorf("preflight from %s: %d, Access-Control-Allow-Origin %q", origin, pre.StatusCode, pre.Header.Get("Access-Control-Allow-Origin"))
		}
	}
}

// TestTrackedEmailsNotInDatabase tracks events with emails and then reads the
// SQLite file and its WAL byte by byte: the emails must be nowhere, in any case, and
// their keyed hashes must be there (so the files read are the ones written).
func TestTrackedEmailsNotInDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "levqor.db")
	b := setup(t, func(o *testOptions) {
		db, err := sqlite.Open(t.Context(), dbPath)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		o.Store = db
	}, withAnalytics(t))
	emails := []string{"Ada.Lovelace@Example.com", "grace.hopper@navy.example", "linus+news@kernel.example"}
	for i, email := range emails {
		// The email may come in the page's query and the referrer's too: neither is kept.
		body := fmt.Sprintf(`{"type":"newsletter","email":%q,"path":"/n%d","ref":%q,"referrer":%q}`, email, i,
			"https://levqor.ai/n?utm_source=mail&email="+url.QueryEscape(email), "https://mail.example/open?to="+email)
		resp, body2 := b.track(t, body, nil)
		decode[client.TrackAccepted](t, resp, body2, http.StatusAccepted)
	}
	var files []byte
	for _, suffix := range []string{"", "-wal"} {
		data, err := os.ReadFile(dbPath + suffix)
		if err != nil {
			t.Fatalf("read %s: %v", dbPath+suffix, err)
		}
		files = append(files, data...)
	}
	logs := []byte(b.Logs())
	for _, email := range emails {
		for _, form := range []string{email, strings.ToLower(email), strings.SplitN(strings.ToLower(email), "@", 2)[0]} {
			if bytes.Contains(bytes.ToLower(files), []byte(strings.ToLower(form))) {
				t.Errorf("%q is in the database files", form)
			}
			if bytes.Contains(bytes.ToLower(logs), []byte(strings.ToLower(form))) {
				t.Errorf("%q is in the log", form)
			}
		}
		m := hmac.New(sha256.New, []byte(testHashSecret))
		m.Write([]byte(strings.ToLower(email)))
		if hash := hex.EncodeToString(m.Sum(nil)); !bytes.Contains(files, []byte(hash)) {
			t.Errorf("the keyed hash of %q is not in the database files: the test reads the wrong files", email)
		}
	}
}

func TestMarketingSummary(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin, withAnalytics(t))
	b.createUser(t, "someone@example.com")
	for _, typ := range []string{"page_view", "page_view", "page_view", "conversion"} {
		resp, body := b.track(t, `{"type":"`+typ+`"}`, nil)
		decode[client.TrackAccepted](t, resp, body, http.StatusAccepted)
	}
	resp, body := b.do(t, "GET", "/api/v1/marketing/summary", nil, nil)
	m := decode[client.MarketingSummary](t, resp, body, http.StatusOK)
	if m.Users != 1 || m.Events != 4 || m.ConversionRate != 33.33 || m.JobsProcessed != 0 {
		t.Errorf("figures: %d users, %d events, %v%% converted, %d jobs", m.Users, m.Events, m.ConversionRate, m.JobsProcessed)
	}
	if len(m.Headlines) == 0 || len(m.Ctas) == 0 || len(m.Usps) == 0 || len(m.Testimonials) == 0 {
		t.Errorf("copy missing: %s", body)
	}
	if time.Since(m.GeneratedAt) > time.Minute {
		t.Errorf("generated_at %s", m.GeneratedAt)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=30" {
		t.Errorf("Cache-Control %q", cc)
	}
}

func TestAnalyticsUnavailable(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin) // no analytics service
	for _, req := range []struct{ method, path, body string }{
		{"POST", "/api/v1/metrics/track", `{"type":"page_view"}`},
		{"GET", "/api/v1/metrics/summary", ""},
		{"GET", "/api/v1/marketing/summary", ""},
	} {
		resp, body := b.do(t, req.method, req.path, hdr(adminKey, "application/json"), strings.NewReader(req.body))
		if p := problemOf(t, resp, body); resp.StatusCode != http.StatusServiceUnavailable || p.Code != "unavailable" {
			t.Errorf("%s %s: %d %s", req.method, req.path, resp.StatusCode, body)
		}
	}
}

// mustDate parses a YYYY-MM-DD query date for the generated client.
func mustDate(t *testing.T, s string) *openapi_types.Date {
	t.Helper()
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		t.Fatal(err)
	}
	return &openapi_types.Date{Time: d}
}

// withKey sends key as the generated client's X-Api-Key.
func withKey(key string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set("X-Api-Key", key)
		return nil
	}
}

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// marketingCopy is the embedded marketing copy, as main gives it to analytics.
func marketingCopy(t *testing.T) analytics.Copy {
	t.Helper()
	c, err := analytics.LoadCopy(static.MarketingFS())
	if err != nil {
		t.Fatalf("analytics.LoadCopy: %v", err)
	}
	return c
}
