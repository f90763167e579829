package slack_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/connectortest"
	"github.com/levqor/levqor/connectors/slack"
	"github.com/levqor/levqor/outbound"
)

const (
	owner    = "own_acme"
	botToken = "xoxb-1111111111-2222222222-SECRETbotTOKENsecret01"
	opsToken = "xoxb-3333333333-4444444444-SECRETopsTOKENsecret02"
)

var secrets = []string{botToken, opsToken, "SECRET"}

// recorder is the caller's HTTP transport; it notes every URL it carries.
type recorder struct {
	mu   sync.Mutex
	urls []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.urls = append(r.urls, req.URL.String())
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.urls)
}

type bundle struct {
	fake  *fakeSlack
	creds *connectortest.Credentials
	rec   *recorder
	reg   *connectors.Registry
}

// setup starts a fake Slack workspace knowing botToken (team T0000000001, the owner's
// default connection) and opsToken (T0000000002, the owner's connection "ops").
func setup(t testing.TB, configure ...func(*slack.Config)) *bundle {
	t.Helper()
	b := &bundle{fake: newFakeSlack(t), creds: connectortest.NewCredentials(), rec: &recorder{}}
	b.fake.addToken(botToken, "T0000000001")
	b.fake.addToken(opsToken, "T0000000002")
	b.set("default", botToken)
	b.set("ops", opsToken)
	cfg := slack.Config{BaseURL: b.fake.baseURL(), HTTPClient: &http.Client{Transport: b.rec}, Credentials: b.creds}
	for _, c := range configure {
		c(&cfg)
	}
	conn, err := slack.New(cfg)
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
	b.creds.Set(owner, slack.Name, name, map[string]string{"token": token})
}

func (b *bundle) run(t testing.TB, ctx context.Context, action string, input any) (json.RawMessage, error) {
	t.Helper()
	raw, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	out, err := b.reg.Run(ctx, slack.Name, action, raw)
	connectortest.AssertNoSecrets(t, secrets, out, err)
	if err == nil {
		connectortest.CheckOutput(t, b.reg, slack.Name, action, raw, out)
	}
	return out, err
}

// lastAPI returns the last Web API call the fake received for method.
func (b *bundle) lastAPI(t *testing.T, method string) seenRequest {
	t.Helper()
	reqs := b.fake.requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Path == "/api/"+method {
			return reqs[i]
		}
	}
	t.Fatalf("the fake received no %s call", method)
	return seenRequest{}
}

// assertAuth checks the token arrived the way Slack accepts it: as a bearer header or a
// POST parameter, never in a URL.
func assertAuth(t *testing.T, got seenRequest, token string) {
	t.Helper()
	if got.Token != token || (got.TokenIn != "header" && got.TokenIn != "body") {
		t.Errorf("token arrived in %q as %.12q…, want %.12q… in the Authorization header or the POST body", got.TokenIn, got.Token, token)
	}
	if got.Method != http.MethodPost || !strings.HasPrefix(got.ContentType, "application/x-www-form-urlencoded") {
		t.Errorf("request %s with Content-Type %q, want a form-encoded POST", got.Method, got.ContentType)
	}
}

