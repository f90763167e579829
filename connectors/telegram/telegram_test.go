package telegram_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/connectortest"
	"github.com/levqor/levqor/connectors/telegram"
	"github.com/levqor/levqor/outbound"
)

const (
	owner    = "own_acme"
	botToken = "7123456789:AAHSECRETbotTOKENsecretxxxxxxxxxxxx"
	opsToken = "7000000001:AAFSECRETopsTOKENsecretyyyyyyyyyyyy"
)

var secrets = []string{botToken, opsToken, "SECRET"}

type bundle struct {
	fake  *fakeTelegram
	creds *connectortest.Credentials
	reg   *connectors.Registry
}

// setup starts a fake Bot API knowing botToken (the owner's default connection) and
// opsToken (the owner's connection "ops").
func setup(t testing.TB, configure ...func(*telegram.Config)) *bundle {
	t.Helper()
	b := &bundle{fake: newFakeTelegram(t), creds: connectortest.NewCredentials()}
	b.fake.addBot(botToken, 7123456789, "levqor_alerts_bot", "Levqor Alerts")
	b.fake.addBot(opsToken, 7000000001, "levqor_ops_bot", "Levqor Ops")
	b.set("default", botToken)
	b.set("ops", opsToken)
	cfg := telegram.Config{BaseURL: b.fake.srv.URL, HTTPClient: &http.Client{Timeout: 10 * time.Second}, Credentials: b.creds}
	for _, c := range configure {
		c(&cfg)
	}
	conn, err := telegram.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	b.reg, err = connectors.NewRegistry(conn)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	return b
}

// set stores token as the owner's connection name of the connector.
func (b *bundle) set(name, token string) {
	b.creds.Set(owner, telegram.Name, name, map[string]string{"token": token})
}

func (b *bundle) run(t testing.TB, ctx context.Context, action string, input any) (json.RawMessage, error) {
	t.Helper()
	raw, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	out, err := b.reg.Run(ctx, telegram.Name, action, raw)
	connectortest.AssertNoSecrets(t, secrets, out, err)
	if err == nil {
		connectortest.CheckOutput(t, b.reg, telegram.Name, action, raw, out)
	}
	return out, err
}

// onlyCall returns the one call the fake received, checked for the Bot API's framing.
func (b *bundle) onlyCall(t *testing.T, method, token string) map[string]any {
	t.Helper()
	calls := b.fake.calls()
	if len(calls) != 1 {
		t.Fatalf("the fake received %d calls, want 1", len(calls))
	}
	c := calls[0]
	if c.HTTPMethod != http.MethodPost || c.ContentType != "application/json" || c.Method != method || c.Token != token {
		t.Fatalf("call = %s %s (%s) with token %.14q…; want POST %s (application/json) with %.14q…",
			c.HTTPMethod, c.Method, c.ContentType, c.Token, method, token)
	}
	return c.Params
}

