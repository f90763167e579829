package connectors

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/levqor/levqor/outbound"
)

// Refused is the StepError of a request the outbound guard refused — code refused,
// the guard's reason as its message — or nil when err is no refusal.
func Refused(err error) *StepError {
	if !errors.Is(err, outbound.ErrRefused) {
		return nil
	}
	msg := "refused: the destination is not allowed"
	var re *outbound.RefusedError
	if errors.As(err, &re) {
		msg = re.Error()
	}
	return &StepError{Code: CodeRefused, Message: msg, Err: err}
}

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

// EndpointURL checks a vendor endpoint from configuration (field names it in errors;
// "" means def): an absolute http(s) URL without credentials, query or fragment.
func EndpointURL(connector, field, v, def string) (*url.URL, error) {
	if v == "" {
		v = def
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s: %s must be an absolute http or https URL", connector, field)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%s: %s must not contain credentials, a query or a fragment", connector, field)
	}
	return u, nil
}

// ErrResponseTooLarge is what reading a capped response body past its limit returns.
var ErrResponseTooLarge = errors.New("connectors: response body over the limit")

// CapResponse limits resp's body to limit bytes: a declared length over it is refused at
// once (the body is closed), and reading past it fails with ErrResponseTooLarge. Vendor
// SDKs decode bodies without a limit; their HTTP clients are wrapped with this.
func CapResponse(resp *http.Response, limit int64) error {
	if resp.ContentLength > limit {
		resp.Body.Close()
		return ErrResponseTooLarge
	}
	resp.Body = &cappedBody{ReadCloser: resp.Body, left: limit}
	return nil
}

// cappedBody fails with ErrResponseTooLarge once more than left bytes have been read.
type cappedBody struct {
	io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	if int64(n) > b.left {
		n, b.left = int(b.left), 0
		return n, ErrResponseTooLarge
	}
	b.left -= int64(n)
	return n, err
}
