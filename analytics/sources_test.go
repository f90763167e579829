package analytics

import (
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestParseUTM(t *testing.T) {
	cases := []struct {
		ref  string
		want UTM
	}{
		{"https://levqor.ai/pricing?utm_source=Newsletter&utm_medium=email&utm_campaign=launch-2025", UTM{"newsletter", "email", "launch-2025"}},
		{"?utm_source=ads", UTM{Source: "ads"}},
		{"/pricing?UTM_Source=Ads#utm_medium=ignored", UTM{Source: "ads"}},
		{"https://levqor.ai/?utm_source=first&utm_source=second", UTM{Source: "first"}},
		{"https://levqor.ai/?utm_source=&utm_source=second", UTM{Source: "second"}},
		{"https://levqor.ai/?utm_campaign=spring+sale%21&x=1", UTM{Campaign: "spring sale!"}},
		{"https://levqor.ai/?utm_source=%zz&utm_medium=%41", UTM{Source: "%zz", Medium: "a"}}, // a bad escape is kept as sent
		{"https://levqor.ai/?%zz=x&utm_medium=cpc", UTM{Medium: "cpc"}},
		{"https://levqor.ai/?utm_source=%0A%00tab%09bed%20", UTM{Source: "tabbed"}},
		{"https://levqor.ai/?utm_source=" + strings.Repeat("é", 80), UTM{Source: strings.Repeat("é", 50)}},
		{"https://levqor.ai/utm_source=x", UTM{}},
		{"", UTM{}},
	}
	for _, tc := range cases {
		if got := ParseUTM(tc.ref); got != tc.want {
			t.Errorf("ParseUTM(%q) = %+v, want %+v", tc.ref, got, tc.want)
		}
	}
}

// FuzzParseUTM checks that ParseUTM never fails, returns only clean, bounded values,
// and finds a clean value it was given as utm_source, however the rest looks.
func FuzzParseUTM(f *testing.F) {
	for _, s := range []string{"https://levqor.ai/?utm_source=x&utm_medium=y&utm_campaign=z", "?utm_source=%ff%fe", "?a=b&&=&utm_source", "#?utm_source=x", "?utm_source=" + strings.Repeat("x", 300)} {
		f.Add(s, "newsletter")
	}
	f.Fuzz(func(t *testing.T, ref, source string) {
		u := ParseUTM(ref)
		for _, v := range []string{u.Source, u.Medium, u.Campaign} {
			checkClean(t, "ParseUTM("+ref+")", v, maxUTMBytes)
		}
		// A value ParseUTM would keep unchanged comes back from a URL carrying it.
		if want := clean(strings.ToLower(source), maxUTMBytes); want == source && want != "" {
			got := ParseUTM("https://levqor.ai/p?x=1&utm_source=" + url.QueryEscape(source) + "&" + strings.ReplaceAll(ref, "#", ""))
			if got.Source != want {
				t.Errorf("utm_source=%q read as %q", source, got.Source)
			}
		}
	})
}

// checkClean fails unless v is what clean promises: valid UTF-8, no control
// characters, trimmed and at most max bytes.
func checkClean(t *testing.T, what, v string, max int) {
	t.Helper()
	if !utf8.ValidString(v) || len(v) > max || strings.TrimSpace(v) != v || strings.ContainsFunc(v, unicode.IsControl) || strings.ContainsRune(v, utf8.RuneError) {
		t.Errorf("%s gave %q: want valid UTF-8 without control characters, trimmed, at most %d bytes", what, v, max)
	}
}

func TestRefWithUTM(t *testing.T) {
	cases := []struct{ ref, want string }{
		{"https://levqor.ai/p?utm_source=a&email=x%40y.z&UTM_Medium=b&token=s3cret#utm_campaign=c", "https://levqor.ai/p?utm_source=a&UTM_Medium=b"},
		{"https://levqor.ai/p?session=1", "https://levqor.ai/p"},
		{"https://levqor.ai/p?utm_=x&utm=y&%zz=1", "https://levqor.ai/p"},
		{"/relative?utm_campaign=spring", "/relative?utm_campaign=spring"},
		{"https://levqor.ai/\x00p", "https://levqor.ai/p"}, // cleaned
		{"", ""},
	}
	for _, tc := range cases {
		if got := refWithUTM(tc.ref, 100); got != tc.want {
			t.Errorf("refWithUTM(%q) = %q, want %q", tc.ref, got, tc.want)
		}
	}
	if got := withoutQuery("https://example.com/a?q=secret#x", 100); got != "https://example.com/a" {
		t.Errorf("withoutQuery = %q", got)
	}
}

func TestPagePath(t *testing.T) {
	cases := []struct{ path, ref, want string }{
		{"/pricing", "https://levqor.ai/other", "/pricing"},
		{"/pricing?plan=pro#faq", "", "/pricing"},
		{"", "https://levqor.ai/blog/post?utm_source=x", "/blog/post"},
		{"", "https://levqor.ai", ""},
		{"pricing", "", ""},
		{"  /a b  ", "", "/a b"},
		{"", "/relative/page?x=1", "/relative/page"},
		{"/" + strings.Repeat("p", 300), "", "/" + strings.Repeat("p", maxPathBytes-1)},
		{"", "://bad url", ""},
	}
	for _, tc := range cases {
		if got := pagePath(tc.path, tc.ref); got != tc.want {
			t.Errorf("pagePath(%q, %q) = %q, want %q", tc.path, tc.ref, got, tc.want)
		}
	}
}

func TestReferrerHost(t *testing.T) {
	cases := []struct{ referrer, want string }{
		{"https://www.Google.com/search?q=levqor", "google.com"},
		{"https://news.ycombinator.com/item?id=1", "news.ycombinator.com"},
		{"android-app://com.slack/", "com.slack"},
		{"http://[2001:db8::1]:8080/x", "2001:db8::1"},
		{"not a url", ""},
		{"/relative", ""},
		{"", ""},
	}
	for _, tc := range cases {
		if got := referrerHost(tc.referrer); got != tc.want {
			t.Errorf("referrerHost(%q) = %q, want %q", tc.referrer, got, tc.want)
		}
	}
}
