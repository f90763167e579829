package gmail

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"golang.org/x/oauth2"
	"google.golang.org/api/googleapi"

	"github.com/levqor/levqor/connectors"
)

// Step error codes this connector reports besides those of package connectors. The
// message of each names Google's own reason or OAuth2 error code, e.g. "gmail: notFound".
const (
	CodeRateLimited = connectors.CodeRateLimited // Gmail asked to slow down; retryable after RetryAfter if it said when
	CodeAuthFailed  = connectors.CodeAuthFailed  // the connection's client or refresh token was refused, or the access token was
	CodeForbidden   = connectors.CodeForbidden   // the grant lacks a scope, or a quota is used up
	CodeNotFound    = connectors.CodeNotFound    // no such message, label or mailbox
	CodeBadRequest  = connectors.CodeBadRequest  // Gmail refused the request as it was made
)

// maxDetailChars bounds the part of Google's error message a step error quotes.
const maxDetailChars = 300

// apiError maps a failed Gmail call. Messages carry the status, Google's reason and, for
// a bad request, its explanation; never the raw body.
func (c *Connector) apiError(stepCtx, callCtx context.Context, err error) error {
	if stepCtx.Err() != nil {
		return stepCtx.Err() // the registry turns it into timeout or canceled
	}
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		return c.transportError(callCtx, "Gmail", err)
	}
	reason := ""
	for _, item := range ge.Errors {
		if reason = identifier(item.Reason); reason != "" {
			break
		}
	}
	msg := "Gmail responded " + connectors.StatusText(ge.Code)
	if reason != "" {
		msg = "gmail: " + reason
	}
	se := &connectors.StepError{Code: connectors.CodeUpstreamError, Message: msg, Err: err}
	switch {
	case ge.Code == http.StatusTooManyRequests || ge.Code == http.StatusForbidden && rateLimited(ge, reason):
		se.Code, se.Retryable = CodeRateLimited, true
		se.RetryAfter = connectors.RetryAfter(ge.Header.Get("Retry-After"), time.Now())
	case ge.Code == http.StatusUnauthorized:
		se.Code = CodeAuthFailed
	case ge.Code == http.StatusForbidden:
		se.Code = CodeForbidden
	case ge.Code == http.StatusNotFound:
		se.Code = CodeNotFound
	case ge.Code == http.StatusBadRequest:
		se.Code = CodeBadRequest
		if d := detail(ge.Message); d != "" {
			se.Message += " (" + d + ")"
		}
	case ge.Code >= 500:
		se.Retryable = true
	}
	return se
}

// rateLimited reports whether a 403 is Google's way of saying "slow down", in the
// classic errors[].reason or in an ErrorInfo detail.
func rateLimited(ge *googleapi.Error, reason string) bool {
	if reason == "rateLimitExceeded" || reason == "userRateLimitExceeded" {
		return true
	}
	for _, d := range ge.Details {
		if m, ok := d.(map[string]any); ok && m["reason"] == "RATE_LIMIT_EXCEEDED" {
			return true
		}
	}
	return false
}

// tokenError maps a failed refresh. RetrieveError's text quotes the endpoint's body, so
// only its status and OAuth2 error code are used.
func (c *Connector) tokenError(stepCtx, reqCtx context.Context, err error) error {
	if stepCtx.Err() != nil {
		return stepCtx.Err()
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return c.transportError(reqCtx, "Google's token endpoint", err)
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	what := connectors.StatusText(status)
	if code := identifier(re.ErrorCode); code != "" {
		what = code
	}
	switch {
	case status == http.StatusTooManyRequests:
		se := &connectors.StepError{Code: CodeRateLimited, Retryable: true, Err: err,
			Message: "Google's token endpoint asked to slow down (" + what + ")"}
		se.RetryAfter = connectors.RetryAfter(re.Response.Header.Get("Retry-After"), time.Now())
		return se
	case status >= 500:
		return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
			Message: "Google's token endpoint failed (" + what + ")"}
	}
	// invalid_grant (the refresh token is revoked or expired), invalid_client,
	// unauthorized_client: a retry cannot help until the connection is replaced.
	return &connectors.StepError{Code: CodeAuthFailed, Err: err,
		Message: "Google refused the Gmail connection's credentials (" + what + "); reconnect the account"}
}

// transportError maps a request that got no usable response, without the error's text,
// which names the URL.
func (c *Connector) transportError(reqCtx context.Context, who string, err error) error {
	if se := connectors.Refused(err); se != nil {
		return se
	}
	var ne net.Error
	var ue *url.Error
	switch {
	case errors.Is(err, connectors.ErrResponseTooLarge):
		return connectors.Errorf(connectors.CodeResponseTooLarge, "%s's response is larger than %d bytes", who, MaxResponseBytes)
	case reqCtx.Err() != nil || errors.As(err, &ne) && ne.Timeout():
		return &connectors.StepError{Code: connectors.CodeTimeout, Retryable: true, Err: err,
			Message: fmt.Sprintf("%s did not answer within %s", who, c.timeout)}
	case errors.As(err, &ue):
		return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
			Message: "the request to " + who + " failed before a response arrived"}
	}
	return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
		Message: who + "'s response could not be read"}
}

// identifier returns s if it looks like an error code or reason, else "".
func identifier(s string) string {
	if len(s) > 64 {
		return ""
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.') {
			return ""
		}
	}
	return s
}

// detail returns Google's explanation made safe to store: one line, bounded.
func detail(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > maxDetailChars {
		s = string(r[:maxDetailChars]) + "…"
	}
	return s
}

// capped returns a client with base's transport and policies whose response bodies
// fail with connectors.ErrResponseTooLarge past MaxResponseBytes: neither the SDK nor the oauth2 package
// bounds what it reads.
func capped(base *http.Client) *http.Client {
	if base == nil {
		base = &http.Client{}
	}
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &http.Client{Transport: cappedTransport{rt}, CheckRedirect: base.CheckRedirect, Jar: base.Jar, Timeout: base.Timeout}
}

type cappedTransport struct{ base http.RoundTripper }

func (t cappedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if err := connectors.CapResponse(resp, MaxResponseBytes); err != nil {
		return nil, err
	}
	return resp, nil
}
