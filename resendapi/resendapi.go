// Package resendapi is Levqor's one way of talking to Resend, shared by the email
// connector and the notifier: it builds resend-go clients for a configured base URL and
// HTTP client, sends one email under an idempotency key, and classifies every failure
// into an *Error whose text is safe to log and store. It lives beside both users, not
// inside either: the notifier and connectors/email depend on it, it on neither, and
// the only edge between those two runs one way (the connector renders the notifier's
// templates). resendtest is its fake of Resend's API for tests.
package resendapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/resend/resend-go/v3"

	"github.com/levqor/levqor/connectors"
)

// DefaultBaseURL is Resend's API root.
const DefaultBaseURL = "https://api.resend.com/"

const (
	// MaxResponseBytes is the largest response body read from Resend; a send's answer is
	// a few dozen bytes and an error a few hundred.
	MaxResponseBytes = 64 << 10
	// MaxRetryAfter caps the delay a 429 may ask for.
	MaxRetryAfter = time.Hour
	// MaxIdempotencyKey is the longest idempotency key Resend accepts.
	MaxIdempotencyKey = 256

	maxMessageRunes = 300
	inProgressRetry = 2 * time.Second
	defaultTimeout  = 30 * time.Second
)

// Kind classifies a failed send by what the caller should do about it.
type Kind int

const (
	KindTransport             Kind = iota // no response arrived (connection refused, reset…); retryable
	KindTimeout                           // no complete response in time; retryable
	KindRateLimited                       // 429 rate_limit_exceeded; retryable after RetryAfter
	KindQuotaExceeded                     // 429 daily or monthly quota used up; not retryable soon
	KindAuth                              // 401, or 403 about the API key; not retryable
	KindInvalid                           // 400, 422 or a 403 validation_error (e.g. unverified domain); not retryable
	KindIdempotencyMismatch               // 409: the key was used before with a different email; not retryable
	KindIdempotencyInProgress             // 409: the key's first request is still running; retryable
	KindUnavailable                       // 5xx; retryable
	KindRejected                          // any other status (404, 405…): misconfiguration; not retryable
	KindMalformed                         // a 2xx whose body is not a send response; retryable under the same key
	KindTooLarge                          // the response is over MaxResponseBytes; not retryable
)

// Error is a failed send. Its Error text and fields other than Err are safe to log and
// store: Resend's message is kept only after the API key is scrubbed from it.
type Error struct {
	Kind       Kind
	Status     int           // HTTP status; 0 when no response arrived
	Name       string        // Resend's error name, e.g. "validation_error"; "" when none
	Message    string        // Resend's message, scrubbed and shortened; "" when none
	RetryAfter time.Duration // Resend's hint (Retry-After or ratelimit-reset); zero when none
	Err        error         // the cause; may carry upstream detail, never shown
}