func TestPostMessage(t *testing.T) {
	blocks := `[{"type":"header","text":{"type":"plain_text","text":"Deploy finished","emoji":true}},` +
		`{"type":"section","text":{"type":"mrkdwn","text":"*api* v1.4.2 is live"},"fields":[{"type":"mrkdwn","text":"took 3m"}]},` +
		`{"type":"divider"}]`
	tests := []struct {
		name      string
		input     map[string]any
		wantOut   slack.PostMessageOutput
		wantToken string
		wantForm  url.Values
	}{
		{
			name:      "text to a channel ID",
			input:     map[string]any{"channel": "C0000000001", "text": "Hello from *Levqor* <https://levqor.ai|docs>"},
			wantOut:   slack.PostMessageOutput{Channel: "C0000000001", TS: "1732590000.000001"},
			wantToken: botToken,
			wantForm:  url.Values{"channel": {"C0000000001"}, "text": {"Hello from *Levqor* <https://levqor.ai|docs>"}},
		},
		{
			name:      "blocks in a thread, channel by name",
			input:     map[string]any{"channel": "#random", "text": "Deploy finished", "blocks": json.RawMessage(blocks), "thread_ts": "1732580000.000100"},
			wantOut:   slack.PostMessageOutput{Channel: "C0000000002", TS: "1732590000.000001"},
			wantToken: botToken,
			wantForm:  url.Values{"channel": {"#random"}, "text": {"Deploy finished"}, "blocks": {blocks}, "thread_ts": {"1732580000.000100"}},
		},
		{
			name:      "blocks without text",
			input:     map[string]any{"channel": "C0000000001", "blocks": json.RawMessage(`[{"type":"divider","block_id":"d1"}]`)},
			wantOut:   slack.PostMessageOutput{Channel: "C0000000001", TS: "1732590000.000001"},
			wantToken: botToken,
			wantForm:  url.Values{"channel": {"C0000000001"}, "blocks": {`[{"type":"divider","block_id":"d1"}]`}},
		},
		{
			name:      "named connection",
			input:     map[string]any{"channel": "G0000000005", "text": "ops only", "connection": "ops"},
			wantOut:   slack.PostMessageOutput{Channel: "G0000000005", TS: "1732590000.000001"},
			wantToken: opsToken,
			wantForm:  url.Values{"channel": {"G0000000005"}, "text": {"ops only"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			out, err := b.run(t, connectortest.StepContext(owner), "post_message", tt.input)
			if got := connectortest.DecodeStrict[slack.PostMessageOutput](t, out, err); got != tt.wantOut {
				t.Errorf("output = %+v, want %+v", got, tt.wantOut)
			}
			got := b.lastAPI(t, "chat.postMessage")
			assertAuth(t, got, tt.wantToken)
			if !reflect.DeepEqual(got.Form, tt.wantForm) {
				t.Errorf("form = %v\nwant   %v", got.Form, tt.wantForm)
			}
		})
	}
}

func TestListChannels(t *testing.T) {
	ch := func(id, name string, private, archived bool, members int) slack.Channel {
		return slack.Channel{ID: id, Name: name, IsPrivate: private, IsArchived: archived, NumMembers: members}
	}
	general := ch("C0000000001", "general", false, false, 42)
	random := ch("C0000000002", "random", false, false, 40)
	old := ch("C0000000003", "old-launch", false, true, 7)
	announce := ch("C0000000004", "announcements", false, false, 42)
	ops := ch("G0000000005", "ops-private", true, false, 3)
	cursor := func(id string) string { return base64.StdEncoding.EncodeToString([]byte("team:" + id)) }

	tests := []struct {
		name     string
		input    map[string]any
		wantOut  slack.ListChannelsOutput
		wantForm url.Values
	}{
		{
			name:     "defaults: public channels, 100 a page",
			input:    map[string]any{},
			wantOut:  slack.ListChannelsOutput{Channels: []slack.Channel{general, random, old, announce}},
			wantForm: url.Values{"limit": {"100"}, "types": {"public_channel"}},
		},
		{
			name:     "first page",
			input:    map[string]any{"limit": 2, "types": []string{"public_channel", "private_channel"}},
			wantOut:  slack.ListChannelsOutput{Channels: []slack.Channel{general, random}, NextCursor: cursor("C0000000003")},
			wantForm: url.Values{"limit": {"2"}, "types": {"public_channel,private_channel"}},
		},
		{
			name:     "middle page",
			input:    map[string]any{"limit": 2.0, "types": []string{"public_channel", "private_channel"}, "cursor": cursor("C0000000003")},
			wantOut:  slack.ListChannelsOutput{Channels: []slack.Channel{old, announce}, NextCursor: cursor("G0000000005")},
			wantForm: url.Values{"limit": {"2"}, "types": {"public_channel,private_channel"}, "cursor": {cursor("C0000000003")}},
		},
		{
			name:     "last page",
			input:    map[string]any{"limit": 1000, "types": []string{"private_channel"}, "cursor": cursor("G0000000005")},
			wantOut:  slack.ListChannelsOutput{Channels: []slack.Channel{ops}},
			wantForm: url.Values{"limit": {"1000"}, "types": {"private_channel"}, "cursor": {cursor("G0000000005")}},
		},
		{
			name:     "empty page",
			input:    map[string]any{"types": []string{"im"}},
			wantOut:  slack.ListChannelsOutput{Channels: []slack.Channel{}},
			wantForm: url.Values{"limit": {"100"}, "types": {"im"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			out, err := b.run(t, connectortest.StepContext(owner), "list_channels", tt.input)
			if got := connectortest.DecodeStrict[slack.ListChannelsOutput](t, out, err); !reflect.DeepEqual(got, tt.wantOut) {
				t.Errorf("output = %+v\nwant     %+v", got, tt.wantOut)
			}
			got := b.lastAPI(t, "conversations.list")
			assertAuth(t, got, botToken)
			if !reflect.DeepEqual(got.Form, tt.wantForm) {
				t.Errorf("form = %v, want %v", got.Form, tt.wantForm)
			}
		})
	}
}

func TestUploadFile(t *testing.T) {
	content := "id,amount\n1,9.50\n2,12.00\n"
	tests := []struct {
		name      string
		input     map[string]any
		wantOut   slack.UploadFileOutput
		wantToken string
		wantDone  url.Values // files.completeUploadExternal's form
	}{
		{
			name:      "with title and comment",
			input:     map[string]any{"channel": "C0000000001", "content": content, "filename": "report.csv", "title": "November report", "initial_comment": "Here it is"},
			wantOut:   slack.UploadFileOutput{FileID: "F0000000001", Title: "November report"},
			wantToken: botToken,
			wantDone:  url.Values{"files": {`[{"id":"F0000000001","title":"November report"}]`}, "channel_id": {"C0000000001"}, "initial_comment": {"Here it is"}},
		},
		{
			name:      "title defaults to the filename, named connection",
			input:     map[string]any{"channel": "G0000000005", "content": content, "filename": "report.csv", "connection": "ops"},
			wantOut:   slack.UploadFileOutput{FileID: "F0000000001", Title: "report.csv"},
			wantToken: opsToken,
			wantDone:  url.Values{"files": {`[{"id":"F0000000001","title":""}]`}, "channel_id": {"G0000000005"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			out, err := b.run(t, connectortest.StepContext(owner), "upload_file", tt.input)
			if got := connectortest.DecodeStrict[slack.UploadFileOutput](t, out, err); got != tt.wantOut {
				t.Errorf("output = %+v, want %+v", got, tt.wantOut)
			}
			reqs := b.fake.requests()
			if len(reqs) != 3 {
				t.Fatalf("the fake received %d requests, want 3: %+v", len(reqs), reqs)
			}
			get, put, done := reqs[0], reqs[1], reqs[2]
			if get.Path != "/api/files.getUploadURLExternal" || put.Path != "/upload/v1/F0000000001" || done.Path != "/api/files.completeUploadExternal" {
				t.Fatalf("calls = %s, %s, %s; want getUploadURLExternal, the upload, completeUploadExternal", get.Path, put.Path, done.Path)
			}
			assertAuth(t, get, tt.wantToken)
			if want := (url.Values{"filename": {"report.csv"}, "length": {fmt.Sprint(len(content))}}); !reflect.DeepEqual(get.Form, want) {
				t.Errorf("getUploadURLExternal form = %v, want %v", get.Form, want)
			}
			if put.Method != http.MethodPost || string(put.Upload) != content {
				t.Errorf("upload = %s %q, want POST %q", put.Method, put.Upload, content)
			}
			assertAuth(t, done, tt.wantToken)
			if !reflect.DeepEqual(done.Form, tt.wantDone) {
				t.Errorf("completeUploadExternal form = %v\nwant %v", done.Form, tt.wantDone)
			}
			// All three, the upload to Slack's upload_url included, went through the caller's client.
			if urls := b.rec.seen(); len(urls) != 3 || !strings.Contains(urls[1], "/upload/v1/F0000000001") {
				t.Errorf("the caller's client carried %v, want the three calls", urls)
			}
		})
	}
}

// TestUploadURLElsewhere checks that an upload_url that is neither Slack's nor the API's
// own host gets neither the file nor the token.
func TestUploadURLElsewhere(t *testing.T) {
	b := setup(t)
	var hits int
	var mu sync.Mutex
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	defer elsewhere.Close()
	b.fake.on("files.getUploadURLExternal", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "upload_url": elsewhere.URL + "/upload/v1/F1", "file_id": "F1"})
	})
	_, err := b.run(t, connectortest.StepContext(owner), "upload_file", map[string]any{"channel": "C0000000001", "content": "x", "filename": "x.txt"})
	assertStepError(t, err, connectors.CodeUpstreamError, true, 0, "slack.upload_file: slack's response could not be used")
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Fatalf("the foreign upload_url was called %d times", hits)
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

func TestErrors(t *testing.T) {
	post := map[string]any{"channel": "C0000000001", "text": "hi"}
	huge := strings.Repeat("x", slack.MaxResponseBytes)
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
		{name: "bad token", prep: func(b *bundle) { b.set("default", "xoxb-0000000000-0000000000-SECRETwrong") },
			input: post, wantCode: slack.CodeAuthFailed, wantMsg: "slack: invalid_auth"},
		{name: "revoked token", prep: func(b *bundle) { b.fake.revoke(botToken) },
			input: post, wantCode: slack.CodeAuthFailed, wantMsg: "slack: token_revoked"},
		{name: "channel not found", input: map[string]any{"channel": "C9999999999", "text": "hi"},
			wantCode: slack.CodeNotFound, wantMsg: "slack: channel_not_found"},
		{name: "private channel the bot cannot see", input: map[string]any{"channel": "#hr-private", "text": "hi"},
			wantCode: slack.CodeNotFound, wantMsg: "slack: channel_not_found"},
		{name: "not in channel", input: map[string]any{"channel": "C0000000004", "text": "hi"},
			wantCode: slack.CodeForbidden, wantMsg: "slack: not_in_channel"},
		{name: "archived channel", input: map[string]any{"channel": "#old-launch", "text": "hi"},
			wantCode: slack.CodeForbidden, wantMsg: "slack: is_archived"},
		{name: "upload to a channel that does not exist", action: "upload_file",
			input:    map[string]any{"channel": "C9999999999", "content": "x", "filename": "x.txt"},
			wantCode: slack.CodeNotFound, wantMsg: "slack: channel_not_found"},
		{name: "invalid blocks", input: map[string]any{"channel": "C0000000001", "blocks": []any{map[string]any{"type": "carousel_of_doom"}}},
			wantCode: slack.CodeBadRequest, wantMsg: "slack: invalid_blocks"},
		{name: "missing scope", action: "list_channels", input: map[string]any{"types": []string{"private_channel"}},
			prep: func(b *bundle) {
				b.fake.on("conversations.list", func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "missing_scope", "needed": "groups:read", "provided": "channels:read,chat:write"})
				})
			},
			wantCode: slack.CodeForbidden, wantMsg: "slack: missing_scope"},
		{name: "invalid cursor", action: "list_channels", input: map[string]any{"cursor": "bm9wZQ=="},
			wantCode: slack.CodeBadRequest, wantMsg: "slack: invalid_cursor"},
		{name: "an error code that is not one", prep: scripted(http.StatusOK, `{"ok":false,"error":"Bad <thing> xoxb-1111111111"}`),
			input: post, wantCode: slack.CodeBadRequest, wantMsg: "slack: unknown_error"},
		{name: "rate limited", prep: rateLimit("30"), input: post,
			wantCode: slack.CodeRateLimited, wantRetryable: true, wantAfter: 30 * time.Second, wantMsg: "slack: ratelimited"},
		{name: "rate limited while uploading", action: "upload_file", input: map[string]any{"channel": "C0000000001", "content": "x", "filename": "x.txt"},
			prep: func(b *bundle) {
				b.fake.on("files.completeUploadExternal", func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Retry-After", "3")
					writeJSON(w, http.StatusTooManyRequests, map[string]any{"ok": false, "error": "ratelimited"})
				})
			},
			wantCode: slack.CodeRateLimited, wantRetryable: true, wantAfter: 3 * time.Second, wantMsg: "slack: ratelimited"},
		{name: "rate limit hint capped", prep: rateLimit("86400"), input: post,
			wantCode: slack.CodeRateLimited, wantRetryable: true, wantAfter: slack.MaxRetryAfter, wantMsg: "slack: ratelimited"},
		{name: "429 without Retry-After", prep: scripted(http.StatusTooManyRequests, `{"ok":false,"error":"ratelimited"}`), input: post,
			wantCode: slack.CodeRateLimited, wantRetryable: true, wantMsg: "slack: ratelimited"},
		{name: "rate_limited in a 200", prep: scripted(http.StatusOK, `{"ok":false,"error":"rate_limited"}`), input: post,
			wantCode: slack.CodeRateLimited, wantRetryable: true, wantMsg: "slack: ratelimited"},
		{name: "503", prep: scripted(http.StatusServiceUnavailable, `<html><body>Service Unavailable</body></html>`), input: post,
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "slack responded 503 Service Unavailable"},
		{name: "internal_error", prep: scripted(http.StatusOK, `{"ok":false,"error":"internal_error"}`), input: post,
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "slack: internal_error"},
		{name: "404 from a wrong base URL", prep: scripted(http.StatusNotFound, `404 page not found`), input: post,
			wantCode: slack.CodeNotFound, wantMsg: "slack responded 404 Not Found"},
		{name: "upload_url refuses the bytes", action: "upload_file", input: map[string]any{"channel": "C0000000001", "content": "x", "filename": "x.txt"},
			prep: func(b *bundle) {
				b.fake.on("upload", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "bad", http.StatusBadRequest) })
			},
			wantCode: slack.CodeBadRequest, wantMsg: "slack responded 400 Bad Request"},
		{name: "malformed JSON", prep: scripted(http.StatusOK, `{"ok": true, "channel": "C0000000001", "ts": `), input: post,
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "not valid JSON of the documented shape"},
		{name: "HTML instead of JSON", prep: scripted(http.StatusOK, `<!DOCTYPE html><html><body>Slack</body></html>`), input: post,
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "not valid JSON of the documented shape"},
		{name: "wrong types", prep: scripted(http.StatusOK, `{"ok": true, "channel": 7, "ts": []}`), input: post,
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "not valid JSON of the documented shape"},
		{name: "ok without a ts", prep: scripted(http.StatusOK, `{"ok": true}`), input: post,
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "not valid JSON of the documented shape"},
		{name: "ok false without an error", prep: scripted(http.StatusOK, `{"ok": false}`), input: post,
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "not valid JSON of the documented shape"},
		{name: "oversized response with Content-Length", input: post,
			prep: func(b *bundle) {
				b.fake.on("chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
					body := `{"ok":true,"channel":"C0000000001","ts":"1.2","message":{"text":"` + huge + `"}}`
					w.Header().Set("Content-Length", fmt.Sprint(len(body)))
					_, _ = w.Write([]byte(body))
				})
			},
			wantCode: connectors.CodeResponseTooLarge, wantMsg: "larger than 4194304 bytes"},
		{name: "oversized chunked response", action: "list_channels", input: map[string]any{},
			prep: func(b *bundle) {
				b.fake.on("conversations.list", func(w http.ResponseWriter, r *http.Request) {
					_, _ = w.Write([]byte(`{"ok":true,"channels":[{"id":"C1","name":"` + huge + `"}]}`))
				})
			},
			wantCode: connectors.CodeResponseTooLarge, wantMsg: "larger than 4194304 bytes"},
		{name: "no connection", prep: func(b *bundle) { b.creds.Delete(owner, slack.Name, "default") }, input: post,
			wantCode: connectors.CodeNoCredentials, wantMsg: "no Slack connection with a token", wantNoCall: true},
		{name: "connection with an empty token", prep: func(b *bundle) { b.set("default", "") }, input: post,
			wantCode: connectors.CodeNoCredentials, wantMsg: "no Slack connection with a token", wantNoCall: true},
		{name: "unknown named connection", input: map[string]any{"channel": "C0000000001", "text": "hi", "connection": "marketing"},
			wantCode: connectors.CodeNoCredentials, wantMsg: `no Slack connection named "marketing"`, wantNoCall: true},
		{name: "another owner's connection is not used",
			ctx: func() context.Context {
				return connectors.WithStep(context.Background(), connectors.Step{JobID: "job_2", StepID: "s", OwnerID: "own_other", Attempt: 1})
			},
			input: post, wantCode: connectors.CodeNoCredentials, wantMsg: "no Slack connection", wantNoCall: true},
		{name: "no step in the context", ctx: context.Background, input: post,
			wantCode: connectors.CodeNoCredentials, wantMsg: "the step has no owner", wantNoCall: true},
		{name: "credentials store down", prep: func(b *bundle) { b.creds.Fail(errors.New("database is locked")) }, input: post,
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
				action = "post_message"
			}
			out, err := b.run(t, ctx, action, tt.input)
			if out != nil {
				t.Fatalf("Run = %s, want no output", out)
			}
			assertStepError(t, err, tt.wantCode, tt.wantRetryable, tt.wantAfter, tt.wantMsg)
			if n := len(b.fake.requests()); tt.wantNoCall && n != 0 {
				t.Errorf("the fake received %d requests, want none", n)
			}
		})
	}
}

