package notifier

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	texttemplate "text/template"
	"unicode"
	"unicode/utf8"
)

// Template names.
const (
	Welcome             = "welcome"              // a new account; data: name?
	JobFailed           = "job_failed"           // a job failed for good; data: job_id, workflow?, error_code?, error?, name?
	BudgetThreshold     = "budget_threshold"     // AI spending crossed a share of its limit; data: percent, period, limit_usd, spent_usd?, name?
	PaymentConfirmation = "payment_confirmation" // a payment succeeded; data: amount, currency, plan?, invoice_id?, name?
	PaymentFailed       = "payment_failed"       // a payment failed; data: amount, currency, plan?, reason?, name?
	NewsletterConfirm   = "newsletter_confirm"   // confirm a newsletter subscription; data: token, hours
	ApprovalRequest     = "approval_request"     // a core.approval step asks for a decision; data: token, subject, job_id, expires, message?, workflow?, name?
)

// The local parts of Levqor's sender addresses, at Config.Domain.
const (
	SenderSupport  = "support"
	SenderBilling  = "billing"
	SenderNoReply  = "no-reply"
	SenderSecurity = "security"
)

// MaxSubject is the longest subject a rendered email may have (RFC 5322's line limit).
const MaxSubject = 998

//go:embed templates
var templateFS embed.FS

type fieldKind int

const (
	kindText       fieldKind = iota // one line of text
	kindID                          // an identifier: letters, digits and _ . : -
	kindNumber                      // a finite number within [min, max]
	kindPeriod                      // "daily" or "monthly"
	kindCurrency                    // an ISO 4217 code, upper-cased
	kindParagraphs                  // text of several lines (tabs and line breaks kept; CR dropped)
)

type field struct {
	name     string
	kind     fieldKind
	required bool
	maxLen   int     // text and id: the most runes
	min, max float64 // number
}

// spec is what a template needs: its sender, the data it takes and an example of it.
type spec struct {
	sender  string // local part
	replyTo string // local part; "" for none
	fields  []field
	example map[string]any
}

var nameField = field{name: "name", kind: kindText, maxLen: 100}

var specs = map[string]spec{
	// Welcome comes from support@ so that a reply reaches a person.
	Welcome: {sender: SenderSupport, fields: []field{nameField}, example: map[string]any{"name": "Ada"}},
	JobFailed: {sender: SenderNoReply, replyTo: SenderSupport, fields: []field{
		nameField,
		{name: "job_id", kind: kindID, required: true, maxLen: 64},
		{name: "workflow", kind: kindText, maxLen: 200},
		{name: "error_code", kind: kindID, maxLen: 64},
		{name: "error", kind: kindText, maxLen: 500},
	}, example: map[string]any{"name": "Ada", "job_id": "job_01HZX3EXAMPLE", "workflow": "summarise-inbox",
		"error_code": "rate_limited", "error": "slack.post_message: Slack asked to slow down"}},
	BudgetThreshold: {sender: SenderBilling, fields: []field{
		nameField,
		{name: "percent", kind: kindNumber, required: true, min: 0, max: 1000},
		{name: "period", kind: kindPeriod, required: true},
		{name: "limit_usd", kind: kindNumber, required: true, min: 0, max: 1e9},
		{name: "spent_usd", kind: kindNumber, min: 0, max: 1e9},
	}, example: map[string]any{"name": "Ada", "percent": 80, "period": "daily", "limit_usd": 10, "spent_usd": 8.02}},
	PaymentConfirmation: {sender: SenderBilling, fields: []field{
		nameField,
		{name: "amount", kind: kindNumber, required: true, min: 0, max: 1e9},
		{name: "currency", kind: kindCurrency, required: true},
		{name: "plan", kind: kindText, maxLen: 100},
		{name: "invoice_id", kind: kindID, maxLen: 100},
	}, example: map[string]any{"name": "Ada", "amount": 29, "currency": "USD", "plan": "Pro", "invoice_id": "in_1PEXAMPLE"}},
	PaymentFailed: {sender: SenderBilling, fields: []field{
		nameField,
		{name: "amount", kind: kindNumber, required: true, min: 0, max: 1e9},
		{name: "currency", kind: kindCurrency, required: true},
		{name: "plan", kind: kindText, maxLen: 100},
		{name: "reason", kind: kindText, maxLen: 300},
	}, example: map[string]any{"name": "Ada", "amount": 29, "currency": "USD", "plan": "Pro", "reason": "the card was declined"}},
	// NewsletterConfirm's link carries the sealed token (base64url, which kindID allows)
	// to the confirmation page; hours is how long the link works.
	NewsletterConfirm: {sender: SenderNoReply, replyTo: SenderSupport, fields: []field{
		nameField,
		{name: "token", kind: kindID, required: true, maxLen: 1024},
		{name: "hours", kind: kindNumber, required: true, min: 1, max: 24 * 30},
	}, example: map[string]any{"token": "AbCdEf0123456789-_example", "hours": 72}},
	// ApprovalRequest carries the text a person reviews — often an AI draft, several
	// lines — and the link to the page with the Approve and Reject buttons.
	ApprovalRequest: {sender: SenderNoReply, fields: []field{
		nameField,
		{name: "token", kind: kindID, required: true, maxLen: 1024},
		{name: "subject", kind: kindText, required: true, maxLen: 200},
		{name: "job_id", kind: kindID, required: true, maxLen: 64},
		{name: "expires", kind: kindText, required: true, maxLen: 64},
		{name: "workflow", kind: kindText, maxLen: 200},
		{name: "message", kind: kindParagraphs, maxLen: MaxParagraphs},
	}, example: map[string]any{"token": "AbCdEf0123456789-_example", "subject": "Send this reply to ACME?",
		"job_id": "job_01HZX3EXAMPLE", "expires": "2025-06-03 09:00 UTC", "workflow": "support-replies",
		"message": "Hello ACME team,\n\nThank you for your message. The fix ships on Monday.\n\nBest regards"}},
}

