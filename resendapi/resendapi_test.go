package resendapi

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"none", nil, 0},
		{"seconds", map[string]string{"Retry-After": "12"}, 12 * time.Second},
		{"fractional seconds", map[string]string{"Retry-After": "1.5"}, 1500 * time.Millisecond},
		{"HTTP date", map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{"date in the past", map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{"Retry-After wins over ratelimit-reset", map[string]string{"Retry-After": "2", "Ratelimit-Reset": "30"}, 2 * time.Second},
		{"ratelimit-reset", map[string]string{"Ratelimit-Reset": "30"}, 30 * time.Second},
		{"capped", map[string]string{"Retry-After": "86400"}, MaxRetryAfter},
		{"capped date", map[string]string{"Retry-After": now.Add(48 * time.Hour).Format(http.TimeFormat)}, MaxRetryAfter},
		{"negative", map[string]string{"Retry-After": "-5"}, 0},
		{"NaN", map[string]string{"Retry-After": "NaN"}, 0},
		{"garbage", map[string]string{"Retry-After": "soon", "Ratelimit-Reset": "later"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			if got := retryAfter(h, now); got != tt.want {
				t.Errorf("retryAfter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestScrub(t *testing.T) {
	key := "re_live_Zx81kQ2mP0aB"
	tests := []struct{ in, want string }{
		{"API key " + key + " is invalid", "API key [redacted] is invalid"},
		{"another re_ABCdef123456 key", "another [redacted] key"},
		{"line one\r\nline two\tend", "line one line two end"},
		{"bad \xff utf-8", "bad utf-8"},
		{strings.Repeat("é", 400), strings.Repeat("é", maxMessageRunes) + "…"},
	}
	for _, tt := range tests {
		if got := scrub(tt.in, key); got != tt.want {
			t.Errorf("scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzScrub checks what scrub promises whatever Resend says: no key, no control
// character, valid UTF-8, bounded length.
func FuzzScrub(f *testing.F) {
	f.Add("API key re_abc123456789 is invalid", "re_abc123456789")
	f.Add("ted]abcdefghijkl-ted]abcdefghijkl", "ted]abcdefghijkl")
	f.Add("a\r\nb", "secret-key-value")
	f.Add(strings.Repeat("x", 1000), "xxxxxxxxxxxxxxxxx")
	f.Fuzz(func(t *testing.T, msg, key string) {
		got := scrub(msg, key)
		if !utf8.ValidString(got) || strings.IndexFunc(got, unicode.IsControl) >= 0 {
			t.Fatalf("scrub(%q) = %q has a control character or bad UTF-8", msg, got)
		}
		if n := utf8.RuneCountInString(got); n > maxMessageRunes+1 {
			t.Fatalf("scrub(%q) is %d runes long", msg, n)
		}
		if len(key) > len(redacted) && strings.Contains(got, key) {
			t.Fatalf("scrub(%q, %q) = %q still holds the key", msg, key, got)
		}
		if resendKey.MatchString(got) {
			t.Fatalf("scrub(%q) = %q still holds something shaped like a key", msg, got)
		}
	})
}

func TestNewBaseURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "https://api.resend.com/"},
		{"https://api.resend.com", "https://api.resend.com/"},
		{"http://127.0.0.1:8025/resend", "http://127.0.0.1:8025/resend/"},
	} {
		c, err := New(tt.in, nil)
		if err != nil {
			t.Fatalf("New(%q): %v", tt.in, err)
		}
		if got := c.baseURL.String(); got != tt.want {
			t.Errorf("New(%q) base = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"resend.com", "ftp://resend.com", "https://user:pw@resend.com", "https://resend.com/?x=1", "https://resend.com/#f", "://"} {
		if _, err := New(bad, nil); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}