func scripted(status int, body string) func(b *bundle) {
	return func(b *bundle) {
		b.fake.on("chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		})
	}
}

func rateLimit(retryAfter string) func(b *bundle) {
	return func(b *bundle) {
		b.fake.on("chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", retryAfter)
			writeJSON(w, http.StatusTooManyRequests, map[string]any{"ok": false, "error": "ratelimited"})
		})
	}
}

func TestTimeouts(t *testing.T) {
	slow := func(b *bundle) {
		b.fake.on("chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
	}
	post := map[string]any{"channel": "C0000000001", "text": "hi"}

	t.Run("step deadline", func(t *testing.T) {
		b := setup(t)
		slow(b)
		ctx, cancel := context.WithTimeout(connectortest.StepContext(owner), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := b.run(t, ctx, "post_message", post)
		assertStepError(t, err, connectors.CodeTimeout, true, 0, "timed out")
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("Run took %v despite a 100ms step deadline", d)
		}
	})
	t.Run("HTTP client timeout", func(t *testing.T) {
		b := setup(t, func(c *slack.Config) { c.HTTPClient = &http.Client{Timeout: 100 * time.Millisecond} })
		slow(b)
		_, err := b.run(t, connectortest.StepContext(owner), "post_message", post)
		assertStepError(t, err, connectors.CodeTimeout, true, 0, "slack did not answer in time")
	})
	t.Run("canceled", func(t *testing.T) {
		b := setup(t)
		ctx, cancel := context.WithCancel(connectortest.StepContext(owner))
		cancel()
		_, err := b.run(t, ctx, "post_message", post)
		assertStepError(t, err, connectors.CodeCanceled, false, 0, "canceled")
	})
}

func TestSchemaRejects(t *testing.T) {
	tests := []struct {
		name, action string
		input        map[string]any
		wantMsg      string
	}{
		{"limit over 1000", "list_channels", map[string]any{"limit": 1001}, "at /limit: maximum: got 1001, want 1000"},
		{"limit 0", "list_channels", map[string]any{"limit": 0}, "at /limit: minimum"},
		{"limit not an integer", "list_channels", map[string]any{"limit": 2.5}, "at /limit: type"},
		{"unknown type", "list_channels", map[string]any{"types": []string{"dm"}}, "at /types/0: enum"},
		{"cursor with odd characters", "list_channels", map[string]any{"cursor": "a b"}, "at /cursor: pattern"},
		{"missing channel", "post_message", map[string]any{"text": "hi"}, "missing property 'channel'"},
		{"neither text nor blocks", "post_message", map[string]any{"channel": "C1"}, "at (root): 'anyOf' failed"},
		{"empty text", "post_message", map[string]any{"channel": "C1", "text": ""}, "at /text: minLength"},
		{"extra property", "post_message", map[string]any{"channel": "C1", "text": "hi", "as_user": true}, "additional properties 'as_user' not allowed"},
		{"token in the input", "post_message", map[string]any{"channel": "C1", "text": "hi", "token": botToken}, "additional properties 'token' not allowed"},
		{"text too long", "post_message", map[string]any{"channel": "C1", "text": strings.Repeat("a", slack.MaxTextChars+1)}, "at /text: maxLength"},
		{"too many blocks", "post_message", map[string]any{"channel": "C1", "blocks": slices.Repeat([]any{map[string]any{"type": "divider"}}, slack.MaxBlocks+1)}, "at /blocks: maxItems"},
		{"block without a type", "post_message", map[string]any{"channel": "C1", "blocks": []any{map[string]any{"text": "x"}}}, "missing property 'type'"},
		{"blocks not an array", "post_message", map[string]any{"channel": "C1", "blocks": map[string]any{"type": "divider"}}, "at /blocks: type"},
		{"malformed thread_ts", "post_message", map[string]any{"channel": "C1", "text": "hi", "thread_ts": "yesterday"}, "at /thread_ts: pattern"},
		{"channel with a space", "post_message", map[string]any{"channel": "C1 C2", "text": "hi"}, "at /channel: pattern"},
		{"bad connection name", "post_message", map[string]any{"channel": "C1", "text": "hi", "connection": "../other"}, "at /connection: pattern"},
		{"connection name too long", "post_message", map[string]any{"channel": "C1", "text": "hi", "connection": strings.Repeat("a", 65)}, "at /connection: pattern"},
		{"missing filename", "upload_file", map[string]any{"channel": "C1", "content": "x"}, "missing property 'filename'"},
		{"filename with a slash", "upload_file", map[string]any{"channel": "C1", "content": "x", "filename": "../etc/passwd"}, "at /filename: pattern"},
		{"filename with a newline", "upload_file", map[string]any{"channel": "C1", "content": "x", "filename": "a\nb.txt"}, "at /filename: pattern"},
		{"empty content", "upload_file", map[string]any{"channel": "C1", "content": "", "filename": "a.txt"}, "at /content: minLength"},
		{"content over 1 MiB of characters", "upload_file", map[string]any{"channel": "C1", "content": strings.Repeat("a", slack.MaxUploadBytes+1), "filename": "a.txt"}, "at /content: maxLength"},
		{"content over 1 MiB of bytes", "upload_file", map[string]any{"channel": "C1", "content": strings.Repeat("é", slack.MaxUploadBytes/2+1), "filename": "a.txt"}, "content is 1048578 bytes once UTF-8 encoded; the limit is 1048576"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			_, err := b.run(t, connectortest.StepContext(owner), tt.action, tt.input)
			assertStepError(t, err, connectors.CodeInvalidInput, false, 0, tt.wantMsg)
			if n := len(b.fake.requests()); n != 0 {
				t.Errorf("the fake received %d requests, want none", n)
			}
		})
	}
}

