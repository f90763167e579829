package server

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/static"
)

// formCSP is pageCSP with one difference: the page's form may post to this origin
// (the newsletter's confirmation, an approval's buttons).
const formCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// formPages renders the pages of one link sent by email, whose page posts a form
// back to its own URL: the newsletter confirmation, the approval page.
type formPages struct {
	site *site
	tmpl *template.Template
	// failed is the heading and main view of the error page of status with message.
	failed func(status int, message string) (heading string, main any)
}

func newFormPages(s *site, file string, failed func(status int, message string) (string, any)) (*formPages, error) {
	t, err := template.New("layout.html").ParseFS(static.Templates, "templates/layout.html", "templates/"+file)
	if err != nil {
		return nil, fmt.Errorf("page template %s: %w", file, err)
	}
	return &formPages{site: s, tmpl: t, failed: failed}, nil
}

// page renders one page (never indexed) with title and description: a form posting
// to this origin, whose URL carries a secret (so no Referer leaves it).
func (p *formPages) page(status int, title, description string, main any) (htmlPage, error) {
	body, err := render(p.tmpl, p.site.view(title, description, "", main))
	if err != nil {
		return htmlPage{}, err
	}
	return htmlPage{status: status, body: body, csp: formCSP, noReferrer: true}, nil
}

// newsletterView is the body of the newsletter confirmation pages.
type newsletterView struct {
	Heading, Message string
	Token            string // "" for no form
}

func newNewsletterPages(s *site) (*formPages, error) {
	return newFormPages(s, "newsletter.html", func(_ int, message string) (string, any) {
		const heading = "This link did not work"
		return heading, newsletterView{Heading: heading, Message: message}
	})
}

// newsletterPage renders a newsletter confirmation page.
func (p *formPages) newsletterPage(status int, v newsletterView) (htmlPage, error) {
	return p.page(status, v.Heading, v.Message, v)
}

func (p htmlPage) VisitGetNewsletterConfirmResponse(w http.ResponseWriter) error { return p.visit(w) }
func (p htmlPage) VisitConfirmNewsletterResponse(w http.ResponseWriter) error    { return p.visit(w) }
func (p htmlPage) VisitGetApprovalResponse(w http.ResponseWriter) error          { return p.visit(w) }
func (p htmlPage) VisitDecideApprovalResponse(w http.ResponseWriter) error       { return p.visit(w) }

// errCrossSite refuses a form posted from another site.
var errCrossSite = levqor.Errorf(levqor.EForbidden, "This form was sent from another site; open the link from your email instead.")

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

// formFields are the fields of each form post, as the spec closes its body
// (additionalProperties: false), which the request validator does not check for
// form bodies.
var formFields = map[string][]string{
	"ConfirmNewsletter": {"token"},
	"DecideApproval":    {"decision", "form_token", "name", "comment"},
}

// checkFormFields refuses a form with a field not in fields, or one given twice
// (which of the two would count is not the sender's to leave open). The strict
// handler has parsed the form already.
func checkFormFields(r *http.Request, fields []string) error {
	for name, values := range r.PostForm {
		if !slices.Contains(fields, name) {
			return &levqor.Error{Code: levqor.EInvalid, Message: "The form has a field this operation does not take.",
				Fields: []levqor.FieldError{{Pointer: "/" + pointerSafe(name), Detail: "not a field of this form"}}}
		}
		if len(values) > 1 {
			return &levqor.Error{Code: levqor.EInvalid, Message: "The form gives a field more than once.",
				Fields: []levqor.FieldError{{Pointer: "/" + name, Detail: "given more than once"}}}
		}
	}
	return nil
}

// pointerSafe is a form field name as a JSON Pointer token, or a placeholder for one
// too long or odd to repeat.
func pointerSafe(name string) string {
	if len(name) > 64 || strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
		return "(unknown)"
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(name)
}

// formPagesMiddleware guards the form posts of the newsletter confirmation and the
// approval page against other sites, and turns those operations' errors into pages
// for clients that prefer HTML (others get problem+json).
func (h *handlers) formPagesMiddleware(f api.StrictHandlerFunc, operationID string) api.StrictHandlerFunc {
	var pages *formPages
	switch operationID {
	case "GetNewsletterConfirm", "ConfirmNewsletter":
		pages = h.newsletterPages
	case "GetApproval", "DecideApproval":
		pages = h.approvalPages
	default:
		return f
	}
	fields, post := formFields[operationID]
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, req any) (any, error) {
		var resp any
		var err error
		switch {
		case post && !sameOrigin(r, h.site.root):
			err = errCrossSite
		case post:
			if err = checkFormFields(r, fields); err == nil {
				resp, err = f(ctx, w, r, req)
			}
		default:
			resp, err = f(ctx, w, r, req)
		}
		if err == nil || !prefersHTML(r.Header.Values("Accept")) || pages == nil {
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
		heading, main := pages.failed(status, le.Message)
		return pages.page(status, heading, le.Message, main)
	}
}
