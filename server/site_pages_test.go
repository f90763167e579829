package server_test

import (
	"encoding/xml"
	"html"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
)

// testPublicURL is the canonical site root the page tests configure; the
// trailing slash must not double up in the links.
const testPublicURL = "https://levqor.example/"

// browserAccept is what Chromium sends when it navigates.
const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

func withPublicURL(o *testOptions) { o.PublicURL = testPublicURL }

// init teaches kin-openapi to read the sitemap's application/xml body as a
// string, as registerDecoders does for text/html, before any test's validating
// transport (the route inventory's included) meets it.
func init() {
	openapi3filter.RegisterBodyDecoder("application/xml", openapi3filter.PlainBodyDecoder)
}

// pageMeta collects a page's <title>, and its <meta> and <link> tags by name,
// property or rel (values unescaped).
func pageMeta(t *testing.T, body []byte) (title string, meta map[string]string) {
	t.Helper()
	page := string(body)
	m := regexp.MustCompile(`<title>([^<]*)</title>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the page has no <title>")
	}
	meta = map[string]string{}
	for _, tag := range regexp.MustCompile(`<(?:meta|link)\s[^>]*>`).FindAllString(page, -1) {
		attrs := map[string]string{}
		for _, a := range regexp.MustCompile(`([a-z:-]+)="([^"]*)"`).FindAllStringSubmatch(tag, -1) {
			attrs[a[1]] = html.UnescapeString(a[2])
		}
		switch {
		case attrs["property"] != "":
			meta[attrs["property"]] = attrs["content"]
		case attrs["name"] != "":
			meta[attrs["name"]] = attrs["content"]
		case attrs["rel"] != "":
			meta["rel="+attrs["rel"]] = attrs["href"]
		}
	}
	return html.UnescapeString(m[1]), meta
}

// checkPageCSP checks the policy of an HTML page other than /docs: default-src
// 'none', the stylesheet from this origin, and no script or inline code at all.
func checkPageCSP(t *testing.T, resp *http.Response) {
	t.Helper()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: CSP %q lacks %s", resp.Request.URL.Path, csp, want)
		}
	}
	for _, bad := range []string{"script-src", "'unsafe-inline'", "'unsafe-eval'", "*"} {
		if strings.Contains(csp, bad) {
			t.Errorf("%s: CSP %q allows %s", resp.Request.URL.Path, csp, bad)
		}
	}
	for name, want := range securityHeaders {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s: %s %q, want %q", resp.Request.URL.Path, name, got, want)
		}
	}
}

