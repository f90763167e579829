package connectors

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter caps the wait a vendor may ask for before a step is retried.
const MaxRetryAfter = time.Hour

// RetryAfter parses a Retry-After header value (delay-seconds or an HTTP date) into a
// wait of at most MaxRetryAfter; a missing, malformed or past value is 0.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	var d time.Duration
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs > 0 {
			d = time.Duration(min(secs, MaxRetryAfter.Seconds()) * float64(time.Second))
		}
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, MaxRetryAfter))
}

// StatusText is "429 Too Many Requests", or just the number for an unknown status.
func StatusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return strconv.Itoa(code)
}
