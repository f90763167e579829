package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/slack-go/slack"

	"github.com/levqor/levqor/connectors"
)

// Step error codes this connector reports besides those of package connectors. The
// message of each names Slack's own error code, e.g. "slack: channel_not_found".
const (
	CodeRateLimited = connectors.CodeRateLimited // Slack asked to slow down; retryable after RetryAfter
	CodeAuthFailed  = connectors.CodeAuthFailed  // the token is invalid, revoked or expired
	CodeForbidden   = connectors.CodeForbidden   // the token lacks a scope or the bot is not in the channel
	CodeNotFound    = connectors.CodeNotFound    // no such channel, thread or file
	CodeBadRequest  = connectors.CodeBadRequest  // Slack refused the request as it was made
)

// errorCodes sorts Slack's error codes that a retry cannot fix. Any other code is a
// bad_request, unless retryableCodes lists it.
var errorCodes = map[string]string{
	"not_authed":                          CodeAuthFailed,
	"invalid_auth":                        CodeAuthFailed,
	"account_inactive":                    CodeAuthFailed,
	"token_revoked":                       CodeAuthFailed,
	"token_expired":                       CodeAuthFailed,
	"not_allowed_token_type":              CodeAuthFailed,
	"two_factor_setup_required":           CodeAuthFailed,
	"org_login_required":                  CodeAuthFailed,
	"enterprise_is_restricted":            CodeAuthFailed,
	"missing_scope":                       CodeForbidden,
	"no_permission":                       CodeForbidden,
	"access_denied":                       CodeForbidden,
	"ekm_access_denied":                   CodeForbidden,
	"team_access_not_granted":             CodeForbidden,
	"not_in_channel":                      CodeForbidden,
	"restricted_action":                   CodeForbidden,
	"restricted_action_read_only_channel": CodeForbidden,
	"is_archived":                         CodeForbidden,
	"channel_not_found":                   CodeNotFound,
	"thread_not_found":                    CodeNotFound,
	"message_not_found":                   CodeNotFound,
	"file_not_found":                      CodeNotFound,
	"user_not_found":                      CodeNotFound,
}

// retryableCodes are Slack's error codes for a failure on its side.
var retryableCodes = map[string]bool{
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
}

// apiError maps what the SDK returned to a *connectors.StepError. Messages carry Slack's
// error code or the HTTP status, never the SDK's error text, which may quote a URL.
func apiError(ctx context.Context, action string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err() // the registry turns it into timeout or canceled
	}
	var (
		rateErr   *slack.RateLimitedError
		statusErr slack.StatusCodeError
		slackErr  slack.SlackErrorResponse
	)
	switch {
	case errors.Is(err, connectors.ErrResponseTooLarge):
		return &connectors.StepError{Code: connectors.CodeResponseTooLarge, Err: err,
			Message: fmt.Sprintf("slack's response is larger than %d bytes", MaxResponseBytes)}
	case errors.As(err, &rateErr):
		return rateLimited(rateErr.RetryAfter, err)
	case errors.As(err, &statusErr):
		return statusError(statusErr.Code, err)
	case errors.As(err, &slackErr):
		return slackError(slackErr.Err, err)
	}
	if se := connectors.Refused(err); se != nil {
		return se
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &connectors.StepError{Code: connectors.CodeTimeout, Retryable: true, Err: err,
			Message: "slack did not answer in time"}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
			Message: "the request to slack failed before a response arrived"}
	}
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &syntaxErr) || errors.As(err, &typeErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return invalidResponse(err)
	}
	// What is left are the SDK's own checks (an upload_url it will not send the token
	// to, an unreadable Retry-After): Slack answered, but not as documented.
	return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
		Message: "slack." + action + ": slack's response could not be used"}
}

func rateLimited(after time.Duration, err error) error {
	return &connectors.StepError{Code: CodeRateLimited, Retryable: true, Err: err,
		RetryAfter: max(0, min(after, MaxRetryAfter)),
		Message:    "slack: ratelimited"}
}

func statusError(status int, err error) error {
	text := fmt.Sprintf("slack responded %d %s", status, http.StatusText(status))
	switch {
	case status == http.StatusTooManyRequests: // a 429 without Retry-After
		return rateLimited(0, err)
	case status >= 500:
		return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Message: text, Err: err}
	case status == http.StatusUnauthorized:
		return &connectors.StepError{Code: CodeAuthFailed, Message: text, Err: err}
	case status == http.StatusForbidden:
		return &connectors.StepError{Code: CodeForbidden, Message: text, Err: err}
	case status == http.StatusNotFound:
		return &connectors.StepError{Code: CodeNotFound, Message: text, Err: err}
	}
	return &connectors.StepError{Code: CodeBadRequest, Message: text, Err: err}
}

// slackError maps an "ok": false response by its error code.
func slackError(code string, err error) error {
	msg := "slack: " + identifier(code)
	switch {
	case code == "ratelimited" || code == "rate_limited":
		return rateLimited(0, err)
	case retryableCodes[code]:
		return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Message: msg, Err: err}
	case errorCodes[code] != "":
		return &connectors.StepError{Code: errorCodes[code], Message: msg, Err: err}
	}
	return &connectors.StepError{Code: CodeBadRequest, Message: msg, Err: err}
}

// identifier returns Slack's error code if it looks like one (lower-case letters, digits
// and underscores, as all of Slack's do), so that nothing else can reach a message.
func identifier(code string) string {
	if code == "" || len(code) > 64 {
		return "unknown_error"
	}
	for _, r := range code {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return "unknown_error"
		}
	}
	return code
}

func invalidResponse(err error) error {
	return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
		Message: "slack's response is not valid JSON of the documented shape"}
}

// cappedClient is the HTTP client given to the SDK. It caps every response body, which
// the SDK would otherwise decode without limit.
type cappedClient struct {
	client *http.Client
}

// Do implements the SDK's httpClient interface.
func (c cappedClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	if err := connectors.CapResponse(resp, MaxResponseBytes); err != nil {
		return nil, err
	}
	return resp, nil
}