func TestPublicPages(t *testing.T) {
	b := setup(t, withPublicURL)
	cases := []struct{ path, title, h1 string }{
		{"/legal/privacy", "Privacy policy", "Privacy policy"},
		{"/legal/terms", "Terms of service", "Terms of service"},
		{"/legal/cookies", "Cookie policy", "Cookie policy"},
		{"/faq", "Frequently asked questions", "Frequently asked questions"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := b.do(t, http.MethodGet, tc.path, http.Header{"Accept": {browserAccept}}, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d %.300s", tc.path, resp.StatusCode, body)
			}
			if mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/html" || params["charset"] != "utf-8" {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
			if cc := resp.Header.Get("Cache-Control"); !strings.HasPrefix(cc, "public, max-age=") {
				t.Errorf("Cache-Control %q, want a public max-age", cc)
			}
			checkPageCSP(t, resp)

			title, meta := pageMeta(t, body)
			canonical := "https://levqor.example" + tc.path
			if title != tc.title+" — Levqor" {
				t.Errorf("<title> %q", title)
			}
			want := map[string]string{
				"rel=canonical":  canonical,
				"og:url":         canonical,
				"og:title":       tc.title,
				"og:type":        "website",
				"og:site_name":   "Levqor",
				"twitter:card":   "summary",
				"twitter:title":  tc.title,
				"rel=stylesheet": "/docs/site.css",
			}
			for k, v := range want {
				if meta[k] != v {
					t.Errorf("%s = %q, want %q", k, meta[k], v)
				}
			}
			desc := meta["description"]
			if len(desc) < 50 || len(desc) > 160 || meta["og:description"] != desc || meta["twitter:description"] != desc {
				t.Errorf("description %q (og %q, twitter %q): want one description of 50–160 characters",
					desc, meta["og:description"], meta["twitter:description"])
			}
			if meta["robots"] != "" {
				t.Errorf("a public page says robots=%q", meta["robots"])
			}
			if !regexp.MustCompile(`<h1 id="[a-z-]+">` + regexp.QuoteMeta(tc.h1) + `</h1>`).Match(body) {
				t.Errorf("the page lacks <h1>%s</h1>", tc.h1)
			}
			if inline := regexp.MustCompile(`(?i)<script|<style|\sstyle=|\son[a-z]+=`).Find(body); inline != nil {
				t.Errorf("the page has inline code (%q) its CSP would block", inline)
			}
			// Every file the page loads is served, from this origin.
			for _, m := range regexp.MustCompile(`<(?:link|img|script)\s[^>]*(?:src|href)="([^"]+)"`).FindAllSubmatch(body, -1) {
				ref := string(m[1])
				if strings.HasPrefix(ref, "https://levqor.example") { // the canonical link
					continue
				}
				if !strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "//") {
					t.Errorf("the page loads %q from elsewhere", ref)
					continue
				}
				if r, data := b.do(t, http.MethodGet, ref, nil, nil); r.StatusCode != http.StatusOK || len(data) == 0 {
					t.Errorf("%s: %d, %d bytes", ref, r.StatusCode, len(data))
				}
			}
			checkNotModified(t, b, tc.path, resp.Header.Get("ETag"))
		})
	}

	// The generated client reaches the same pages.
	faq, err := b.Client.GetFAQWithResponse(t.Context(), nil)
	if err != nil || faq.StatusCode() != http.StatusOK {
		t.Fatalf("client GetFAQ: %v %v", err, faq)
	}
	legal, err := b.Client.GetLegalPageWithResponse(t.Context(), "terms", nil)
	if err != nil || legal.StatusCode() != http.StatusOK || !strings.Contains(string(legal.Body), "Acceptable use") {
		t.Fatalf("client GetLegalPage terms: %v %v", err, legal)
	}
}

func TestPageLinksResolve(t *testing.T) {
	b := setup(t, withPublicURL)
	_, faq := b.do(t, http.MethodGet, "/faq", nil, nil)
	_, privacy := b.do(t, http.MethodGet, "/legal/privacy", nil, nil)
	seen := map[string]bool{}
	for _, page := range [][]byte{faq, privacy} {
		for _, m := range regexp.MustCompile(`<a [^>]*href="(/[^"#]*)(#[^"]*)?"`).FindAllSubmatch(page, -1) {
			path := html.UnescapeString(string(m[1]))
			if seen[path] || path == "/dashboard" {
				continue
			}
			seen[path] = true
			if resp, body := b.do(t, http.MethodGet, path, nil, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("link %s: %d %.200s", path, resp.StatusCode, body)
			}
		}
	}
	if len(seen) < 6 {
		t.Errorf("found %d internal links (%v); the pattern is broken", len(seen), seen)
	}
}

