package server_test

import (
	"bytes"
	"mime"
	"net/http"
	"strings"
	"testing"

	"github.com/levqor/levqor/analytics"
)

// testDashboardToken is the dashboard token of these tests: long and distinctive,
// so finding it anywhere in the logs is meaningful.
const testDashboardToken = "dash-TOKEN-must-never-be-logged-7f3a9c"

const dashboardTestUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"

// withDashboard enables the dashboard with token over the real analytics
// service on the test's store, and returns that service through *svc.
func withDashboard(t *testing.T, token string, svc **analytics.Service) func(*testOptions) {
	return func(o *testOptions) {
		a, err := analytics.NewService(o.Store, bytes.Repeat([]byte("k"), analytics.MinSecretBytes))
		if err != nil {
			t.Fatalf("analytics.NewService: %v", err)
		}
		o.Analytics, o.DashboardToken, o.PublicURL = a, token, testPublicURL
		if svc != nil {
			*svc = a
		}
	}
}

// openDashboard exchanges token for a session and returns the session cookie.
func openDashboard(t *testing.T, b *bundle, token string) *http.Cookie {
	t.Helper()
	resp, body := b.do(t, http.MethodGet, "/dashboard?token="+token, http.Header{"Accept": {browserAccept}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET /dashboard?token=…: %d %.300s", resp.StatusCode, body)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("Set-Cookie %q, want one cookie", resp.Header.Values("Set-Cookie"))
	}
	return cookies[0]
}

func TestDashboardFlow(t *testing.T) {
	var svc *analytics.Service
	b := setup(t, withDashboard(t, testDashboardToken, &svc))
	for _, ev := range []analytics.TrackInput{
		{Type: "page_view", Path: "/", Referrer: "https://news.example.com/item?id=1"},
		{Type: "page_view", Path: "/pricing", Referrer: "https://news.example.com/item?id=2"},
		{Type: "page_view", Path: "/pricing", Referrer: "https://search.example.org/"},
		{Type: "cta_click", Path: "/pricing"},
		{Type: "conversion", Path: "/pricing", Email: "ada@example.com"},
		{Type: "page_view", Path: "/", UserAgent: "Googlebot/2.1"}, // a bot: counted nowhere
	} {
		if ev.UserAgent == "" {
			ev.UserAgent = dashboardTestUA
		}
		if _, err := svc.Track(t.Context(), ev); err != nil {
			t.Fatalf("track %+v: %v", ev, err)
		}
	}

	// The token is exchanged for a session cookie, and leaves the URL.
	resp, body := b.do(t, http.MethodGet, "/dashboard?token="+testDashboardToken,
		http.Header{"Accept": {browserAccept}, "X-Request-Id": {"dash-token"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || len(body) != 0 {
		t.Fatalf("GET /dashboard?token=…: %d %.300s, want 303 and no body", resp.StatusCode, body)
	}
	if loc := resp.Header.Get("Location"); loc != "/dashboard" {
		t.Errorf("Location %q, want /dashboard", loc)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("303 Cache-Control %q, want no-store", cc)
	}
	setCookie := resp.Header.Get("Set-Cookie")
	cookie, err := http.ParseSetCookie(setCookie)
	if err != nil {
		t.Fatalf("Set-Cookie %q: %v", setCookie, err)
	}
	if cookie.Name != "levqor_dashboard" || !cookie.Secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode ||
		cookie.Path != "/dashboard" || cookie.MaxAge <= 0 || cookie.MaxAge > 24*3600 {
		t.Errorf("Set-Cookie %q: want levqor_dashboard; Secure; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age ≤ 1 day", setCookie)
	}
	if cookie.Value == "" || strings.Contains(cookie.Value, testDashboardToken) || strings.Contains(setCookie, testDashboardToken) {
		t.Errorf("the session cookie %q is empty or carries the token", setCookie)
	}

	// The cookie opens the dashboard.
	resp, body = b.do(t, http.MethodGet, "/dashboard",
		http.Header{"Accept": {browserAccept}, "Cookie": {cookie.String()}, "X-Request-Id": {"dash-page"}}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /dashboard with the session: %d %.300s", resp.StatusCode, body)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/html" {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("dashboard Cache-Control %q, want no-store", cc)
	}
	checkPageCSP(t, resp)
	page := string(body)
	for _, want := range []string{
		"<h1>Analytics</h1>",
		`<tr><td>Page views</td><td class="num">3</td><td class="num">3</td><td class="num">3</td></tr>`,
		`<tr><td>Conversions</td><td class="num">1</td><td class="num">1</td><td class="num">1</td></tr>`,
		"33.33 %", // conversion rate: 1 of 3 page views; the bot's view is not counted
		"<svg", `<polyline class="series page_view"`,
		`title="news.example.com">news.example.com</td><td class="num">2</td>`,
		`title="/pricing">/pricing</td><td class="num">4</td>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the dashboard lacks %q", want)
		}
	}
	if strings.Contains(page, "ada@example.com") {
		t.Error("the dashboard shows a tracked email")
	}

	// A JSON client gets the same refusals as problems.
	resp, body = b.do(t, http.MethodGet, "/dashboard", nil, nil)
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusUnauthorized || p.Code != "unauthorized" {
		t.Errorf("GET /dashboard without a session, as an API client: %d %s", resp.StatusCode, p.Code)
	}

	for _, line := range b.LogLines(t) {
		if line["request_id"] == "dash-token" || line["request_id"] == "dash-page" {
			if line["route"] != "/dashboard" {
				t.Errorf("access line %v, want route /dashboard", line)
			}
		}
	}
	checkNotLogged(t, b, testDashboardToken, cookie.Value)
}

func TestDashboardRefusals(t *testing.T) {
	b := setup(t, withDashboard(t, testDashboardToken, nil))
	good := openDashboard(t, b, testDashboardToken)
	expiry, mac, _ := strings.Cut(good.Value, ".")
	flipped := []byte(mac)
	flipped[5] = map[bool]byte{true: 'B', false: 'A'}[flipped[5] == 'A']
	tampered := *good
	tampered.Value = expiry + "." + string(flipped)
	stretched := *good
	stretched.Value = expiry + "0." + mac // a later expiry under the old signature

	cases := []struct {
		name   string
		query  string
		cookie string
	}{
		{"no token, no session", "", ""},
		{"wrong token", "?token=dash-TOKEN-must-never-be-logged-7f3a9d", ""},
		{"empty token", "?token=", ""},
		{"token prefix", "?token=" + testDashboardToken[:20], ""},
		{"wrong token beats a good session", "?token=nope-nope-nope-nope", good.String()},
		{"tampered session", "", tampered.String()},
		{"stretched expiry", "", stretched.String()},
		{"the token as the cookie", "", "levqor_dashboard=" + testDashboardToken},
		{"empty cookie", "", "levqor_dashboard="},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Accept": {browserAccept}}
			if tc.cookie != "" {
				h.Set("Cookie", tc.cookie)
			}
			resp, body := b.do(t, http.MethodGet, "/dashboard"+tc.query, h, nil)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%d %.300s, want 401", resp.StatusCode, body)
			}
			if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/html" || !strings.Contains(string(body), "Sign-in needed") {
				t.Errorf("%s %.300s, want the HTML 401 page", resp.Header.Get("Content-Type"), body)
			}
			if len(resp.Cookies()) != 0 {
				t.Errorf("a refusal sets a cookie: %q", resp.Header.Values("Set-Cookie"))
			}
			checkPageCSP(t, resp)
		})
	}
	// The good session still works: the refusals are not a broken server.
	if resp, body := b.do(t, http.MethodGet, "/dashboard", http.Header{"Cookie": {good.String()}}, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the good session: %d %.300s", resp.StatusCode, body)
	}
	// An over-long token fails validation, and is not logged either.
	long := testDashboardToken + strings.Repeat("x", 600)
	if resp, body := b.do(t, http.MethodGet, "/dashboard?token="+long, nil, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an over-long token: %d %.300s, want 400", resp.StatusCode, body)
	}
	checkNotLogged(t, b, testDashboardToken, good.Value)
}

// TestDashboardSessionFollowsToken: a session survives a restart with the same
// token and dies when the token changes.
func TestDashboardSessionFollowsToken(t *testing.T) {
	first := setup(t, withDashboard(t, testDashboardToken, nil))
	session := openDashboard(t, first, testDashboardToken)

	restarted := setup(t, withDashboard(t, testDashboardToken, nil))
	if resp, body := restarted.do(t, http.MethodGet, "/dashboard", http.Header{"Cookie": {session.String()}}, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("the session after a restart with the same token: %d %.200s", resp.StatusCode, body)
	}
	rotated := setup(t, withDashboard(t, testDashboardToken+"-rotated", nil))
	if resp, body := rotated.do(t, http.MethodGet, "/dashboard", http.Header{"Cookie": {session.String()}}, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the session after the token changed: %d %.200s, want 401", resp.StatusCode, body)
	}
}

func TestDashboardDisabledWithoutToken(t *testing.T) {
	b := setup(t, withDashboard(t, "", nil))
	for _, query := range []string{"", "?token=" + testDashboardToken, "?token="} {
		resp, body := b.do(t, http.MethodGet, "/dashboard"+query, http.Header{"Accept": {browserAccept}}, nil)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "Page not found") {
			t.Errorf("GET /dashboard%s without a token configured: %d %.300s, want the HTML 404 page", query, resp.StatusCode, body)
		}
		if len(resp.Cookies()) != 0 {
			t.Errorf("GET /dashboard%s sets a cookie", query)
		}
		resp, body = b.do(t, http.MethodGet, "/dashboard"+query, nil, nil)
		if p := problemOf(t, resp, body); resp.StatusCode != http.StatusNotFound || p.Code != "not_found" {
			t.Errorf("GET /dashboard%s as an API client: %d %s", query, resp.StatusCode, p.Code)
		}
	}
}

// checkNotLogged fails the test when any secret appears in the server's log,
// after checking the log is not empty (so the check can fail at all).
func checkNotLogged(t *testing.T, b *bundle, secrets ...string) {
	t.Helper()
	logs := b.Logs()
	if !strings.Contains(logs, `"route":"/dashboard"`) {
		t.Fatalf("no access line for /dashboard in the log; cannot check it for secrets:\n%s", logs)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("the log contains the secret %q", s)
		}
	}
}
