package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/outbound"
)

// Step error codes this connector reports besides those of package connectors. The
// message of each carries Telegram's error_code and description, e.g.
// "telegram: 400 Bad Request: chat not found".
const (
	CodeRateLimited = connectors.CodeRateLimited // Telegram asked to slow down; retryable after RetryAfter
	CodeAuthFailed  = connectors.CodeAuthFailed  // the bot token is invalid or revoked
	CodeForbidden   = connectors.CodeForbidden   // the bot may not write there (blocked, kicked, not an admin)
	CodeNotFound    = connectors.CodeNotFound    // no such chat or user
	CodeBadRequest  = connectors.CodeBadRequest  // Telegram refused the request as it was made
)

// maxDescriptionRunes bounds how much of Telegram's error description a message quotes.
const maxDescriptionRunes = 200

// call POSTs params as JSON to the Bot API method and decodes the result into result.
// Every error it returns is free of the token, which is part of the URL.
func (b bot) call(ctx context.Context, method string, params, result any) error {
	body, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("encode %s parameters: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.c.baseURL+"/bot"+b.token+"/"+method, bytes.NewReader(body))
	if err != nil {
		// Not reachable with a checked base URL and token; the error would quote the URL.
		return &connectors.StepError{Code: connectors.CodeUpstreamError, Message: "the Bot API URL could not be built"}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.c.client.Do(req)
	if err != nil {
		return transportError(ctx, b.token, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength > MaxResponseBytes {
		return tooLarge()
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return transportError(ctx, b.token, err)
	}
	if len(data) > MaxResponseBytes {
		return tooLarge()
	}
	return decodeResponse(resp.StatusCode, resp.Header, data, b.token, result)
}

// envelope is the shape of every Bot API response.
type envelope struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  struct {
		RetryAfter float64 `json:"retry_after"`
	} `json:"parameters"`
}

// decodeResponse reads a Bot API response into result, or maps its error to a
// *connectors.StepError whose message never holds token.
func decodeResponse(status int, header http.Header, body []byte, token string, result any) error {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		// Not the Bot API's JSON: a proxy's page, most likely; its status is all there is.
		switch {
		case status == http.StatusTooManyRequests:
			return rateLimited(retryAfterHeader(header.Get("Retry-After")), fmt.Sprintf("telegram responded %s", connectors.StatusText(status)))
		case status >= 500:
			return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true,
				Message: fmt.Sprintf("telegram responded %s", connectors.StatusText(status))}
		}
		return invalidResponse(err)
	}
	if !env.OK {
		code := env.ErrorCode
		if code == 0 {
			code = status
		}
		if code < 400 {
			return invalidResponse(errors.New(`"ok": false without an error code`))
		}
		var after time.Duration
		if s := env.Parameters.RetryAfter; s > 0 {
			after = time.Duration(min(s, MaxRetryAfter.Seconds()) * float64(time.Second))
		} else {
			after = retryAfterHeader(header.Get("Retry-After"))
		}
		return apiError(code, cleanDescription(env.Description, token), after)
	}
	if status != http.StatusOK || len(env.Result) == 0 || string(env.Result) == "null" {
		return invalidResponse(fmt.Errorf(`"ok": true with status %d and %d bytes of result`, status, len(env.Result)))
	}
	if err := json.Unmarshal(env.Result, result); err != nil {
		return invalidResponse(err)
	}
	return nil
}

// apiError maps an "ok": false response by its error_code (and, for a 400, description).
func apiError(code int, description string, retryAfter time.Duration) error {
	msg := "telegram: " + strconv.Itoa(code)
	if description != "" {
		msg += " " + description
	}
	lower := strings.ToLower(description)
	switch {
	case code == http.StatusTooManyRequests:
		return rateLimited(retryAfter, msg)
	case code >= 500:
		return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Message: msg}
	case code == http.StatusUnauthorized:
		return connectors.Errorf(CodeAuthFailed, "%s", msg)
	case code == http.StatusNotFound:
		// The Bot API answers 404 to a token it cannot parse (and to an unknown method,
		// which this connector never calls).
		return connectors.Errorf(CodeAuthFailed, "%s", msg)
	case code == http.StatusForbidden:
		return connectors.Errorf(CodeForbidden, "%s", msg)
	case strings.Contains(lower, "chat not found") || strings.Contains(lower, "user not found"):
		return connectors.Errorf(CodeNotFound, "%s", msg)
	}
	return connectors.Errorf(CodeBadRequest, "%s", msg)
}

func rateLimited(after time.Duration, msg string) error {
	return &connectors.StepError{Code: CodeRateLimited, Retryable: true, RetryAfter: max(0, min(after, MaxRetryAfter)), Message: msg}
}

// retryAfterHeader reads a Retry-After header in seconds, which proxies in front of the
// Bot API may send; Telegram itself puts the hint in parameters.retry_after.
func retryAfterHeader(v string) time.Duration {
	secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || secs <= 0 {
		return 0
	}
	return time.Duration(min(secs, int64(MaxRetryAfter/time.Second))) * time.Second
}

// cleanDescription makes Telegram's error description safe to store and show: the token
// removed, only printable characters, at most maxDescriptionRunes of them.
func cleanDescription(s, token string) string {
	if token != "" {
		s = strings.ReplaceAll(s, token, "[token]")
	}
	var sb strings.Builder
	n := 0
	for _, r := range s {
		if n == maxDescriptionRunes {
			sb.WriteString("…")
			break
		}
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			r = ' '
		}
		sb.WriteRune(r)
		n++
	}
	out := strings.TrimSpace(sb.String())
	if token != "" && strings.Contains(out, token) {
		// Replacing characters can join pieces into the token again.
		return "[description withheld]"
	}
	return out
}

func invalidResponse(err error) error {
	return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
		Message: "telegram's response is not valid JSON of the documented shape"}
}

func tooLarge() error {
	return connectors.Errorf(connectors.CodeResponseTooLarge, "telegram's response is larger than %d bytes", MaxResponseBytes)
}

// transportError maps a failed round trip. net/http's errors quote the request's URL,
// token included, so the cause is kept only as a scrubbed copy.
func transportError(ctx context.Context, token string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err() // the registry turns it into timeout or canceled
	}
	safe := scrub(err, token)
	if se := connectors.Refused(err); se != nil {
		se.Message, se.Err = strings.ReplaceAll(se.Message, token, "[token]"), safe
		return se
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &connectors.StepError{Code: connectors.CodeTimeout, Retryable: true, Err: safe,
			Message: "telegram did not answer in time"}
	}
	return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: safe,
		Message: "the request to telegram failed before a response arrived"}
}

// scrubbedError is an error's text with the token replaced. It still matches the
// sentinels callers test for with errors.Is.
type scrubbedError struct {
	msg      string
	sentinel error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.sentinel }

func scrub(err error, token string) error {
	se := &scrubbedError{msg: strings.ReplaceAll(err.Error(), token, "[token]")}
	for _, s := range []error{outbound.ErrRefused, context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, s) {
			se.sentinel = s
			break
		}
	}
	return se
}
