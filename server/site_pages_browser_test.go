package server_test

import (
	"bytes"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/levqor/levqor/analytics"
)

// TestBrowserPages opens the dashboard the way an operator does — the token link,
// then the redirect — and a public page, in headless Chromium under their real
// headers, and checks they render, styled by the external stylesheet, with no
// console error, no CSP violation and no failed request.
func TestBrowserPages(t *testing.T) {
	var svc *analytics.Service
	srv := browserServer(t, func(o *testOptions) {
		a, err := analytics.NewService(o.Store, bytes.Repeat([]byte("k"), analytics.MinSecretBytes))
		if err != nil {
			t.Fatalf("analytics.NewService: %v", err)
		}
		o.Analytics, o.DashboardToken, o.PublicURL, svc = a, testDashboardToken, testPublicURL, a
	})
	bctx, problems := startBrowser(t)
	for _, typ := range []string{"page_view", "page_view", "cta_click", "conversion"} {
		if _, err := svc.Track(t.Context(), analytics.TrackInput{Type: typ, Path: "/", Referrer: "https://news.example.com/", UserAgent: dashboardTestUA}); err != nil {
			t.Fatal(err)
		}
	}

	// The token link: a 303 that sets the session cookie, then the dashboard.
	resp, err := chromedp.Run(bctx, chromedp.NavigateResponse(srv.URL+"/dashboard?token="+url.QueryEscape(testDashboardToken)))
	if err != nil {
		t.Fatalf("navigate to the dashboard link: %v", err)
	}
	if resp.Status != 200 {
		t.Fatalf("the dashboard link ends in status %d", resp.Status)
	}
	loc, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if loc != srv.URL+"/dashboard" {
		t.Errorf("the browser is at %q, want %s/dashboard (the token out of the URL)", loc, srv.URL)
	}
	if csp := browserHeader(resp.Headers, "Content-Security-Policy"); !strings.Contains(csp, "style-src 'self'") || strings.Contains(csp, "script-src") {
		t.Fatalf("dashboard CSP %q: the checks below mean something only under the pages' policy", csp)
	}
	// The chart is there, one line per event type, and the stylesheet colours it.
	lines, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("svg.chart polyline.series").length`))
	if err != nil || lines != 4 {
		t.Errorf("%d chart lines (%v), want 4", lines, err)
	}
	stroke, err := chromedp.Run(bctx, chromedp.Evaluate[string](
		`getComputedStyle(document.querySelector("svg.chart polyline.page_view")).stroke`))
	if err != nil || stroke != "rgb(59, 79, 216)" {
		t.Errorf("the page-view line's stroke is %q (%v), want the stylesheet's rgb(59, 79, 216)", stroke, err)
	}
	figure, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelectorAll(".card .figure")[2].textContent`))
	if err != nil || figure != "50.00 %" {
		t.Errorf("the conversion rate card says %q (%v), want 50.00 %%", figure, err)
	}
	browserCheckPage(t, bctx, problems)

	// Reloading keeps the session: the cookie, not the token, opens the page.
	if resp, err := chromedp.Run(bctx, chromedp.NavigateResponse(srv.URL+"/dashboard")); err != nil || resp.Status != 200 {
		t.Errorf("reload /dashboard: %v %v", resp, err)
	}
	httpOnly, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil || httpOnly != "" {
		t.Errorf("document.cookie is %q (%v); the session cookie must be HttpOnly", httpOnly, err)
	}
	browserCheckPage(t, bctx, problems)

	// A public page.
	resp, err = chromedp.Run(bctx, chromedp.NavigateResponse(srv.URL+"/legal/privacy"))
	if err != nil || resp.Status != 200 {
		t.Fatalf("navigate to /legal/privacy: %v %v", resp, err)
	}
	h1, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector("main h1").textContent`))
	if err != nil || h1 != "Privacy policy" {
		t.Errorf("<h1> %q (%v)", h1, err)
	}
	background, err := chromedp.Run(bctx, chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`))
	if err != nil || background != "rgb(245, 247, 250)" {
		t.Errorf("body background %q (%v): the stylesheet did not apply", background, err)
	}
	browserCheckPage(t, bctx, problems)
}