func TestLegalPageUnknown(t *testing.T) {
	b := setup(t, withPublicURL)
	resp, body := b.do(t, http.MethodGet, "/legal/nope", http.Header{"Accept": {browserAccept}}, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /legal/nope: %d", resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/html" || !strings.Contains(string(body), "Page not found") {
		t.Errorf("GET /legal/nope: %s %.300s, want the HTML 404 page", resp.Header.Get("Content-Type"), body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("404 page Cache-Control %q, want no-store", cc)
	}
	checkPageCSP(t, resp)

	resp, body = b.do(t, http.MethodGet, "/legal/nope", http.Header{"Accept": {"application/json"}}, nil)
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusNotFound || p.Code != "not_found" {
		t.Errorf("GET /legal/nope as JSON: %d %s", resp.StatusCode, p.Code)
	}
	resp, body = b.do(t, http.MethodGet, "/legal/"+strings.Repeat("a", 33), nil, nil)
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusBadRequest || p.Code != "invalid" {
		t.Errorf("GET an over-long page name: %d %s", resp.StatusCode, p.Code)
	}
}

func TestSecurityTxt(t *testing.T) {
	b := setup(t, withPublicURL, func(o *testOptions) { o.EmailDomain = "example.org" })
	resp, body := b.do(t, http.MethodGet, "/.well-known/security.txt", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET security.txt: %d", resp.StatusCode)
	}
	if mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/plain" || params["charset"] != "utf-8" {
		t.Errorf("Content-Type %q, want text/plain; charset=utf-8 (RFC 9116 §3)", resp.Header.Get("Content-Type"))
	}
	fields := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		name, value, ok := strings.Cut(line, ": ")
		if !ok || strings.TrimSpace(value) != value || value == "" {
			t.Fatalf("security.txt line %q is not \"Field: value\"", line)
		}
		fields[name] = append(fields[name], value)
	}
	want := map[string]string{
		"Contact":             "mailto:security@example.org",
		"Preferred-Languages": "en",
		"Canonical":           "https://levqor.example/.well-known/security.txt",
		"Policy":              "https://levqor.example/faq#reporting-a-security-issue",
	}
	for name, v := range want {
		if got := fields[name]; len(got) != 1 || got[0] != v {
			t.Errorf("%s: %q, want %q", name, got, v)
		}
	}
	if len(fields["Expires"]) != 1 {
		t.Fatalf("Expires: %q, want exactly one (RFC 9116 §2.5.5)", fields["Expires"])
	}
	expires, err := time.Parse(time.RFC3339, fields["Expires"][0])
	if err != nil {
		t.Fatalf("Expires %q is not ISO 8601 (RFC 3339): %v", fields["Expires"][0], err)
	}
	if now := time.Now(); !expires.After(now.Add(30*24*time.Hour)) || !expires.Before(now.AddDate(1, 0, 0)) {
		t.Errorf("Expires %s: want at least a month and less than a year ahead", expires)
	}
	if len(fields) != len(want)+1 {
		t.Errorf("fields %v, want exactly %d", fields, len(want)+1)
	}
	// The policy's section exists on the FAQ page.
	policy, _ := url.Parse(want["Policy"])
	if _, faq := b.do(t, http.MethodGet, policy.Path, nil, nil); !strings.Contains(string(faq), `id="`+policy.Fragment+`"`) {
		t.Errorf("the FAQ has no section #%s", policy.Fragment)
	}
	checkNotModified(t, b, "/.well-known/security.txt", resp.Header.Get("ETag"))

	// Without a public URL or email domain, both default to levqor.ai.
	_, body = setup(t).do(t, http.MethodGet, "/.well-known/security.txt", nil, nil)
	for _, want := range []string{"Contact: mailto:security@levqor.ai\n", "Canonical: https://levqor.ai/.well-known/security.txt\n"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("default security.txt lacks %q:\n%s", want, body)
		}
	}
}

func TestRobotsTxt(t *testing.T) {
	b := setup(t, withPublicURL)
	resp, body := b.do(t, http.MethodGet, "/robots.txt", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /robots.txt: %d", resp.StatusCode)
	}
	lines := strings.Split(string(body), "\n")
	for _, want := range []string{"User-agent: *", "Disallow: /api/", "Disallow: /dashboard", "Sitemap: https://levqor.example/sitemap.xml"} {
		if !slices.Contains(lines, want) {
			t.Errorf("robots.txt lacks %q:\n%s", want, body)
		}
	}
	for _, l := range lines {
		if l == "Disallow: /" || l == "Disallow: /legal" || l == "Disallow: /faq" {
			t.Errorf("robots.txt hides the public pages: %q", l)
		}
	}
	checkNotModified(t, b, "/robots.txt", resp.Header.Get("ETag"))
}