// MaxParagraphs is the most characters of a multi-line field (an approval's message).
const MaxParagraphs = 20000

// Templates lists the template names, sorted.
func Templates() []string {
	names := make([]string, 0, len(specs))
	for name := range specs {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// ExampleData returns sample data for a template (for test sends and previews), or nil
// for an unknown name. The caller may modify it.
func ExampleData(name string) map[string]any {
	s, ok := specs[name]
	if !ok {
		return nil
	}
	out := make(map[string]any, len(s.example))
	for k, v := range s.example {
		out[k] = v
	}
	return out
}

// Content is a rendered email.
type Content struct {
	Subject string
	HTML    string
	Text    string
}

// ErrUnknownTemplate is returned for a template name not in Templates.
var ErrUnknownTemplate = errors.New("notifier: unknown template")

// DataError is a template's data that does not fit it; its text names the field but never
// repeats the value.
type DataError struct {
	Template string
	Field    string
	Problem  string
}

func (e *DataError) Error() string {
	return fmt.Sprintf("template %s: data.%s %s", e.Template, e.Field, e.Problem)
}

// view is what the templates see.
type view struct {
	SiteURL string
	Subject string
	Data    map[string]any
}

type parsedTemplate struct {
	html *htmltemplate.Template
	text *texttemplate.Template
}

// parsed returns every template, parsed on the first render (not at start-up,
// which sends no email); the map is never modified after.
var parsed = sync.OnceValue(mustParse)

func mustParse() map[string]parsedTemplate {
	funcs := map[string]any{
		"percent": func(v float64) string { return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) + "%" },
		"usd":     func(v float64) string { return "$" + strconv.FormatFloat(v, 'f', 2, 64) },
		"money":   func(v float64, currency string) string { return strconv.FormatFloat(v, 'f', 2, 64) + " " + currency },
		"action":  func(url, label string) map[string]string { return map[string]string{"URL": url, "Label": label} },
	}
	out := map[string]parsedTemplate{}
	for name := range specs {
		file := "templates/" + name + ".tmpl"
		h := htmltemplate.Must(htmltemplate.New("layout.html").Option("missingkey=zero").Funcs(funcs).
			ParseFS(templateFS, "templates/layout.html", file))
		t := texttemplate.Must(texttemplate.New("layout.txt").Option("missingkey=zero").Funcs(funcs).
			ParseFS(templateFS, "templates/layout.txt", file))
		out[name] = parsedTemplate{html: h, text: t}
	}
	return out
}

// Render checks data against the template's fields and renders it; siteURL roots every
// link. The HTML part escapes all data. Errors: ErrUnknownTemplate, *DataError.
func Render(name string, data map[string]any, siteURL string) (Content, error) {
	s, ok := specs[name]
	if !ok {
		return Content{}, fmt.Errorf("%w %q", ErrUnknownTemplate, name)
	}
	clean, err := s.check(name, data)
	if err != nil {
		return Content{}, err
	}
	p := parsed()[name]
	v := view{SiteURL: strings.TrimSuffix(siteURL, "/"), Data: clean}

	var buf bytes.Buffer
	if err := p.text.ExecuteTemplate(&buf, "subject", v); err != nil {
		return Content{}, fmt.Errorf("render %s subject: %w", name, err)
	}
	v.Subject = strings.TrimSpace(buf.String())
	if v.Subject == "" || len(v.Subject) > MaxSubject || strings.ContainsAny(v.Subject, "\r\n") {
		return Content{}, fmt.Errorf("render %s: the subject is empty, too long or not one line", name)
	}
	buf.Reset()
	if err := p.text.Execute(&buf, v); err != nil {
		return Content{}, fmt.Errorf("render %s text: %w", name, err)
	}
	text := buf.String()
	buf.Reset()
	if err := p.html.Execute(&buf, v); err != nil {
		return Content{}, fmt.Errorf("render %s html: %w", name, err)
	}
	return Content{Subject: v.Subject, HTML: buf.String(), Text: text}, nil
}

// check returns data with every field validated and normalised (numbers as float64,
// currencies upper-cased), or a *DataError.
func (s spec) check(name string, data map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(data))
	for key := range data {
		if !slices.ContainsFunc(s.fields, func(f field) bool { return f.name == key }) {
			return nil, &DataError{Template: name, Field: safeKey(key), Problem: "is not a field of this template"}
		}
	}
	for _, f := range s.fields {
		raw, ok := data[f.name]
		if !ok || raw == nil {
			if f.required {
				return nil, &DataError{Template: name, Field: f.name, Problem: "is required"}
			}
			continue
		}
		v, problem := f.normalise(raw)
		if problem != "" {
			return nil, &DataError{Template: name, Field: f.name, Problem: problem}
		}
		out[f.name] = v
	}
	return out, nil
}

