package server

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/levqor/levqor/analytics"
)

const (
	// dashboardCookie names the dashboard's session cookie.
	dashboardCookie = "levqor_dashboard"
	// dashboardSession is how long a session lasts after the token opened it.
	dashboardSession = 12 * time.Hour
	// dashboardClockSkew tolerates instances whose clocks disagree a little.
	dashboardClockSkew = 5 * time.Minute
	// dashboardDays is the span of the dashboard's daily chart.
	dashboardDays = 30
)

// dashboardAuth checks the dashboard token and the sessions it opens. A session
// is "<expiry>.<mac>": the expiry in Unix seconds and the base64url HMAC-SHA-256
// of it under a key derived from the token. The cookie never holds the token,
// and changing the token ends every session.
type dashboardAuth struct {
	tokenSum   [sha256.Size]byte // compared in constant time, so the token's length does not leak
	sessionKey []byte
}

// newDashboardAuth returns the check for token, or nil when token is "" (no dashboard).
func newDashboardAuth(token string) *dashboardAuth {
	if token == "" {
		return nil
	}
	kdf := hmac.New(sha256.New, []byte("levqor dashboard session key v1"))
	kdf.Write([]byte(token))
	return &dashboardAuth{tokenSum: sha256.Sum256([]byte(token)), sessionKey: kdf.Sum(nil)}
}

// tokenMatches compares given with the token in constant time.
func (a *dashboardAuth) tokenMatches(given string) bool {
	sum := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) == 1
}

func (a *dashboardAuth) mac(expiry string) []byte {
	m := hmac.New(sha256.New, a.sessionKey)
	m.Write([]byte("levqor-dashboard-session|"))
	m.Write([]byte(expiry))
	return m.Sum(nil)
}

// session returns a new session value, valid until now + dashboardSession.
func (a *dashboardAuth) session(now time.Time) string {
	expiry := strconv.FormatInt(now.Add(dashboardSession).Unix(), 10)
	return expiry + "." + base64.RawURLEncoding.EncodeToString(a.mac(expiry))
}

