package telegram

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/levqor/levqor/connectors"
)

// FuzzDecodeResponse feeds decodeResponse arbitrary statuses, Retry-After headers and
// bodies: it must never panic, must succeed only on a 200 with "ok": true, and must fail
// with a *connectors.StepError of a known code whose message is short, valid UTF-8 and
// free of the token.
func FuzzDecodeResponse(f *testing.F) {
	const token = "7123456789:AAHSECRETbotTOKENsecretxxxxxxxxxxxx"
	seeds := []struct {
		status int
		after  string
		body   string
	}{
		{200, "", `{"ok":true,"result":{"message_id":4,"from":{"id":7123456789,"is_bot":true,"first_name":"Levqor Alerts","username":"levqor_alerts_bot"},"chat":{"id":123456789,"first_name":"Ada","type":"private"},"date":1732590000,"text":"hi"}}`},
		{200, "", `{"ok":true,"result":[{"update_id":871234001,"message":{"message_id":12,"chat":{"id":1,"type":"private"},"date":1,"text":"/start"}}]}`},
		{400, "", `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`},
		{401, "", `{"ok":false,"error_code":401,"description":"Unauthorized"}`},
		{403, "", `{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`},
		{404, "", `{"ok":false,"error_code":404,"description":"Not Found"}`},
		{409, "", `{"ok":false,"error_code":409,"description":"Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}`},
		{429, "", `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 35","parameters":{"retry_after":35}}`},
		{429, "12", `<html>slow down</html>`},
		{502, "", `<html>502 Bad Gateway</html>`},
		{200, "", `{"ok":false}`},
		{200, "", `{"ok":true,"result":null}`},
		{200, "", `{"ok":true,"result":{"message_id":`},
		{400, "", `{"ok":false,"error_code":400,"description":"token ` + token + ` \u0000\u202e"}`},
		{400, "", `{"ok":false,"error_code":-7,"parameters":{"retry_after":-1e308}}`},
	}
	for _, s := range seeds {
		f.Add(s.status, s.after, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, after string, body []byte) {
		h := http.Header{}
		h.Set("Retry-After", after)
		var result struct {
			MessageID int64 `json:"message_id"`
		}
		err := decodeResponse(status, h, body, token, &result)
		if err == nil {
			if status != http.StatusOK || !strings.Contains(string(body), "ok") {
				t.Fatalf("status %d body %q decoded without error", status, body)
			}
			return
		}
		var se *connectors.StepError
		if !errors.As(err, &se) {
			t.Fatalf("error %v (%T) is not a StepError", err, err)
		}
		switch se.Code {
		case CodeRateLimited, CodeAuthFailed, CodeForbidden, CodeNotFound, CodeBadRequest, connectors.CodeUpstreamError:
		default:
			t.Fatalf("unexpected code %q", se.Code)
		}
		if strings.Contains(se.Error(), token) || !utf8.ValidString(se.Message) || len(se.Message) > 1024 {
			t.Fatalf("unsafe message %q", se.Message)
		}
		if se.RetryAfter < 0 || se.RetryAfter > MaxRetryAfter || se.RetryAfter > 0 && se.Code != CodeRateLimited {
			t.Fatalf("RetryAfter %v on %s", se.RetryAfter, se.Code)
		}
	})
}
