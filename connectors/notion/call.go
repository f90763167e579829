package notion

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/levqor/levqor/connectors"
)

// Step error codes this connector reports besides those of package connectors. The
// message of each names Notion's own error code, e.g. "notion: object_not_found".
const (
	CodeRateLimited = connectors.CodeRateLimited // Notion asked to slow down; retryable after RetryAfter
	CodeAuthFailed  = connectors.CodeAuthFailed  // the token is invalid or revoked
	CodeForbidden   = connectors.CodeForbidden   // the integration lacks a capability
	CodeNotFound    = connectors.CodeNotFound    // no such page or database, or it is not shared with the integration
	CodeBadRequest  = connectors.CodeBadRequest  // Notion refused the request as it was made
)

// maxDetailChars bounds the part of Notion's error message a step error quotes.
const maxDetailChars = 300

// errorBody is Notion's error object.
type errorBody struct {
	Object  string `json:"object"`
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// call sends one request with the token of the step owner's connection and decodes a
// successful response into out.
func (c *Connector) call(ctx context.Context, connection, method, path string, body, out any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return &connectors.StepError{Code: connectors.CodeInvalidInput, Message: "the request could not be encoded", Err: err}
	}
	if len(payload) > MaxRequestBytes {
		return connectors.Errorf(connectors.CodeInvalidInput, "the request would be %d bytes; Notion accepts at most %d", len(payload), MaxRequestBytes)
	}
	token, err := c.token(ctx, connection)
	if err != nil {
		return err
	}
	reqCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, method, c.baseURL+path, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Notion-Version", APIVersion)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)

	resp, err := c.client.Do(req)
	if err != nil {
		return c.transportError(ctx, reqCtx, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength > MaxResponseBytes {
		return tooLarge()
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return c.transportError(ctx, reqCtx, err)
	}
	if len(data) > MaxResponseBytes {
		return tooLarge()
	}
	if resp.StatusCode >= 300 {
		return statusError(resp, data, token)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
			Message: "Notion's response could not be read"}
	}
	return nil
}

// transportError maps a failed round trip without the error's text, which names the URL.
func (c *Connector) transportError(stepCtx, reqCtx context.Context, err error) error {
	if se := connectors.Refused(err); se != nil {
		return se
	}
	var ne net.Error
	switch {
	case stepCtx.Err() != nil:
		return stepCtx.Err() // the registry turns it into timeout or canceled
	case reqCtx.Err() != nil || errors.As(err, &ne) && ne.Timeout():
		return &connectors.StepError{Code: connectors.CodeTimeout, Retryable: true, Err: err,
			Message: fmt.Sprintf("Notion did not answer within %s", c.timeout)}
	}
	return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
		Message: "the request to Notion failed before a complete response arrived"}
}

// statusError maps an error response. The message names the status and Notion's error
// code and, for requests Notion refused as made, its explanation, never the raw body.
func statusError(resp *http.Response, data []byte, token string) error {
	status := resp.StatusCode
	var eb errorBody
	if json.Unmarshal(data, &eb) != nil || eb.Object != "error" {
		eb = errorBody{}
	}
	msg := "Notion responded " + connectors.StatusText(status)
	if code := identifier(eb.Code); code != "" {
		msg = "notion: " + code
	}
	se := &connectors.StepError{Code: connectors.CodeUpstreamError, Message: msg}
	switch {
	case status == http.StatusTooManyRequests:
		se.Code, se.Retryable = CodeRateLimited, true
		se.RetryAfter = connectors.RetryAfter(resp.Header.Get("Retry-After"), time.Now())
	case status == http.StatusUnauthorized:
		se.Code = CodeAuthFailed
	case status == http.StatusForbidden:
		se.Code = CodeForbidden
	case status == http.StatusNotFound:
		se.Code = CodeNotFound
	case status == http.StatusBadRequest:
		se.Code = CodeBadRequest
	case status == http.StatusConflict || status >= 500:
		se.Retryable = true // conflict_error: a data collision that a retry may not meet
	}
	if status == http.StatusBadRequest || status == http.StatusNotFound {
		if d := detail(eb.Message, token); d != "" {
			se.Message += " (" + d + ")"
		}
	}
	return se
}

// identifier returns s if it looks like an error code, else "".
func identifier(s string) string {
	if len(s) > 64 {
		return ""
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return ""
		}
	}
	return s
}

// detail returns Notion's explanation made safe to store: one line, bounded, and dropped
// altogether if it quotes the token.
func detail(s, token string) string {
	if s == "" || strings.Contains(s, token) {
		return ""
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > maxDetailChars {
		s = string(r[:maxDetailChars]) + "…"
	}
	return s
}

func tooLarge() error {
	return connectors.Errorf(connectors.CodeResponseTooLarge, "Notion's response is larger than %d bytes", MaxResponseBytes)
}