func (f field) normalise(raw any) (any, string) {
	if f.kind == kindNumber {
		n, ok := number(raw)
		if !ok || math.IsNaN(n) || math.IsInf(n, 0) {
			return nil, "must be a number"
		}
		if n < f.min || n > f.max {
			return nil, fmt.Sprintf("must be between %g and %g", f.min, f.max)
		}
		return n, ""
	}
	s, ok := raw.(string)
	if !ok {
		return nil, "must be a string"
	}
	switch f.kind {
	case kindPeriod:
		if s != "daily" && s != "monthly" {
			return nil, `must be "daily" or "monthly"`
		}
	case kindCurrency:
		if len(s) != 3 || strings.IndexFunc(s, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') }) >= 0 {
			return nil, "must be a three-letter currency code such as USD"
		}
		return strings.ToUpper(s), ""
	case kindID:
		if s == "" || len(s) > f.maxLen || strings.IndexFunc(s, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.:-", r))
		}) >= 0 {
			return nil, fmt.Sprintf("must be 1 to %d letters, digits or _ . : -", f.maxLen)
		}
	case kindParagraphs:
		s = strings.TrimSpace(strings.ReplaceAll(s, "\r", ""))
		if s == "" {
			return nil, "must not be empty"
		}
		if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0 {
			return nil, "must be text without control characters other than line breaks and tabs"
		}
		if utf8.RuneCountInString(s) > f.maxLen {
			return nil, fmt.Sprintf("must be at most %d characters", f.maxLen)
		}
	default:
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, "must not be empty"
		}
		if !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
			return nil, "must be one line of text without control characters"
		}
		if utf8.RuneCountInString(s) > f.maxLen {
			return nil, fmt.Sprintf("must be at most %d characters", f.maxLen)
		}
	}
	return s, ""
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case uint:
		return float64(n), true
	case uint64:
		return float64(n), true
	case uint32:
		return float64(n), true
	}
	return 0, false
}

// safeKey shortens an unknown data key for an error message and drops anything odd in it.
func safeKey(k string) string {
	if len(k) > 40 || strings.IndexFunc(k, func(r rune) bool { return r > unicode.MaxASCII || unicode.IsControl(r) }) >= 0 {
		return "(an unknown field)"
	}
	return k
}
