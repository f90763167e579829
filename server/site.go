package server

import (
	"bytes"
	"cmp"
	"context"
	"encoding/xml"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/static"
)

// pageCSP is the policy of the public pages, the dashboard and the HTML error
// pages: one stylesheet from this origin, images from this origin (the icon), and
// nothing else — no script at all. The dashboard's chart is inline SVG, which
// needs no source; it is styled by the stylesheet and presentation attributes.
const pageCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; " +
	"form-action 'none'; frame-ancestors 'none'"

const (
	siteName          = "Levqor"
	defaultPublicURL  = "https://levqor.ai"
	defaultMailDomain = "levqor.ai"
	pageCache         = "public, max-age=300"
	// htmlContentType is what mime.TypeByExtension(".html") says, without loading
	// the system's MIME tables at start-up for it.
	htmlContentType = "text/html; charset=utf-8"
	wellKnownCache  = "public, max-age=86400"
	// securityTxtLife is how far ahead security.txt's Expires lies: under the
	// year RFC 9116 recommends, and renewed every day the server runs.
	securityTxtLife = 180 * 24 * time.Hour
	// securityPolicyPath is the FAQ section on reporting vulnerabilities, which
	// security.txt names as its Policy.
	securityPolicyPath = "/faq#reporting-a-security-issue"
)

// markdownPages are the pages rendered from static/pages at start-up.
var markdownPages = []struct{ path, source, title, description string }{
	{"/legal/privacy", "privacy.md", "Privacy policy",
		"What the Levqor service keeps about you — hashed API keys, encrypted credentials, analytics without emails or IP addresses — and your rights."},
	{"/legal/terms", "terms.md", "Terms of service",
		"The terms for using the Levqor service and its API: your keys, acceptable use, your content, AI output and costs."},
	{"/legal/cookies", "cookies.md", "Cookie policy",
		"Levqor sets one cookie, for operators of its analytics dashboard, and no analytics or advertising cookies."},
	{"/faq", "faq.md", "Frequently asked questions",
		"How Levqor runs AI automation jobs: API keys, retries, webhooks, AI budgets, rate limits, errors, data and security."},
}

// site is everything the public pages need, prepared once at start-up: the
// rendered pages and files, the templates rendered per request, and the
// dashboard's access check.
type site struct {
	root            string               // canonical site root without a trailing slash
	pages           map[string]*document // Markdown pages by route
	robots, sitemap *document
	securityContact string
	security        atomic.Pointer[datedDocument] // security.txt, renewed each UTC day

	dashboardTmpl *template.Template
	notFound      htmlPage // the HTML 404 page
	unauthorized  htmlPage // the dashboard's HTML 401 page
	dashboard     *dashboardAuth
}

// datedDocument is a document valid for one UTC day.
type datedDocument struct {
	day string
	doc *document
}

// pageView is what the layout template renders.
type pageView struct {
	SiteName    string
	Title       string
	Description string
	Home        string // the site root, for the brand link
	Canonical   string // absolute URL of an indexable page; "" marks a page not to index
	Main        any    // what the "main" template renders
}

// statusView is the body of an HTML error page.
type statusView struct {
	Heading, Message string
	Retry            bool // offer a same-site link back to the dashboard
}

