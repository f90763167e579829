package server

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/static"
)

// newsletterCSP is pageCSP with one difference: the confirmation page's form
// may post to this origin.
const newsletterCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// newsletterView is the body of the newsletter confirmation pages.
type newsletterView struct {
	Heading, Message string
	Token            string // "" for no form
}

// newsletterPages renders the confirmation pages in the site's layout.
type newsletterPages struct {
	site *site
	tmpl *template.Template
}

func newNewsletterPages(s *site) (*newsletterPages, error) {
	t, err := template.New("layout.html").ParseFS(static.Templates, "templates/layout.html", "templates/newsletter.html")
	if err != nil {
		return nil, fmt.Errorf("newsletter page template: %w", err)
	}
	return &newsletterPages{site: s, tmpl: t}, nil
}

// page renders one confirmation page (never indexed): a form posting to this origin,
// whose URL carries the token (so no Referer leaves it).
func (p *newsletterPages) page(status int, v newsletterView) (htmlPage, error) {
	body, err := render(p.tmpl, p.site.view(v.Heading, v.Message, "", v))
	if err != nil {
		return htmlPage{}, err
	}
	return htmlPage{status: status, body: body, csp: newsletterCSP, noReferrer: true}, nil
}

func (p htmlPage) VisitGetNewsletterConfirmResponse(w http.ResponseWriter) error { return p.visit(w) }
func (p htmlPage) VisitConfirmNewsletterResponse(w http.ResponseWriter) error    { return p.visit(w) }

// errCrossSite refuses a confirmation posted from another site.
var errCrossSite = levqor.Errorf(levqor.EForbidden, "This confirmation was sent from another site; open the link from your email instead.")

// sameOrigin reports whether a form post comes from this site: Sec-Fetch-Site,
// when the browser sends it, says so; else an Origin, when present, must be this
// site's public root or the origin the request was addressed to.
func sameOrigin(r *http.Request, root string) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser's cross-site form post, which always carries Origin
	}
	return origin == root || strings.EqualFold(origin, "http://"+r.Host) || strings.EqualFold(origin, "https://"+r.Host)
}

// newsletterPagesMiddleware guards the confirmation post against other sites and
// turns the confirmation operations' errors into pages for clients that prefer
// HTML (others get problem+json).
func (h *handlers) newsletterPagesMiddleware(f api.StrictHandlerFunc, operationID string) api.StrictHandlerFunc {
	if operationID != "GetNewsletterConfirm" && operationID != "ConfirmNewsletter" {
		return f
	}
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, req any) (any, error) {
		var resp any
		var err error
		if operationID == "ConfirmNewsletter" && !sameOrigin(r, h.site.root) {
			err = errCrossSite
		} else {
			resp, err = f(ctx, w, r, req)
		}
		if err == nil || !prefersHTML(r.Header.Values("Accept")) || h.newsletterPages == nil {
			return resp, err
		}
		var le *levqor.Error
		if !errors.As(err, &le) || le.Code == levqor.EInternal {
			return resp, err
		}
		status, ok := statusOf[le.Code]
		if !ok || status >= 500 {
			return resp, err
		}
		if info := requestInfoFrom(r.Context()); info != nil {
			info.err = err
		}
		return h.newsletterPages.page(status, newsletterView{Heading: "This link did not work", Message: le.Message})
	}
}
