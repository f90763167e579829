package server

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestPrefersHTML(t *testing.T) {
	cases := []struct {
		accept []string
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"*/*"}, false},
		{[]string{"application/json"}, false},
		{[]string{"application/problem+json, text/html;q=0.5"}, false},
		{[]string{"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"}, true}, // Chromium
		{[]string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, true},                       // Firefox
		{[]string{"TEXT/HTML"}, true},
		{[]string{"application/xhtml+xml"}, true},
		{[]string{"text/html;q=0"}, false},
		{[]string{"text/html;q=0.9, application/json"}, false},
		{[]string{"text/html, application/json"}, true}, // a tie goes to HTML
		{[]string{"application/json;q=0.1", "text/html"}, true},
		{[]string{"text/html;q=nope"}, false},
		{[]string{"text/html;q=NaN"}, false},
		{[]string{"text/html;q=2"}, false},
		{[]string{"text/html; level=1; q=0.4"}, true},
	}
	for _, tc := range cases {
		if got := prefersHTML(tc.accept); got != tc.want {
			t.Errorf("prefersHTML(%q) = %v, want %v", tc.accept, got, tc.want)
		}
	}
}

// FuzzPrefersHTML: no Accept header panics the parser, and only a header that
// names an HTML type can win HTML.
func FuzzPrefersHTML(f *testing.F) {
	for _, seed := range []string{"", "*/*", "text/html", "text/html;q=0.5,application/json;q=0.6", ";;;,,,=q", "text/html;q=1e309"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		if prefersHTML([]string{accept}) {
			l := strings.ToLower(accept)
			if !strings.Contains(l, "text/html") && !strings.Contains(l, "application/xhtml+xml") {
				t.Fatalf("%q names no HTML type, yet prefers HTML", accept)
			}
		}
	})
}

func TestNewSiteRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"levqor.ai", "ftp://levqor.ai", "https://", "https://levqor.ai/?x=1", "https://levqor.ai/#top", "::"} {
		if _, err := newSite(u, "", ""); err == nil {
			t.Errorf("newSite(%q) accepted the URL", u)
		}
	}
	s, err := newSite("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if s.root != defaultPublicURL || s.securityContact != "mailto:security@levqor.ai" || s.dashboard != nil {
		t.Errorf("defaults: root %q, contact %q, dashboard %v", s.root, s.securityContact, s.dashboard)
	}
}

func TestSecurityTxtRenewsDaily(t *testing.T) {
	s := testSite(t)
	morning := time.Date(2026, 11, 26, 0, 0, 1, 0, time.UTC)
	first := s.securityTxt(morning)
	if again := s.securityTxt(morning.Add(23 * time.Hour)); again != first {
		t.Error("security.txt is rebuilt within the day")
	}
	if !bytes.Contains(first.identity(), []byte("Expires: 2027-05-25T00:00:00Z\n")) {
		t.Errorf("security.txt of 2026-11-26:\n%s", first.identity())
	}
	next := s.securityTxt(morning.Add(24 * time.Hour))
	if next == first || next.etag == first.etag || !bytes.Contains(next.identity(), []byte("Expires: 2027-05-26T00:00:00Z\n")) {
		t.Errorf("security.txt is not renewed the next day:\n%s", next.identity())
	}
}

// TestMarkdownRawHTMLOff: HTML in a Markdown source is dropped, not rendered,
// and so are javascript: links.
func TestMarkdownRawHTMLOff(t *testing.T) {
	var b bytes.Buffer
	src := "# Title\n\n<script>alert(1)</script>\n\nText <b onclick=\"x()\">bold</b> [link](javascript:alert(1))\n"
	if err := newMarkdown().Convert([]byte(src), &b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, bad := range []string{"<script", "<b ", "onclick", "javascript:"} {
		if strings.Contains(out, bad) {
			t.Errorf("rendered %q:\n%s", bad, out)
		}
	}
	if !strings.Contains(out, `<h1 id="title">Title</h1>`) {
		t.Errorf("the heading lost its id or text:\n%s", out)
	}
}