// newSite renders the public pages for the site at publicURL (default
// https://levqor.ai), with security@emailDomain (default levqor.ai) as the
// security contact. dashboardToken opens the dashboard; "" disables it.
func newSite(publicURL, emailDomain, dashboardToken string) (*site, error) {
	if publicURL == "" {
		publicURL = defaultPublicURL
	}
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("public URL %q: want an http(s) URL without query", publicURL)
	}
	if emailDomain == "" {
		emailDomain = defaultMailDomain
	}
	s := &site{
		root:            strings.TrimRight(publicURL, "/"),
		pages:           map[string]*document{},
		securityContact: "mailto:security@" + emailDomain,
		dashboard:       newDashboardAuth(dashboardToken),
	}

	layout, err := template.New("layout.html").ParseFS(static.Templates, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("page layout: %w", err)
	}
	withMain := func(file string) (*template.Template, error) {
		t, err := layout.Clone()
		if err == nil {
			t, err = t.ParseFS(static.Templates, "templates/"+file)
		}
		if err != nil {
			return nil, fmt.Errorf("page template %s: %w", file, err)
		}
		return t, nil
	}
	pageTmpl, err := withMain("page.html")
	if err != nil {
		return nil, err
	}
	statusTmpl, err := withMain("status.html")
	if err != nil {
		return nil, err
	}
	if s.dashboardTmpl, err = withMain("dashboard.html"); err != nil {
		return nil, err
	}

	md := newMarkdown()
	for _, p := range markdownPages {
		src, err := fs.ReadFile(static.Pages, "pages/"+p.source)
		if err != nil {
			return nil, fmt.Errorf("page %s: %w", p.path, err)
		}
		var body bytes.Buffer
		if err := md.Convert(src, &body); err != nil {
			return nil, fmt.Errorf("page %s: %w", p.path, err)
		}
		// Trusted HTML: goldmark's output from our own Markdown, with raw HTML off.
		view := s.view(p.title, p.description, p.path, template.HTML(body.String()))
		out, err := render(pageTmpl, view)
		if err != nil {
			return nil, fmt.Errorf("page %s: %w", p.path, err)
		}
		doc := newDocument(htmlContentType, pageCache, out)
		doc.csp = pageCSP
		s.pages[p.path] = doc
	}

	notFound, err := render(statusTmpl, s.view("Page not found", "There is no page at this address.", "",
		statusView{Heading: "Page not found", Message: "There is no page at this address."}))
	if err != nil {
		return nil, err
	}
	unauthorized, err := render(statusTmpl, s.view("Sign-in needed", "The dashboard needs a valid token or session.", "",
		statusView{Heading: "Sign-in needed", Retry: true,
			Message: "The dashboard opens with the link that carries its token; the link starts a session in this browser for 12 hours."}))
	if err != nil {
		return nil, err
	}
	s.notFound = htmlPage{status: http.StatusNotFound, body: notFound}
	s.unauthorized = htmlPage{status: http.StatusUnauthorized, body: unauthorized}

	s.robots = newDocument("text/plain; charset=utf-8", wellKnownCache, []byte(
		"User-agent: *\nAllow: /\nDisallow: /api/\nDisallow: /dashboard\n\nSitemap: "+s.root+"/sitemap.xml\n"))
	if s.sitemap, err = s.buildSitemap(); err != nil {
		return nil, err
	}
	return s, nil
}

// newMarkdown is the pages' Markdown renderer: tables, and ids on headings so
// sections can be linked. Raw HTML stays off (goldmark's default, no
// html.WithUnsafe): HTML in a source is dropped, and dangerous link schemes too.
func newMarkdown() goldmark.Markdown {
	return goldmark.New(
		goldmark.WithExtensions(extension.Table),
		goldmark.WithParserOptions(parser.WithAutoHeadingID()),
	)
}

// view wraps a page's main content in the layout's metadata; path "" marks a
// page that is not to be indexed (no canonical link, OpenGraph or Twitter tags).
func (s *site) view(title, description, path string, main any) pageView {
	v := pageView{SiteName: siteName, Title: title, Description: description, Home: s.root + "/", Main: main}
	if path != "" {
		v.Canonical = s.root + path
	}
	return v
}

func render(t *template.Template, v pageView) ([]byte, error) {
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		return nil, fmt.Errorf("render %s: %w", v.Title, err)
	}
	return b.Bytes(), nil
}

// buildSitemap lists the indexable pages: the Markdown pages and the API docs.
func (s *site) buildSitemap() (*document, error) {
	type loc struct {
		Loc string `xml:"loc"`
	}
	set := struct {
		XMLName xml.Name `xml:"http://www.sitemaps.org/schemas/sitemap/0.9 urlset"`
		URLs    []loc    `xml:"url"`
	}{URLs: []loc{{s.root + "/docs"}}}
	for _, p := range markdownPages {
		set.URLs = append(set.URLs, loc{s.root + p.path})
	}
	body, err := xml.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("sitemap: %w", err)
	}
	return newDocument("application/xml; charset=utf-8", wellKnownCache, append([]byte(xml.Header), append(body, '\n')...)), nil
}

// securityTxt returns the RFC 9116 file for now's UTC day, building it on the
// first request of each day, so Expires stays about six months ahead however long
// the server runs, and every instance started or asked on the same day agrees.
func (s *site) securityTxt(now time.Time) *document {
	day := now.UTC().Format(time.DateOnly)
	if d := s.security.Load(); d != nil && d.day == day {
		return d.doc
	}
	start, _ := time.Parse(time.DateOnly, day)
	body := "Contact: " + s.securityContact + "\n" +
		"Expires: " + start.Add(securityTxtLife).Format(time.RFC3339) + "\n" +
		"Preferred-Languages: en\n" +
		"Canonical: " + s.root + "/.well-known/security.txt\n" +
		"Policy: " + s.root + securityPolicyPath + "\n"
	d := &datedDocument{day: day, doc: newDocument("text/plain; charset=utf-8", wellKnownCache, []byte(body))}
	s.security.Store(d)
	return d.doc
}

