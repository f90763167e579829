package analytics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
)

// MarketingCacheFor is how long the marketing summary's figures are reused before
// they are counted again.
const MarketingCacheFor = 30 * time.Second

// Marketing is the public marketing summary: figures counted from the database and
// Levqor's own copy.
type Marketing struct {
	JobsProcessed  int64   // jobs that reached a final state
	Users          int64   // users
	Events         int64   // tracked events, bots excluded
	ConversionRate float64 // all-time conversions / page views × 100, 2 decimals
	GeneratedAt    time.Time
	Copy
}

// Copy is the marketing copy of static/marketing.
type Copy struct {
	Headlines    []string      `json:"headlines"`
	CTAs         []CTA         `json:"ctas"`
	USPs         []USP         `json:"usps"`
	Testimonials []Testimonial `json:"testimonials"`
}

// CTA is a call to action: a label and the URL it leads to.
type CTA struct {
	Label string `json:"label"`
	URL   string `json:"url"`
}

// USP is one selling point.
type USP struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

// Testimonial is a quote with who said it.
type Testimonial struct {
	Quote string `json:"quote"`
	Name  string `json:"name"`
	Role  string `json:"role"`
}

// LoadCopy reads landing_snippets.json (headlines, ctas, usps) and testimonials.json
// (testimonials) from fsys, refusing unknown fields, empty texts and CTA URLs that are
// neither site paths nor https URLs.
func LoadCopy(fsys fs.FS) (Copy, error) {
	var landing struct {
		Headlines []string `json:"headlines"`
		CTAs      []CTA    `json:"ctas"`
		USPs      []USP    `json:"usps"`
	}
	var quotes struct {
		Testimonials []Testimonial `json:"testimonials"`
	}
	if err := decodeStrict(fsys, "landing_snippets.json", &landing); err != nil {
		return Copy{}, err
	}
	if err := decodeStrict(fsys, "testimonials.json", &quotes); err != nil {
		return Copy{}, err
	}
	c := Copy{Headlines: landing.Headlines, CTAs: landing.CTAs, USPs: landing.USPs, Testimonials: quotes.Testimonials}
	return c, c.validate()
}

func decodeStrict(fsys fs.FS, name string, v any) error {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return fmt.Errorf("marketing copy: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("marketing copy %s: %w", name, err)
	}
	return nil
}

func (c Copy) validate() error {
	var errs []error
	need := func(what, s string) {
		if strings.TrimSpace(s) == "" {
			errs = append(errs, fmt.Errorf("marketing copy: empty %s", what))
		}
	}
	if len(c.Headlines) == 0 {
		errs = append(errs, errors.New("marketing copy: no headlines"))
	}
	for i, h := range c.Headlines {
		need(fmt.Sprintf("headline %d", i), h)
	}
	for i, cta := range c.CTAs {
		need(fmt.Sprintf("label of CTA %d", i), cta.Label)
		if !strings.HasPrefix(cta.URL, "/") && !strings.HasPrefix(cta.URL, "https://") || strings.HasPrefix(cta.URL, "//") {
			errs = append(errs, fmt.Errorf("marketing copy: CTA %d URL %q is neither a site path nor https", i, cta.URL))
		}
	}
	for i, u := range c.USPs {
		need(fmt.Sprintf("title of USP %d", i), u.Title)
		need(fmt.Sprintf("body of USP %d", i), u.Body)
	}
	for i, t := range c.Testimonials {
		need(fmt.Sprintf("quote of testimonial %d", i), t.Quote)
		need(fmt.Sprintf("name of testimonial %d", i), t.Name)
		need(fmt.Sprintf("role of testimonial %d", i), t.Role)
	}
	return errors.Join(errs...)
}

// Marketing returns the marketing summary. Its figures are counted at most once per
// MarketingCacheFor (callers meanwhile share the last count; GeneratedAt says when
// it was taken), so the public route cannot make the database count all the time.
func (s *Service) Marketing(ctx context.Context) (Marketing, error) {
	s.marketingMu.Lock()
	defer s.marketingMu.Unlock()
	now := s.now()
	if !s.marketing.GeneratedAt.IsZero() && now.Sub(s.marketing.GeneratedAt) < MarketingCacheFor {
		return s.marketing, nil
	}
	jobsFinished, users, err := s.store.MarketingCounts(ctx)
	if err != nil {
		return Marketing{}, fmt.Errorf("count jobs and users: %w", err)
	}
	totals, err := s.store.EventTotals(ctx)
	if err != nil {
		return Marketing{}, fmt.Errorf("read event totals: %w", err)
	}
	s.marketing = Marketing{
		JobsProcessed: jobsFinished, Users: users, Events: totals.Sum(),
		ConversionRate: percent(totals.Conversion, totals.PageView),
		GeneratedAt:    now.UTC(), Copy: s.copy,
	}
	return s.marketing, nil
}
