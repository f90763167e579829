package server

import (
	"encoding/base64"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/analytics"
)

const testDashboardToken = "dashboard-token-for-tests-0123456789"

func TestDashboardTokenMatches(t *testing.T) {
	a := newDashboardAuth(testDashboardToken)
	if !a.tokenMatches(testDashboardToken) {
		t.Fatal("the token itself does not match")
	}
	for _, bad := range []string{"", testDashboardToken[:len(testDashboardToken)-1], testDashboardToken + "x",
		strings.ToUpper(testDashboardToken), " " + testDashboardToken} {
		if a.tokenMatches(bad) {
			t.Errorf("%q matches the token", bad)
		}
	}
	if newDashboardAuth("") != nil {
		t.Error("an empty token enables the dashboard")
	}
}

func TestDashboardSession(t *testing.T) {
	a := newDashboardAuth(testDashboardToken)
	now := time.Unix(1_790_000_000, 0)
	v := a.session(now)
	if !a.sessionValid(v, now) || !a.sessionValid(v, now.Add(dashboardSession-time.Second)) {
		t.Fatalf("a fresh session %q is refused", v)
	}
	if a.sessionValid(v, now.Add(dashboardSession)) || a.sessionValid(v, now.Add(dashboardSession+time.Hour)) {
		t.Error("an expired session is accepted")
	}
	if strings.Contains(v, testDashboardToken) {
		t.Errorf("the session %q holds the token", v)
	}
	if other := newDashboardAuth(testDashboardToken + "-rotated"); other.sessionValid(v, now) {
		t.Error("a session survives a change of token")
	}

	expiry, sig, _ := strings.Cut(v, ".")
	flip := []byte(sig)
	flip[3] ^= 1
	exp, _ := strconv.ParseInt(expiry, 10, 64)
	later := strconv.FormatInt(exp+3600, 10)
	far := strconv.FormatInt(now.Add(dashboardSession+dashboardClockSkew+time.Minute).Unix(), 10)
	forged := func(e string) string { return e + "." + base64.RawURLEncoding.EncodeToString(a.mac(e)) }
	for name, bad := range map[string]string{
		"empty":               "",
		"the token":           testDashboardToken,
		"no signature":        expiry,
		"no expiry":           "." + sig,
		"signature flipped":   expiry + "." + string(flip),
		"expiry moved":        later + "." + sig,
		"leading zero":        "0" + expiry + "." + sig,
		"plus sign":           "+" + expiry + "." + sig,
		"padded signature":    v + "=",
		"std base64":          expiry + "." + base64.StdEncoding.EncodeToString(a.mac(expiry)),
		"trailing space":      v + " ",
		"two dots":            v + ".x",
		"valid mac, too far":  forged(far),
		"valid mac, negative": forged("-1"),
	} {
		if a.sessionValid(bad, now) {
			t.Errorf("%s: %q is accepted", name, bad)
		}
	}
	// The forged-with-the-key control: the same construction within the session's
	// life is accepted, so the "too far" refusal is about the expiry alone.
	if !a.sessionValid(forged(strconv.FormatInt(now.Add(time.Hour).Unix(), 10)), now) {
		t.Error("a well-formed session expiring within its life is refused")
	}
}

func TestDashboardCookie(t *testing.T) {
	a := newDashboardAuth(testDashboardToken)
	now := time.Now()
	header := a.cookie(now)
	c, err := http.ParseSetCookie(header)
	if err != nil {
		t.Fatalf("Set-Cookie %q: %v", header, err)
	}
	if c.Name != dashboardCookie || c.Path != "/dashboard" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Errorf("Set-Cookie %q: want %s, Path=/dashboard, Secure, HttpOnly, SameSite=Strict", header, dashboardCookie)
	}
	if c.MaxAge != 12*3600 {
		t.Errorf("Max-Age %d, want 43200", c.MaxAge)
	}
	if !a.sessionValid(c.Value, now) {
		t.Errorf("the cookie's value %q is not a valid session", c.Value)
	}
}