func TestSitemap(t *testing.T) {
	b := setup(t, withPublicURL)
	resp, body := b.do(t, http.MethodGet, "/sitemap.xml", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /sitemap.xml: %d", resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/xml" {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	var set struct {
		XMLName xml.Name `xml:"http://www.sitemaps.org/schemas/sitemap/0.9 urlset"`
		URLs    []struct {
			Loc string `xml:"loc"`
		} `xml:"url"`
	}
	dec := xml.NewDecoder(strings.NewReader(string(body)))
	dec.Strict = true
	if err := dec.Decode(&set); err != nil {
		t.Fatalf("the sitemap is not a sitemaps.org urlset: %v\n%s", err, body)
	}
	var paths []string
	for _, u := range set.URLs {
		loc, err := url.Parse(u.Loc)
		if err != nil || loc.Scheme != "https" || loc.Host != "levqor.example" {
			t.Errorf("loc %q is not on the public URL's host", u.Loc)
			continue
		}
		paths = append(paths, loc.Path)
		if r, data := b.do(t, http.MethodGet, loc.Path, nil, nil); r.StatusCode != http.StatusOK {
			t.Errorf("%s is in the sitemap but answers %d %.200s", loc.Path, r.StatusCode, data)
		}
	}
	if want := []string{"/docs", "/faq", "/legal/cookies", "/legal/privacy", "/legal/terms"}; !slices.Equal(sorted(paths), want) {
		t.Errorf("sitemap paths %v, want %v", sorted(paths), want)
	}
	checkNotModified(t, b, "/sitemap.xml", resp.Header.Get("ETag"))
}

// TestHTMLNotFound: a browser asking for an unknown page outside /api/ gets the
// HTML 404 page; API clients, and anything under /api/, get problem+json.
func TestHTMLNotFound(t *testing.T) {
	b := setup(t, withPublicURL)
	// The validating transport holds unknown routes to problem+json, which is the
	// API's contract; this HTML page is the one exception, so a plain client reads it.
	plain := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(plain.CloseIdleConnections)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.URL+"/pricing/old-page", nil)
	req.Header.Set("Accept", browserAccept)
	req.Header.Set("X-Request-Id", "html-404")
	resp, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /pricing/old-page: %d", resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/html" {
		t.Fatalf("Content-Type %q, want text/html", resp.Header.Get("Content-Type"))
	}
	title, meta := pageMeta(t, body)
	if title != "Page not found — Levqor" || meta["robots"] != "noindex, nofollow" || meta["rel=canonical"] != "" {
		t.Errorf("404 page: title %q, robots %q, canonical %q", title, meta["robots"], meta["rel=canonical"])
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	checkPageCSP(t, resp)
	if line := accessLine(t, b, "html-404"); line["status"] != float64(404) || line["error_code"] != "not_found" {
		t.Errorf("access line %v, want status 404 and error_code not_found", line)
	}

	for _, tc := range []struct{ path, accept string }{
		{"/api/v1/nope", browserAccept},
		{"/api", browserAccept},
		{"/pricing/old-page", ""},
		{"/pricing/old-page", "*/*"},
		{"/pricing/old-page", "application/json"},
		{"/pricing/old-page", "application/json, text/html;q=0.5"},
	} {
		h := http.Header{}
		if tc.accept != "" {
			h.Set("Accept", tc.accept)
		}
		resp, body := b.do(t, http.MethodGet, tc.path, h, nil)
		if p := problemOf(t, resp, body); resp.StatusCode != http.StatusNotFound || p.Code != "not_found" {
			t.Errorf("GET %s (Accept %q): %d %s, want a not_found problem", tc.path, tc.accept, resp.StatusCode, p.Code)
		}
	}
}