func (e *Error) Error() string {
	var sb strings.Builder
	sb.WriteString("resend: ")
	switch e.Kind {
	case KindTransport:
		sb.WriteString("the request failed before a response arrived")
	case KindTimeout:
		sb.WriteString("no response in time")
	case KindMalformed:
		sb.WriteString("the response is not a send response")
	case KindTooLarge:
		fmt.Fprintf(&sb, "the response is larger than %d bytes", MaxResponseBytes)
	default:
		sb.WriteString(strconv.Itoa(e.Status))
		if e.Name != "" {
			sb.WriteString(" " + e.Name)
		}
		if e.Message != "" {
			sb.WriteString(": " + e.Message)
		}
	}
	return sb.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the same send may succeed later.
func (e *Error) Retryable() bool {
	switch e.Kind {
	case KindTransport, KindTimeout, KindRateLimited, KindIdempotencyInProgress, KindUnavailable, KindMalformed:
		return true
	}
	return false
}

// Client sends email through Resend. It is safe for concurrent use.
type Client struct {
	baseURL *url.URL
	http    *http.Client
}

// New returns a client for the API root baseURL ("" means DefaultBaseURL). Requests go
// through hc (nil means a client with a 30-second timeout), whose transport is wrapped
// to read Resend's status and error body, which resend-go does not return.
func New(baseURL string, hc *http.Client) (*Client, error) {
	u, err := connectors.EndpointURL("resend", "the base URL", baseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	// resend-go resolves "emails" against the base, so a base path needs its trailing slash.
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	var c http.Client
	if hc != nil {
		c = *hc
	} else {
		c.Timeout = defaultTimeout
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = &recorder{base: base}
	return &Client{baseURL: u, http: &c}, nil
}

// Send sends one email with apiKey under idempotencyKey and returns Resend's email id.
// Resend answers a repeated key with the first send's result for 24 hours without
// sending again, so retrying with the same key is safe. A failure is an *Error, or
// ctx's error when ctx ended first.
func (c *Client) Send(ctx context.Context, apiKey string, email *resend.SendEmailRequest, idempotencyKey string) (string, error) {
	if idempotencyKey == "" || len(idempotencyKey) > MaxIdempotencyKey {
		return "", fmt.Errorf("resend: an idempotency key of 1 to %d bytes is required", MaxIdempotencyKey)
	}
	sdk := resend.NewCustomClient(c.http, apiKey)
	// NewCustomClient starts from RESEND_BASE_URL or Resend's host; ours comes from config.
	sdk.BaseURL = c.baseURL
	ex := &exchange{}
	resp, err := sdk.Emails.SendWithOptions(context.WithValue(ctx, exchangeKey{}, ex), email,
		&resend.SendEmailOptions{IdempotencyKey: idempotencyKey})
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", classify(ex, err, apiKey)
	}
	if identifier(resp.Id) == "" {
		return "", &Error{Kind: KindMalformed, Status: ex.status, Err: errors.New("the response has no usable id")}
	}
	return resp.Id, nil
}

// exchange is what the recorder saw of one request's response.
type exchange struct {
	status int
	header http.Header
	body   []byte
}

type exchangeKey struct{}

var errTooLarge = errors.New("resend: response too large")

// recorder reads each response body (bounded) so that the status, headers and error
// body resend-go drops are still at hand when its call fails.
type recorder struct{ base http.RoundTripper }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	ex, _ := req.Context().Value(exchangeKey{}).(*exchange)
	if ex == nil {
		return resp, nil
	}
	ex.status, ex.header = resp.StatusCode, resp.Header
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if len(body) > MaxResponseBytes {
		return nil, errTooLarge
	}
	ex.body = body
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// vendorError is Resend's error body.
type vendorError struct {
	StatusCode int    `json:"statusCode"`
	Name       string `json:"name"`
	Message    string `json:"message"`
}

func classify(ex *exchange, err error, apiKey string) *Error {
	switch {
	case errors.Is(err, errTooLarge):
		return &Error{Kind: KindTooLarge, Status: ex.status, Err: err}
	case ex.status == 0:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return &Error{Kind: KindTimeout, Err: err}
		}
		return &Error{Kind: KindTransport, Err: err}
	case ex.status >= 200 && ex.status < 300:
		return &Error{Kind: KindMalformed, Status: ex.status, Err: err}
	}
	var v vendorError
	_ = json.Unmarshal(ex.body, &v) // a non-JSON error body still has its status
	e := &Error{Status: ex.status, Name: identifier(v.Name), Message: scrub(v.Message, apiKey), Err: err}
	switch s := ex.status; {
	case s == http.StatusTooManyRequests:
		e.Kind = KindRateLimited
		if strings.HasSuffix(e.Name, "_quota_exceeded") {
			e.Kind = KindQuotaExceeded
		}
		e.RetryAfter = retryAfter(ex.header, time.Now())
	case s == http.StatusUnauthorized:
		e.Kind = KindAuth
	case s == http.StatusForbidden && e.Name == "validation_error":
		e.Kind = KindInvalid
	case s == http.StatusForbidden:
		e.Kind = KindAuth
	case s == http.StatusBadRequest || s == http.StatusUnprocessableEntity:
		e.Kind = KindInvalid
	case s == http.StatusConflict && e.Name == "concurrent_idempotent_requests":
		e.Kind = KindIdempotencyInProgress
		e.RetryAfter = max(retryAfter(ex.header, time.Now()), inProgressRetry)
	case s == http.StatusConflict:
		e.Kind = KindIdempotencyMismatch
	case s >= 500:
		e.Kind = KindUnavailable
		e.RetryAfter = retryAfter(ex.header, time.Now())
	default:
		e.Kind = KindRejected
	}
	if e.Kind == KindAuth {
		// Auth messages are about the key; nothing in them helps more than the name does.
		e.Message = ""
	}
	return e
}

// retryAfter reads Retry-After (seconds or an HTTP date), else ratelimit-reset (seconds
// until the window resets), capped at MaxRetryAfter.
func retryAfter(h http.Header, now time.Time) time.Duration {
	var d time.Duration
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil {
			d = seconds(secs)
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		}
	} else if v := strings.TrimSpace(h.Get("Ratelimit-Reset")); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil {
			d = seconds(secs)
		}
	}
	return max(0, min(d, MaxRetryAfter))
}

func seconds(s float64) time.Duration {
	if s <= 0 || s != s {
		return 0
	}
	return time.Duration(min(s, MaxRetryAfter.Seconds()) * float64(time.Second))
}

// resendKey matches anything shaped like a Resend API key.
var resendKey = regexp.MustCompile(`re_[A-Za-z0-9_]{6,}`)

const redacted = "[redacted]"

// scrub makes Resend's message safe to store: control characters and runs of space
// collapsed, anything shaped like a Resend key and the API key itself removed (until none
// is left, so a removal cannot join two halves into a key), and the length bounded.
func scrub(msg, apiKey string) string {
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(msg, ""))
	msg = strings.Join(strings.Fields(msg), " ")
	msg = resendKey.ReplaceAllString(msg, redacted)
	if len(apiKey) > len(redacted) {
		// Each pass shortens msg, so this ends.
		for strings.Contains(msg, apiKey) {
			msg = strings.ReplaceAll(msg, apiKey, redacted)
		}
	} else if apiKey != "" {
		msg = strings.ReplaceAll(msg, apiKey, redacted)
	}
	if r := []rune(msg); len(r) > maxMessageRunes {
		msg = string(r[:maxMessageRunes]) + "…"
	}
	return msg
}

// identifier keeps an error name or email id only if it looks like one.
func identifier(s string) string {
	if s == "" || len(s) > 64 {
		return ""
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return ""
		}
	}
	return s
}