func TestSendMessage(t *testing.T) {
	tests := []struct {
		name       string
		input      map[string]any
		wantOut    telegram.SendMessageOutput
		wantToken  string
		wantParams map[string]any
	}{
		{
			name:       "numeric chat ID",
			input:      map[string]any{"chat_id": 123456789, "text": "Deploy finished"},
			wantOut:    telegram.SendMessageOutput{MessageID: 101, ChatID: 123456789, Date: 1732590000},
			wantToken:  botToken,
			wantParams: map[string]any{"chat_id": json.Number("123456789"), "text": "Deploy finished"},
		},
		{
			name:       "channel username, HTML",
			input:      map[string]any{"chat_id": "@ops_alerts", "text": "<b>api</b> v1.4.2 is live", "parse_mode": "HTML"},
			wantOut:    telegram.SendMessageOutput{MessageID: 101, ChatID: -1001234567890, Date: 1732590000},
			wantToken:  botToken,
			wantParams: map[string]any{"chat_id": "@ops_alerts", "text": "<b>api</b> v1.4.2 is live", "parse_mode": "HTML"},
		},
		{
			name:       "chat ID as a string",
			input:      map[string]any{"chat_id": "-1001234567890", "text": "x", "parse_mode": "MarkdownV2"},
			wantOut:    telegram.SendMessageOutput{MessageID: 101, ChatID: -1001234567890, Date: 1732590000},
			wantToken:  botToken,
			wantParams: map[string]any{"chat_id": "-1001234567890", "text": "x", "parse_mode": "MarkdownV2"},
		},
		{
			name:       "chat ID written with an exponent is sent as an integer",
			input:      map[string]any{"chat_id": json.RawMessage(`1.23456789e8`), "text": "x"},
			wantOut:    telegram.SendMessageOutput{MessageID: 101, ChatID: 123456789, Date: 1732590000},
			wantToken:  botToken,
			wantParams: map[string]any{"chat_id": json.Number("123456789"), "text": "x"},
		},
		{
			name:       "named connection",
			input:      map[string]any{"chat_id": 123456789, "text": "from ops", "connection": "ops"},
			wantOut:    telegram.SendMessageOutput{MessageID: 101, ChatID: 123456789, Date: 1732590000},
			wantToken:  opsToken,
			wantParams: map[string]any{"chat_id": json.Number("123456789"), "text": "from ops"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			out, err := b.run(t, connectortest.StepContext(owner), "send_message", tt.input)
			if got := connectortest.DecodeStrict[telegram.SendMessageOutput](t, out, err); got != tt.wantOut {
				t.Errorf("output = %+v, want %+v", got, tt.wantOut)
			}
			if got := b.onlyCall(t, "sendMessage", tt.wantToken); !reflect.DeepEqual(got, tt.wantParams) {
				t.Errorf("params = %#v\nwant     %#v", got, tt.wantParams)
			}
		})
	}
}

func TestGetMe(t *testing.T) {
	yes := true
	for _, tt := range []struct {
		input map[string]any
		token string
		want  telegram.GetMeOutput
	}{
		{map[string]any{}, botToken, telegram.GetMeOutput{ID: 7123456789, Username: "levqor_alerts_bot", FirstName: "Levqor Alerts", CanJoinGroups: &yes}},
		{map[string]any{"connection": "ops"}, opsToken, telegram.GetMeOutput{ID: 7000000001, Username: "levqor_ops_bot", FirstName: "Levqor Ops", CanJoinGroups: &yes}},
	} {
		b := setup(t)
		out, err := b.run(t, connectortest.StepContext(owner), "get_me", tt.input)
		if got := connectortest.DecodeStrict[telegram.GetMeOutput](t, out, err); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("output = %s, want %+v", out, tt.want)
		}
		if got := b.onlyCall(t, "getMe", tt.token); len(got) != 0 {
			t.Errorf("params = %v, want {}", got)
		}
	}
}

func TestGetUpdates(t *testing.T) {
	ada := &telegram.UpdateMessage{MessageID: 12, ChatID: 123456789, FromUsername: "ada", Text: "/start", Date: 1732589000}
	photo := &telegram.UpdateMessage{MessageID: 77, ChatID: -1009876543210, Date: 1732589100}
	tests := []struct {
		name       string
		input      map[string]any
		want       telegram.GetUpdatesOutput
		wantParams map[string]any
	}{
		{
			name:       "defaults",
			input:      map[string]any{},
			want:       telegram.GetUpdatesOutput{Updates: []telegram.Update{{UpdateID: 871234001, Message: ada}, {UpdateID: 871234002}, {UpdateID: 871234003, Message: photo}}},
			wantParams: map[string]any{"limit": json.Number("100"), "timeout": json.Number("0")},
		},
		{
			name:       "offset and limit",
			input:      map[string]any{"offset": 871234002, "limit": 1},
			want:       telegram.GetUpdatesOutput{Updates: []telegram.Update{{UpdateID: 871234002}}},
			wantParams: map[string]any{"limit": json.Number("1"), "timeout": json.Number("0"), "offset": json.Number("871234002")},
		},
		{
			name:       "nothing new",
			input:      map[string]any{"offset": 871234004, "limit": 100.0, "timeout": 0},
			want:       telegram.GetUpdatesOutput{Updates: []telegram.Update{}},
			wantParams: map[string]any{"limit": json.Number("100"), "timeout": json.Number("0"), "offset": json.Number("871234004")},
		},
		{
			name:       "negative offset, long poll",
			input:      map[string]any{"offset": -1, "timeout": 1},
			want:       telegram.GetUpdatesOutput{Updates: []telegram.Update{{UpdateID: 871234001, Message: ada}, {UpdateID: 871234002}, {UpdateID: 871234003, Message: photo}}},
			wantParams: map[string]any{"limit": json.Number("100"), "timeout": json.Number("1"), "offset": json.Number("-1")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			out, err := b.run(t, connectortest.StepContext(owner), "get_updates", tt.input)
			if got := connectortest.DecodeStrict[telegram.GetUpdatesOutput](t, out, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("output = %s\nwant %+v", out, tt.want)
			}
			if got := b.onlyCall(t, "getUpdates", botToken); !reflect.DeepEqual(got, tt.wantParams) {
				t.Errorf("params = %v, want %v", got, tt.wantParams)
			}
		})
	}
}

