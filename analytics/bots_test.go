package analytics

import (
	"strings"
	"testing"
)

func TestIsBot(t *testing.T) {
	cases := []struct {
		ua  string
		bot bool
	}{
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", false},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", false},
		{"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0", false},
		{"Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36", false},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", true},
		{"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", true},
		{"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", true},
		{"Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", true},
		{"Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)", true},
		{"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", true},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36", true},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Chrome-Lighthouse", true},
		{"curl/8.5.0", true},
		{"Wget/1.21.4", true},
		{"Go-http-client/1.1", true},
		{"python-requests/2.32.3", true},
		{"okhttp/4.12.0", true},
		{"", true},
		{"   ", true},
	}
	for _, tc := range cases {
		if got := IsBot(tc.ua); got != tc.bot {
			t.Errorf("IsBot(%q) = %v, want %v", tc.ua, got, tc.bot)
		}
	}
	// Only the first KiB is read.
	if IsBot(strings.Repeat("a", maxUserAgentBytes) + " Googlebot") {
		t.Error("IsBot read past its bound")
	}
}

// FuzzIsBot checks that IsBot never fails, ignores the case of ASCII letters, and
// flags any User-Agent that names a crawler in its first KiB.
func FuzzIsBot(f *testing.F) {
	for _, s := range []string{"Mozilla/5.0 (X11; Linux x86_64) Firefox/127.0", "Googlebot", "CUBOT", "", "\xff\xfe", "HeadlessChrome"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		bot := IsBot(ua)
		if IsBot(asciiUpper(ua)) != bot || IsBot(asciiLower(ua)) != bot {
			t.Errorf("IsBot(%q) = %v, but not for the same text in another case", ua, bot)
		}
		if short := ua[:min(len(ua), 200)]; !IsBot(short + " (compatible; Googlebot/2.1)") {
			t.Errorf("IsBot(%q + Googlebot) = false", short)
		}
	})
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}