// wantsPage reports whether an unknown path should get the HTML 404 page: it is
// not under /api/ and the client prefers HTML (a browser navigating).
func (s *site) wantsPage(r *http.Request) bool {
	p := r.URL.Path
	return p != "/api" && !strings.HasPrefix(p, "/api/") && prefersHTML(r.Header.Values("Accept"))
}

// writeError answers err (a not-found or unauthorized error) with the matching
// HTML page, and records it for the access log as writeProblem does.
func (s *site) writeError(w http.ResponseWriter, r *http.Request, err error) {
	page, ok := s.errorPage(err)
	if !ok {
		writeProblem(w, r, err)
		return
	}
	if info := requestInfoFrom(r.Context()); info != nil {
		info.err = err
	}
	_ = page.visit(w)
}

func (s *site) errorPage(err error) (htmlPage, bool) {
	switch levqor.ErrorCode(err) {
	case levqor.ENotFound:
		return s.notFound, true
	case levqor.EUnauthorized:
		return s.unauthorized, true
	}
	return htmlPage{}, false
}

// htmlErrors is a strict-server middleware for the page operations that may
// fail (the dashboard, the legal pages): their not-found and unauthorized errors
// become HTML pages for clients that prefer HTML. Other clients, and other
// errors, get the usual problem+json. Other operations pass through untouched.
func (s *site) htmlErrors(f api.StrictHandlerFunc, operationID string) api.StrictHandlerFunc {
	if operationID != "GetDashboard" && operationID != "GetLegalPage" {
		return f
	}
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, req any) (any, error) {
		resp, err := f(ctx, w, r, req)
		if err != nil && prefersHTML(r.Header.Values("Accept")) {
			if page, ok := s.errorPage(err); ok {
				if info := requestInfoFrom(r.Context()); info != nil {
					info.err = err
				}
				return page, nil
			}
		}
		return resp, err
	}
}

// htmlPage is an HTML response built for one request or for errors: the
// dashboard, the error pages and the newsletter's confirmation form. It carries the
// pages' CSP (csp, when set, instead) and keeps the default Cache-Control (no-store).
type htmlPage struct {
	status     int
	body       []byte
	csp        string // "" is pageCSP
	noReferrer bool   // Referrer-Policy: no-referrer (the URL carries a secret)
}

func (p htmlPage) visit(w http.ResponseWriter) error {
	h := w.Header()
	h.Set("Content-Security-Policy", cmp.Or(p.csp, pageCSP))
	h.Set("Content-Type", htmlContentType)
	h.Set("Content-Length", strconv.Itoa(len(p.body)))
	if p.noReferrer {
		h.Set("Referrer-Policy", "no-referrer")
	}
	h.Del("Content-Encoding")
	w.WriteHeader(p.status)
	_, err := w.Write(p.body)
	return err
}

func (p htmlPage) VisitGetDashboardResponse(w http.ResponseWriter) error { return p.visit(w) }
func (p htmlPage) VisitGetLegalPageResponse(w http.ResponseWriter) error { return p.visit(w) }

// prefersHTML reports whether an Accept header (all its field lines) ranks
// text/html (or XHTML) above JSON: true for browsers navigating, false for API
// clients, for */* and for no Accept at all.
func prefersHTML(accept []string) bool {
	var qHTML, qJSON float64
	for _, line := range accept {
		for _, item := range strings.Split(line, ",") {
			mediaType, params, _ := strings.Cut(item, ";")
			q := 1.0
			for _, p := range strings.Split(params, ";") {
				name, value, ok := strings.Cut(strings.TrimSpace(p), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(name), "q") {
					continue
				}
				v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
				if err != nil || !(v >= 0 && v <= 1) { // NaN fails both
					v = 0 // a malformed weight counts as "not acceptable"
				}
				q = v
			}
			switch strings.ToLower(strings.TrimSpace(mediaType)) {
			case "text/html", "application/xhtml+xml":
				qHTML = max(qHTML, q)
			case "application/json", "application/problem+json":
				qJSON = max(qJSON, q)
			}
		}
	}
	return qHTML > 0 && qHTML >= qJSON
}

func (resp documentResponse) VisitGetLegalPageResponse(w http.ResponseWriter) error {
	return resp.visit(w)
}
func (resp documentResponse) VisitGetFAQResponse(w http.ResponseWriter) error { return resp.visit(w) }
func (resp documentResponse) VisitGetSecurityTxtResponse(w http.ResponseWriter) error {
	return resp.visit(w)
}
func (resp documentResponse) VisitGetRobotsTxtResponse(w http.ResponseWriter) error {
	return resp.visit(w)
}
func (resp documentResponse) VisitGetSitemapResponse(w http.ResponseWriter) error {
	return resp.visit(w)
}