// sessionValid reports whether v is a session this token issued that has not
// expired at now. Only the exact form session returns is accepted.
func (a *dashboardAuth) sessionValid(v string, now time.Time) bool {
	expiry, sig, ok := strings.Cut(v, ".")
	if !ok || len(expiry) == 0 || len(expiry) > 12 || len(sig) != base64.RawURLEncoding.EncodedLen(sha256.Size) {
		return false
	}
	exp, err := strconv.ParseInt(expiry, 10, 64)
	if err != nil || strconv.FormatInt(exp, 10) != expiry {
		return false
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || !hmac.Equal(got, a.mac(expiry)) {
		return false
	}
	t := time.Unix(exp, 0)
	return now.Before(t) && !t.After(now.Add(dashboardSession+dashboardClockSkew))
}

// cookie is the Set-Cookie value that carries a new session.
func (a *dashboardAuth) cookie(now time.Time) string {
	c := &http.Cookie{
		Name:     dashboardCookie,
		Value:    a.session(now),
		Path:     "/dashboard",
		MaxAge:   int(dashboardSession / time.Second),
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	}
	return c.String()
}

// dashboardQuery asks for the last dashboardDays UTC days, today included.
func dashboardQuery(now time.Time) analytics.SummaryQuery {
	today := now.UTC()
	return analytics.SummaryQuery{
		From: today.AddDate(0, 0, -(dashboardDays - 1)).Format(time.DateOnly),
		To:   today.Format(time.DateOnly),
		TZ:   "UTC",
	}
}

// eventTypes are the tracked event types in the order the dashboard shows them;
// class is the CSS class that colours a type's series.
var eventTypes = []struct {
	label, class string
	count        func(analytics.Counts) int64
}{
	{"Page views", "page_view", func(c analytics.Counts) int64 { return c.PageView }},
	{"CTA clicks", "cta_click", func(c analytics.Counts) int64 { return c.CTAClick }},
	{"Newsletter sign-ups", "newsletter", func(c analytics.Counts) int64 { return c.Newsletter }},
	{"Conversions", "conversion", func(c analytics.Counts) int64 { return c.Conversion }},
}

// dashboardView is what templates/dashboard.html renders.
type dashboardView struct {
	From, To, TZ string
	Cards        []dashboardCard
	Counts       []dashboardCounts
	Chart        *chartView // nil without days
	Days         []dashboardDay
	Tops         []dashboardTop
}

type dashboardCard struct{ Label, Value, Note string }

type dashboardCounts struct{ Label, Total, Last7d, Last24h string }

type dashboardDay struct{ Date, PageView, CTAClick, Newsletter, Conversion string }

type dashboardTop struct {
	Title, Column string
	Rows          []dashboardTopRow
}

type dashboardTopRow struct{ Value, Count string }

// renderDashboard renders the dashboard page for a summary.
func (s *site) renderDashboard(sum analytics.Summary) ([]byte, error) {
	v := dashboardView{From: sum.From, To: sum.To, TZ: sum.TZ, Chart: newChart(sum.Daily)}
	v.Cards = []dashboardCard{
		{"Page views, 24 hours", formatCount(sum.Last24h.PageView), "7 days: " + formatCount(sum.Last7d.PageView)},
		{"Conversions, 24 hours", formatCount(sum.Last24h.Conversion), "7 days: " + formatCount(sum.Last7d.Conversion)},
		{"Conversion rate", formatPercent(sum.ConversionRate), "conversions per 100 page views"},
		{"Click-through rate", formatPercent(sum.CTR), "CTA clicks per 100 page views"},
	}
	for _, et := range eventTypes {
		v.Counts = append(v.Counts, dashboardCounts{et.label,
			formatCount(et.count(sum.Totals)), formatCount(et.count(sum.Last7d)), formatCount(et.count(sum.Last24h))})
	}
	for _, d := range sum.Daily {
		v.Days = append(v.Days, dashboardDay{d.Date, formatCount(d.Counts.PageView), formatCount(d.Counts.CTAClick),
			formatCount(d.Counts.Newsletter), formatCount(d.Counts.Conversion)})
	}
	for _, top := range []struct {
		title, column string
		rows          []analytics.Top
	}{
		{"Top referrers", "Referrer", sum.TopReferrers},
		{"Top pages", "Path", sum.TopPaths},
		{"Top UTM sources", "Source", sum.TopUTMSources},
	} {
		t := dashboardTop{Title: top.title, Column: top.column}
		for _, r := range top.rows {
			t.Rows = append(t.Rows, dashboardTopRow{r.Value, formatCount(r.Count)})
		}
		v.Tops = append(v.Tops, t)
	}
	var b bytes.Buffer
	view := s.view("Analytics dashboard", "Levqor's product analytics.", "", v)
	if err := s.dashboardTmpl.ExecuteTemplate(&b, "layout", view); err != nil {
		return nil, fmt.Errorf("render the dashboard: %w", err)
	}
	return b.Bytes(), nil
}

// The chart's geometry, in SVG user units (it scales to the page's width).
const (
	chartWidth, chartHeight                              = 720, 240
	chartLeft, chartRight, chartTop, chartBottom float64 = 48, 24, 12, 28
	chartMaxDots                                         = 62 // more days draw lines only
	chartMaxXTicks                                       = 8
)

// chartView is the daily chart as the template draws it, every coordinate
// computed here so the template only prints.
type chartView struct {
	Width, Height int
	Title         string
	YTicks        []chartYTick
	XTicks        []chartXTick
	Series        []chartSeries
}

type chartYTick struct{ Y, X1, X2, LabelX, LabelY, Label string }

type chartXTick struct{ X, Y, Label string }

type chartSeries struct {
	Label, Class string
	Points       string // the polyline's "x,y x,y …"
	Dots         []chartDot
}

type chartDot struct{ X, Y string }

// newChart lays out one line per event type over days, on a y axis from 0 to a
// round number at or above the largest count.
func newChart(days []analytics.Day) *chartView {
	if len(days) == 0 {
		return nil
	}
	var peak int64
	for _, d := range days {
		for _, et := range eventTypes {
			peak = max(peak, et.count(d.Counts))
		}
	}
	// Beyond 2^53 float64 cannot tell counts apart anyway; the cap keeps the
	// arithmetic below from overflowing.
	peak = min(peak, 1<<53)
	step := niceStep(peak)
	top := max(1, (peak+step-1)/step) * step
	plotW := chartWidth - chartLeft - chartRight
	plotH := chartHeight - chartTop - chartBottom
	x := func(i int) float64 {
		if len(days) == 1 {
			return chartLeft + plotW/2
		}
		return chartLeft + plotW*float64(i)/float64(len(days)-1)
	}
	y := func(v int64) float64 { return chartTop + plotH*(1-float64(v)/float64(top)) }

	c := &chartView{Width: chartWidth, Height: chartHeight,
		Title: fmt.Sprintf("Events per day from %s to %s", days[0].Date, days[len(days)-1].Date)}
	for v := int64(0); v <= top; v += step {
		c.YTicks = append(c.YTicks, chartYTick{Y: coord(y(v)), X1: coord(chartLeft), X2: coord(chartWidth - chartRight),
			LabelX: coord(chartLeft - 6), LabelY: coord(y(v) + 4), Label: formatCount(v)})
	}
	every := (len(days) + chartMaxXTicks - 1) / chartMaxXTicks
	for i := 0; i < len(days); i += every {
		c.XTicks = append(c.XTicks, chartXTick{X: coord(x(i)), Y: coord(chartHeight - 8), Label: shortDate(days[i].Date)})
	}
	for _, et := range eventTypes {
		s := chartSeries{Label: et.label, Class: et.class}
		var pts strings.Builder
		for i, d := range days {
			px, py := coord(x(i)), coord(y(et.count(d.Counts)))
			if i > 0 {
				pts.WriteByte(' ')
			}
			pts.WriteString(px + "," + py)
			if len(days) <= chartMaxDots {
				s.Dots = append(s.Dots, chartDot{px, py})
			}
		}
		s.Points = pts.String()
		c.Series = append(c.Series, s)
	}
	return c
}

// niceStep is the y axis step for counts up to peak: 1, 2 or 5 times a power of
// ten, giving at most about four intervals.
func niceStep(peak int64) int64 {
	want := (peak + 3) / 4
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if m*p >= want {
				return m * p
			}
		}
	}
}

func coord(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// shortDate turns "2026-11-26" into "Nov 26"; anything else is shown as it is.
func shortDate(day string) string {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return day
	}
	return t.Format("Jan 2")
}

// formatCount writes n with thousands separators: 1234567 → "1,234,567".
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return sign + b.String()
}

func formatPercent(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + " %" }