// FuzzDashboardSession: no input panics the check, and the only values it
// accepts are exactly those session would issue for their expiry.
func FuzzDashboardSession(f *testing.F) {
	a := newDashboardAuth(testDashboardToken)
	now := time.Unix(1_790_000_000, 0)
	v := a.session(now)
	for _, seed := range []string{v, "", ".", "1.", v[:len(v)-1], "99999999999999999999." + v[11:], "1790043200.%zz", strings.Repeat("9", 600)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !a.sessionValid(s, now) {
			return
		}
		expiry, _, _ := strings.Cut(s, ".")
		if want := expiry + "." + base64.RawURLEncoding.EncodeToString(a.mac(expiry)); s != want {
			t.Fatalf("accepted %q, which is not the issued form %q", s, want)
		}
	})
}

// testSummary is a fixed summary with every part filled in, including a hostile
// referrer that must come out escaped.
func testSummary() analytics.Summary {
	return analytics.Summary{
		Totals:         analytics.Counts{PageView: 1234567, CTAClick: 2345, Newsletter: 345, Conversion: 45},
		Last24h:        analytics.Counts{PageView: 812, CTAClick: 31, Newsletter: 4, Conversion: 2},
		Last7d:         analytics.Counts{PageView: 5120, CTAClick: 240, Newsletter: 22, Conversion: 9},
		ConversionRate: 12.5,
		CTR:            3.14,
		From:           "2026-11-20", To: "2026-11-22", TZ: "Europe/London",
		Daily: []analytics.Day{
			{Date: "2026-11-20", Counts: analytics.Counts{PageView: 40, CTAClick: 4, Conversion: 1}},
			{Date: "2026-11-21", Counts: analytics.Counts{PageView: 73, CTAClick: 9, Newsletter: 2}},
			{Date: "2026-11-22", Counts: analytics.Counts{PageView: 12}},
		},
		TopReferrers:  []analytics.Top{{Value: "news.ycombinator.com", Count: 420}, {Value: `<script>alert("x")</script>`, Count: 7}},
		TopPaths:      []analytics.Top{{Value: "/pricing", Count: 99}},
		TopUTMSources: nil,
	}
}

func testSite(t *testing.T) *site {
	t.Helper()
	s, err := newSite("https://levqor.test/", "mail.levqor.test", testDashboardToken)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRenderDashboard(t *testing.T) {
	body, err := testSite(t).renderDashboard(testSummary())
	if err != nil {
		t.Fatal(err)
	}
	page := string(body)
	for _, want := range []string{
		"<title>Analytics dashboard — Levqor</title>",
		`<meta name="robots" content="noindex, nofollow">`,
		`<link rel="stylesheet" href="/docs/site.css">`,
		"2026-11-20 to 2026-11-22 (Europe/London)",
		"1,234,567", "5,120", ">812<", // totals, 7 days, 24 hours
		"12.50 %", "3.14 %", // conversion rate and CTR
		"news.ycombinator.com", "420", "/pricing",
		`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`,
		"Nov 20", "Nov 22", // x axis labels
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the dashboard lacks %q", want)
		}
	}
	if strings.Contains(page, `<link rel="canonical"`) || strings.Contains(page, "og:title") {
		t.Error("the dashboard carries indexing metadata")
	}
	// The page needs nothing the policy forbids: no script, no inline style.
	if bad := regexp.MustCompile(`(?i)<script|<style|\sstyle=|\son[a-z]+=|javascript:`).FindString(page); bad != "" {
		t.Errorf("the dashboard has %q, which its CSP would block", bad)
	}
	// One polyline per event type, one point per day each.
	lines := regexp.MustCompile(`<polyline class="series ([a-z_]+)" points="([^"]*)"`).FindAllStringSubmatch(page, -1)
	if len(lines) != 4 {
		t.Fatalf("%d series in the chart, want 4", len(lines))
	}
	for _, l := range lines {
		if n := len(strings.Fields(l[2])); n != 3 {
			t.Errorf("series %s has %d points, want 3", l[1], n)
		}
	}
	if n := strings.Count(page, "<circle "); n != 12 {
		t.Errorf("%d dots, want 12 (4 series × 3 days)", n)
	}
	if !strings.Contains(page, "None yet.") {
		t.Error("the empty UTM list is not shown as empty")
	}
}