// TestOutboundGuard runs the connector on the client the lead wires in: the outbound
// guard's, allowing the fake's address as an operator would allow a gateway.
func TestOutboundGuard(t *testing.T) {
	fake := newFakeSlack(t)
	addr := strings.TrimPrefix(fake.srv.URL, "http://")
	allowing, err := outbound.NewGuard([]string{addr})
	if err != nil {
		t.Fatal(err)
	}
	refusing, err := outbound.NewGuard(nil)
	if err != nil {
		t.Fatal(err)
	}
	with := func(g *outbound.Guard) *bundle {
		return setup(t, func(c *slack.Config) {
			c.BaseURL, c.HTTPClient = fake.baseURL(), g.Client(30*time.Second)
		})
	}
	fake.addToken(botToken, "T0000000001")

	b := with(allowing)
	out, err := b.run(t, connectortest.StepContext(owner), "post_message", map[string]any{"channel": "C0000000001", "text": "hi"})
	if err != nil || !strings.Contains(string(out), `"ts":"1732590000.000001"`) {
		t.Fatalf("post_message through the guard = %s, %v", out, err)
	}
	out, err = b.run(t, connectortest.StepContext(owner), "upload_file", map[string]any{"channel": "C0000000001", "content": "abc", "filename": "a.txt"})
	if err != nil || !strings.Contains(string(out), `"file_id":"F0000000001"`) {
		t.Fatalf("upload_file through the guard = %s, %v", out, err)
	}
	before := len(fake.requests())

	b = with(refusing)
	_, err = b.run(t, connectortest.StepContext(owner), "post_message", map[string]any{"channel": "C0000000001", "text": "hi"})
	assertStepError(t, err, connectors.CodeRefused, false, 0, "refused: 127.0.0.1 is a loopback address")
	if !errors.Is(err, outbound.ErrRefused) {
		t.Errorf("errors.Is(%v, outbound.ErrRefused) = false", err)
	}
	if n := len(fake.requests()); n != before {
		t.Errorf("a refused call reached the fake")
	}
}