func assertStepError(t *testing.T, err error, code string, retryable bool, retryAfter time.Duration, msg string) *connectors.StepError {
	t.Helper()
	var se *connectors.StepError
	if !errors.As(err, &se) {
		t.Fatalf("Run error = %v (%T), want a StepError %s", err, err, code)
	}
	if se.Code != code || se.Retryable != retryable || se.RetryAfter != retryAfter {
		t.Fatalf("Run error = %q retryable=%v retryAfter=%v; want %s retryable=%v retryAfter=%v",
			se, se.Retryable, se.RetryAfter, code, retryable, retryAfter)
	}
	if !strings.Contains(se.Message, msg) {
		t.Fatalf("message %q does not contain %q", se.Message, msg)
	}
	return se
}

func scripted(method string, status int, header map[string]string, body string) func(b *bundle) {
	return func(b *bundle) {
		b.fake.on(method, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			for k, v := range header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		})
	}
}

func TestErrors(t *testing.T) {
	send := map[string]any{"chat_id": 123456789, "text": "hi"}
	huge := strings.Repeat("x", telegram.MaxResponseBytes)
	tests := []struct {
		name          string
		prep          func(b *bundle)
		ctx           func() context.Context
		action        string
		input         map[string]any
		wantCode      string
		wantRetryable bool
		wantAfter     time.Duration
		wantMsg       string
		wantNoCall    bool
	}{
		{name: "unknown token", prep: func(b *bundle) { b.set("default", "7123456789:AAHSECRETwrongTOKENsecretzzzzzzzzzz") },
			input: send, wantCode: telegram.CodeAuthFailed, wantMsg: "telegram: 401 Unauthorized"},
		{name: "token the Bot API cannot parse", prep: func(b *bundle) { b.set("default", "7123456789:SECRETshort") },
			input: send, wantCode: telegram.CodeAuthFailed, wantMsg: "telegram: 404 Not Found"},
		{name: "not a bot token", prep: func(b *bundle) { b.set("default", "xoxb-1111-SECRET") },
			input: send, wantCode: telegram.CodeAuthFailed, wantMsg: "not a bot token", wantNoCall: true},
		{name: "token that would change the URL", prep: func(b *bundle) { b.set("default", "7123456789:SECRET/../../getMe?x=") },
			input: send, wantCode: telegram.CodeAuthFailed, wantMsg: "not a bot token", wantNoCall: true},
		{name: "chat not found", input: map[string]any{"chat_id": 42, "text": "hi"},
			wantCode: telegram.CodeNotFound, wantMsg: "telegram: 400 Bad Request: chat not found"},
		{name: "unknown channel username", input: map[string]any{"chat_id": "@nobody_here", "text": "hi"},
			wantCode: telegram.CodeNotFound, wantMsg: "telegram: 400 Bad Request: chat not found"},
		{name: "blocked by the user", input: map[string]any{"chat_id": 555000111, "text": "hi"},
			wantCode: telegram.CodeForbidden, wantMsg: "telegram: 403 Forbidden: bot was blocked by the user"},
		{name: "HTML that does not parse", input: map[string]any{"chat_id": 123456789, "text": "<b>oops", "parse_mode": "HTML"},
			wantCode: telegram.CodeBadRequest, wantMsg: `telegram: 400 Bad Request: can't parse entities: Can't find end tag corresponding to start tag "b"`},
		{name: "webhook conflict", action: "get_updates", input: map[string]any{},
			prep:     scripted("getUpdates", http.StatusConflict, nil, `{"ok":false,"error_code":409,"description":"Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"}`),
			wantCode: telegram.CodeBadRequest, wantMsg: "telegram: 409 Conflict: can't use getUpdates method while webhook is active"},
		{name: "rate limited", prep: scripted("sendMessage", http.StatusTooManyRequests, nil, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 35","parameters":{"retry_after":35}}`),
			input: send, wantCode: telegram.CodeRateLimited, wantRetryable: true, wantAfter: 35 * time.Second, wantMsg: "telegram: 429 Too Many Requests: retry after 35"},
		{name: "rate limit hint capped", prep: scripted("sendMessage", http.StatusTooManyRequests, nil, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 999999","parameters":{"retry_after":999999}}`),
			input: send, wantCode: telegram.CodeRateLimited, wantRetryable: true, wantAfter: telegram.MaxRetryAfter, wantMsg: "telegram: 429"},
		{name: "rate limited by a proxy", prep: scripted("sendMessage", http.StatusTooManyRequests, map[string]string{"Content-Type": "text/html", "Retry-After": "12"}, `<html>slow down</html>`),
			input: send, wantCode: telegram.CodeRateLimited, wantRetryable: true, wantAfter: 12 * time.Second, wantMsg: "telegram responded 429 Too Many Requests"},
		{name: "502 from a proxy", prep: scripted("sendMessage", http.StatusBadGateway, map[string]string{"Content-Type": "text/html"}, `<html><body><h1>502 Bad Gateway</h1></body></html>`),
			input: send, wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "telegram responded 502 Bad Gateway"},
		{name: "500 from the Bot API", prep: scripted("sendMessage", http.StatusInternalServerError, nil, `{"ok":false,"error_code":500,"description":"Internal Server Error"}`),
			input: send, wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "telegram: 500 Internal Server Error"},
		{name: "a description quoting the token", prep: scripted("sendMessage", http.StatusBadRequest, nil, `{"ok":false,"error_code":400,"description":"Bad Request: bot `+botToken+` is\u0000 odd"}`),
			input: send, wantCode: telegram.CodeBadRequest, wantMsg: "telegram: 400 Bad Request: bot [token] is  odd"},
		{name: "malformed JSON", prep: scripted("sendMessage", http.StatusOK, nil, `{"ok":true,"result":{"message_id":`),
			input: send, wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "not valid JSON of the documented shape"},
		{name: "null result", prep: scripted("sendMessage", http.StatusOK, nil, `{"ok":true,"result":null}`),
			input: send, wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "not valid JSON of the documented shape"},
		{name: "result of the wrong type", prep: scripted("sendMessage", http.StatusOK, nil, `{"ok":true,"result":"sent"}`),
			input: send, wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "not valid JSON of the documented shape"},
		{name: "message without an ID", prep: scripted("sendMessage", http.StatusOK, nil, `{"ok":true,"result":{"chat":{"id":1},"date":1}}`),
			input: send, wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "not valid JSON of the documented shape"},
		{name: "chat ID that is not an integer", prep: scripted("sendMessage", http.StatusOK, nil, `{"ok":true,"result":{"message_id":1,"chat":{"id":1.5},"date":1}}`),
			input: send, wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "not valid JSON of the documented shape"},
		{name: "update without an ID", action: "get_updates", input: map[string]any{}, prep: scripted("getUpdates", http.StatusOK, nil, `{"ok":true,"result":[{"message":{}}]}`),
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "not valid JSON of the documented shape"},
		{name: "getMe of a user, not a bot", action: "get_me", input: map[string]any{}, prep: scripted("getMe", http.StatusOK, nil, `{"ok":true,"result":{"id":5,"is_bot":false,"first_name":"Eve"}}`),
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "not valid JSON of the documented shape"},
		{name: "ok false without an error code", prep: scripted("sendMessage", http.StatusOK, nil, `{"ok":false}`),
			input: send, wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "not valid JSON of the documented shape"},
		{name: "oversized response with Content-Length", input: send,
			prep: func(b *bundle) {
				b.fake.on("sendMessage", func(w http.ResponseWriter, r *http.Request) {
					body := `{"ok":true,"result":{"message_id":1,"chat":{"id":1},"date":1,"text":"` + huge + `"}}`
					w.Header().Set("Content-Length", fmt.Sprint(len(body)))
					_, _ = w.Write([]byte(body))
				})
			},
			wantCode: connectors.CodeResponseTooLarge, wantMsg: "larger than 4194304 bytes"},
		{name: "oversized chunked response", action: "get_updates", input: map[string]any{},
			prep: func(b *bundle) {
				b.fake.on("getUpdates", func(w http.ResponseWriter, r *http.Request) {
					_, _ = w.Write([]byte(`{"ok":true,"result":[{"update_id":1,"message":{"text":"` + huge + `"}}]}`))
				})
			},
			wantCode: connectors.CodeResponseTooLarge, wantMsg: "larger than 4194304 bytes"},
		{name: "no connection", prep: func(b *bundle) { b.creds.Delete(owner, telegram.Name, "default") }, input: send,
			wantCode: connectors.CodeNoCredentials, wantMsg: "no Telegram connection with a token", wantNoCall: true},
		{name: "connection without a token", prep: func(b *bundle) { b.set("default", "") }, input: send,
			wantCode: connectors.CodeNoCredentials, wantMsg: "no Telegram connection with a token", wantNoCall: true},
		{name: "unknown named connection", input: map[string]any{"chat_id": 1, "text": "x", "connection": "sales"},
			wantCode: connectors.CodeNoCredentials, wantMsg: `no Telegram connection named "sales"`, wantNoCall: true},
		{name: "another owner's connection is not used",
			ctx: func() context.Context {
				return connectors.WithStep(context.Background(), connectors.Step{JobID: "job_2", StepID: "s", OwnerID: "own_other", Attempt: 1})
			},
			input: send, wantCode: connectors.CodeNoCredentials, wantMsg: "no Telegram connection", wantNoCall: true},
		{name: "no step in the context", ctx: context.Background, input: send,
			wantCode: connectors.CodeNoCredentials, wantMsg: "the step has no owner", wantNoCall: true},
		{name: "credentials store down", prep: func(b *bundle) { b.creds.Fail(errors.New("database is locked")) }, input: send,
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "credentials could not be read", wantNoCall: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			if tt.prep != nil {
				tt.prep(b)
			}
			ctx := connectortest.StepContext(owner)
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			action := tt.action
			if action == "" {
				action = "send_message"
			}
			out, err := b.run(t, ctx, action, tt.input)
			if out != nil {
				t.Fatalf("Run = %s, want no output", out)
			}
			assertStepError(t, err, tt.wantCode, tt.wantRetryable, tt.wantAfter, tt.wantMsg)
			if n := len(b.fake.calls()); tt.wantNoCall && n != 0 {
				t.Errorf("the fake received %d calls, want none", n)
			}
		})
	}
}

// TestTransportErrors covers failures before a response, whose net/http errors quote the
// URL and so the token.
func TestTransportErrors(t *testing.T) {
	send := map[string]any{"chat_id": 123456789, "text": "hi"}

	t.Run("connection refused", func(t *testing.T) {
		closed := httptest.NewServer(http.NotFoundHandler())
		closed.Close()
		// The premise: net/http's own error names the token.
		_, rawErr := http.Post(closed.URL+"/bot"+botToken+"/sendMessage", "application/json", nil)
		if rawErr == nil || !strings.Contains(rawErr.Error(), botToken) {
			t.Fatalf("net/http error %v does not quote the URL; the test proves nothing", rawErr)
		}
		b := setup(t, func(c *telegram.Config) { c.BaseURL = closed.URL })
		_, err := b.run(t, connectortest.StepContext(owner), "send_message", send)
		se := assertStepError(t, err, connectors.CodeUpstreamError, true, 0, "the request to telegram failed before a response arrived")
		if se.Err == nil || !strings.Contains(se.Err.Error(), "/bot[token]/sendMessage") {
			t.Errorf("cause = %v, want the scrubbed URL kept for operators", se.Err)
		}
	})
	t.Run("HTTP client timeout", func(t *testing.T) {
		b := setup(t, func(c *telegram.Config) { c.HTTPClient = &http.Client{Timeout: 100 * time.Millisecond} })
		b.fake.on("sendMessage", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
		_, err := b.run(t, connectortest.StepContext(owner), "send_message", send)
		assertStepError(t, err, connectors.CodeTimeout, true, 0, "telegram did not answer in time")
	})
	t.Run("step deadline", func(t *testing.T) {
		b := setup(t)
		b.fake.on("sendMessage", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
		ctx, cancel := context.WithTimeout(connectortest.StepContext(owner), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := b.run(t, ctx, "send_message", send)
		assertStepError(t, err, connectors.CodeTimeout, true, 0, "timed out")
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("Run took %v despite a 100ms step deadline", d)
		}
	})
	t.Run("long poll cut by the step deadline", func(t *testing.T) {
		b := setup(t)
		ctx, cancel := context.WithTimeout(connectortest.StepContext(owner), 200*time.Millisecond)
		defer cancel()
		_, err := b.run(t, ctx, "get_updates", map[string]any{"offset": 871234004, "timeout": 50})
		assertStepError(t, err, connectors.CodeTimeout, true, 0, "timed out")
	})
	t.Run("refused by the outbound guard", func(t *testing.T) {
		guard, err := outbound.NewGuard(nil)
		if err != nil {
			t.Fatal(err)
		}
		b := setup(t, func(c *telegram.Config) { c.HTTPClient = guard.Client(time.Minute) })
		_, err = b.run(t, connectortest.StepContext(owner), "send_message", send)
		assertStepError(t, err, connectors.CodeRefused, false, 0, "refused: 127.0.0.1 is a loopback address")
		if !errors.Is(err, outbound.ErrRefused) {
			t.Errorf("errors.Is(%v, outbound.ErrRefused) = false", err)
		}
		if n := len(b.fake.calls()); n != 0 {
			t.Errorf("a refused call reached the fake %d times", n)
		}
	})
	t.Run("allowed by the outbound guard", func(t *testing.T) {
		b := setup(t)
		guard, err := outbound.NewGuard([]string{strings.TrimPrefix(b.fake.srv.URL, "http://")})
		if err != nil {
			t.Fatal(err)
		}
		b = setup(t, func(c *telegram.Config) { c.BaseURL, c.HTTPClient = b.fake.srv.URL, guard.Client(time.Minute) })
		out, err := b.run(t, connectortest.StepContext(owner), "get_me", map[string]any{})
		if err != nil || !strings.Contains(string(out), `"id":7123456789`) {
			t.Fatalf("get_me through the guard = %s, %v", out, err)
		}
	})
}

func TestSchemaRejects(t *testing.T) {
	tests := []struct {
		name, action string
		input        map[string]any
		wantMsg      string
	}{
		{"missing chat_id", "send_message", map[string]any{"text": "hi"}, "missing property 'chat_id'"},
		{"missing text", "send_message", map[string]any{"chat_id": 1}, "missing property 'text'"},
		{"empty text", "send_message", map[string]any{"chat_id": 1, "text": ""}, "at /text: minLength"},
		{"text over 4096", "send_message", map[string]any{"chat_id": 1, "text": strings.Repeat("ж", telegram.MaxTextChars+1)}, "at /text: maxLength: got 4097, want 4096"},
		{"fractional chat_id", "send_message", map[string]any{"chat_id": 1.5, "text": "hi"}, "at /chat_id: 'oneOf' failed"},
		{"chat_id too big", "send_message", map[string]any{"chat_id": json.RawMessage(`9007199254740993`), "text": "hi"}, "at /chat_id: 'oneOf' failed"},
		{"username too short", "send_message", map[string]any{"chat_id": "@abc", "text": "hi"}, "at /chat_id: 'oneOf' failed"},
		{"chat_id with a path", "send_message", map[string]any{"chat_id": "@ops/../x", "text": "hi"}, "at /chat_id: 'oneOf' failed"},
		{"chat_id of the wrong type", "send_message", map[string]any{"chat_id": true, "text": "hi"}, "at /chat_id: 'oneOf' failed"},
		{"parse_mode in the wrong case", "send_message", map[string]any{"chat_id": 1, "text": "hi", "parse_mode": "html"}, "at /parse_mode: enum"},
		{"extra property", "send_message", map[string]any{"chat_id": 1, "text": "hi", "reply_markup": map[string]any{}}, "additional properties 'reply_markup' not allowed"},
		{"token in the input", "send_message", map[string]any{"chat_id": 1, "text": "hi", "token": botToken}, "additional properties 'token' not allowed"},
		{"bad connection name", "send_message", map[string]any{"chat_id": 1, "text": "hi", "connection": "a/b"}, "at /connection: pattern"},
		{"get_me with an extra property", "get_me", map[string]any{"chat_id": 1}, "additional properties 'chat_id' not allowed"},
		{"limit over 100", "get_updates", map[string]any{"limit": 101}, "at /limit: maximum: got 101, want 100"},
		{"limit 0", "get_updates", map[string]any{"limit": 0}, "at /limit: minimum"},
		{"timeout over 50", "get_updates", map[string]any{"timeout": 51}, "at /timeout: maximum: got 51, want 50"},
		{"negative timeout", "get_updates", map[string]any{"timeout": -1}, "at /timeout: minimum"},
		{"fractional offset", "get_updates", map[string]any{"offset": 1.5}, "at /offset: type"},
		{"offset as a string", "get_updates", map[string]any{"offset": "5"}, "at /offset: type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			_, err := b.run(t, connectortest.StepContext(owner), tt.action, tt.input)
			assertStepError(t, err, connectors.CodeInvalidInput, false, 0, tt.wantMsg)
			if n := len(b.fake.calls()); n != 0 {
				t.Errorf("the fake received %d calls, want none", n)
			}
		})
	}
}

func TestConfigAndCatalogue(t *testing.T) {
	creds := connectortest.NewCredentials()
	for _, tt := range []struct {
		name string
		cfg  telegram.Config
		want string
	}{
		{"relative base URL", telegram.Config{BaseURL: "api.telegram.org", Credentials: creds}, "absolute http or https URL"},
		{"base URL with credentials", telegram.Config{BaseURL: "https://u:p@api.telegram.org", Credentials: creds}, "must not contain credentials"},
		{"base URL with a fragment", telegram.Config{BaseURL: "https://api.telegram.org/#x", Credentials: creds}, "a fragment"},
		{"no credentials", telegram.Config{}, "Credentials is required"},
	} {
		if _, err := telegram.New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}

	// A base URL with a trailing slash still reaches {base}/bot{token}/getMe.
	b := setup(t, func(c *telegram.Config) { c.BaseURL += "/" })
	if _, err := b.run(t, connectortest.StepContext(owner), "get_me", map[string]any{}); err != nil {
		t.Fatalf("base URL with a trailing slash: %v", err)
	}

	cat := b.reg.Catalogue()
	if len(cat) != 1 || cat[0].Connector != "telegram" || !slices.Equal(cat[0].CredentialFields, []string{"token"}) {
		t.Fatalf("catalogue = %+v", cat)
	}
	var names []string
	for _, a := range cat[0].Actions {
		names = append(names, a.Name)
		var schema struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(a.InputSchema, &schema); err != nil || schema.Properties["connection"] == nil {
			t.Errorf("%s: the input schema has no connection property", a.Name)
		}
	}
	if want := []string{"get_me", "get_updates", "send_message"}; !slices.Equal(names, want) {
		t.Fatalf("actions = %v, want %v", names, want)
	}
}