func TestRenderDashboardEmpty(t *testing.T) {
	body, err := testSite(t).renderDashboard(analytics.Summary{From: "2026-11-20", To: "2026-11-26", TZ: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	if page := string(body); strings.Contains(page, "<svg") || !strings.Contains(page, "No days in this period.") || !strings.Contains(page, "0.00 %") {
		t.Errorf("an empty summary does not render as empty:\n%s", page)
	}
}

func TestNewChart(t *testing.T) {
	day := func(date string, pv int64) analytics.Day {
		return analytics.Day{Date: date, Counts: analytics.Counts{PageView: pv}}
	}
	cases := []struct {
		name   string
		days   []analytics.Day
		labels []string // y axis labels, bottom up
		xs     []string // x coordinates of the page-view points
	}{
		{"all zero", []analytics.Day{day("2026-01-01", 0), day("2026-01-02", 0)}, []string{"0", "1"}, []string{"48.0", "696.0"}},
		{"one day", []analytics.Day{day("2026-01-01", 7)}, []string{"0", "2", "4", "6", "8"}, []string{"372.0"}},
		{"round peak", []analytics.Day{day("2026-01-01", 100), day("2026-01-02", 3), day("2026-01-03", 50)},
			[]string{"0", "50", "100"}, []string{"48.0", "372.0", "696.0"}},
		{"large", []analytics.Day{day("2026-01-01", 1_234_567)}, []string{"0", "500,000", "1,000,000", "1,500,000"}, []string{"372.0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newChart(tc.days)
			var labels []string
			for _, y := range c.YTicks {
				labels = append(labels, y.Label)
			}
			if strings.Join(labels, " ") != strings.Join(tc.labels, " ") {
				t.Errorf("y labels %v, want %v", labels, tc.labels)
			}
			var xs []string
			for _, p := range strings.Fields(c.Series[0].Points) {
				x, _, _ := strings.Cut(p, ",")
				xs = append(xs, x)
			}
			if strings.Join(xs, " ") != strings.Join(tc.xs, " ") {
				t.Errorf("x coordinates %v, want %v", xs, tc.xs)
			}
			// The top tick is at the top of the plot, zero at its bottom.
			if c.YTicks[0].Y != "212.0" || c.YTicks[len(c.YTicks)-1].Y != "12.0" {
				t.Errorf("y ticks from %s to %s, want 212.0 to 12.0", c.YTicks[0].Y, c.YTicks[len(c.YTicks)-1].Y)
			}
		})
	}
	if newChart(nil) != nil {
		t.Error("a chart without days")
	}
	// Absurd counts neither hang nor overflow the axis.
	huge := newChart([]analytics.Day{day("2026-01-01", 1<<62)})
	if len(huge.YTicks) < 2 || len(huge.YTicks) > 6 {
		t.Errorf("%d y ticks for a huge count", len(huge.YTicks))
	}
	// Many days: at most chartMaxXTicks labels, and no dots.
	var year []analytics.Day
	for i := range 366 {
		year = append(year, day(time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC).Format(time.DateOnly), int64(i)))
	}
	c := newChart(year)
	if len(c.XTicks) > chartMaxXTicks || len(c.XTicks) < chartMaxXTicks-1 || len(c.Series[0].Dots) != 0 {
		t.Errorf("a year: %d x labels, %d dots", len(c.XTicks), len(c.Series[0].Dots))
	}
}

func TestFormatCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 1234567: "1,234,567", -45678: "-45,678",
		-9223372036854775808: "-9,223,372,036,854,775,808"} {
		if got := formatCount(n); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", n, got, want)
		}
	}
}

// BenchmarkRenderDashboard renders the dashboard for a full 30-day summary.
func BenchmarkRenderDashboard(b *testing.B) {
	s, err := newSite("", "", testDashboardToken)
	if err != nil {
		b.Fatal(err)
	}
	sum := testSummary()
	sum.Daily = nil
	for i := range dashboardDays {
		sum.Daily = append(sum.Daily, analytics.Day{Date: time.Date(2026, 10, 28+i, 0, 0, 0, 0, time.UTC).Format(time.DateOnly),
			Counts: analytics.Counts{PageView: int64(1000 + 37*i), CTAClick: int64(40 + i), Newsletter: int64(i % 7), Conversion: int64(i % 5)}})
	}
	for range 10 {
		sum.TopReferrers = append(sum.TopReferrers, analytics.Top{Value: "referrer.example.com", Count: 100})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.renderDashboard(sum); err != nil {
			b.Fatal(err)
		}
	}
}