func TestConfigAndCatalogue(t *testing.T) {
	creds := connectortest.NewCredentials()
	for _, tt := range []struct {
		name string
		cfg  slack.Config
		want string
	}{
		{"relative base URL", slack.Config{BaseURL: "slack.com/api", Credentials: creds}, "absolute http or https URL"},
		{"base URL with credentials", slack.Config{BaseURL: "https://u:p@slack.com/api/", Credentials: creds}, "must not contain credentials"},
		{"base URL with a query", slack.Config{BaseURL: "https://slack.com/api/?x=1", Credentials: creds}, "a query"},
		{"no credentials", slack.Config{}, "Credentials is required"},
	} {
		if _, err := slack.New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}

	// A base URL without its trailing slash still reaches {base}/chat.postMessage.
	b := setup(t, func(c *slack.Config) { c.BaseURL = strings.TrimSuffix(c.BaseURL, "/") })
	if _, err := b.run(t, connectortest.StepContext(owner), "post_message", map[string]any{"channel": "C0000000001", "text": "hi"}); err != nil {
		t.Fatalf("base URL without a trailing slash: %v", err)
	}

	cat := b.reg.Catalogue()
	if len(cat) != 1 || cat[0].Connector != "slack" || !slices.Equal(cat[0].CredentialFields, []string{"token"}) {
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
	if want := []string{"list_channels", "post_message", "upload_file"}; !slices.Equal(names, want) {
		t.Fatalf("actions = %v, want %v", names, want)
	}
}
