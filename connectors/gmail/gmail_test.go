package gmail_test

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/mail"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/connectortest"
	"github.com/levqor/levqor/connectors/gmail"
	"github.com/levqor/levqor/outbound"
)

const owner = "usr_01HZX4P6"

// work is a second connection of the owner, with its own client and refresh token.
var work = map[string]string{
	"client_id":     "555000111-work.apps.googleusercontent.com",
	"client_secret": "GOCSPX-workSecret0000000000000000",
	"refresh_token": "1//0gWorkRefreshToken-L9IrT6b1nWm4pXhY2sEeD0kQzz",
}

func defaultConnection() map[string]string {
	return map[string]string{"client_id": clientID, "client_secret": clientSecret, "refresh_token": refreshToken}
}

type bundle struct {
	fake *fakeGoogle
	reg  *connectors.Registry
	ctx  context.Context // carries the step
}

func setup(t testing.TB, opts ...func(*gmail.Config)) *bundle {
	t.Helper()
	fake := newFakeGoogle(t)
	fake.grant(work["client_id"], work["client_secret"], work["refresh_token"])
	creds := connectortest.NewCredentials()
	creds.Set(owner, gmail.Name, "default", defaultConnection())
	creds.Set(owner, gmail.Name, "work", work)
	creds.Set(owner, gmail.Name, "partial", map[string]string{"client_id": clientID, "refresh_token": refreshToken})
	cfg := gmail.Config{BaseURL: fake.baseURL(), TokenURL: fake.tokenURL(), Credentials: creds}
	for _, o := range opts {
		o(&cfg)
	}
	conn, err := gmail.New(cfg)
	if err != nil {
		t.Fatalf("gmail.New: %v", err)
	}
	reg, err := connectors.NewRegistry(conn)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	ctx := connectors.WithStep(context.Background(), connectors.Step{JobID: "job_1", StepID: "mail", OwnerID: owner, Attempt: 1})
	return &bundle{fake: fake, reg: reg, ctx: ctx}
}

// secrets are every credential the tests use and every access token the fake issued.
func (b *bundle) secrets() []string {
	s := []string{clientSecret, refreshToken, work["client_secret"], work["refresh_token"]}
	return append(s, b.fake.issuedTokens()...)
}

func (b *bundle) run(t testing.TB, action, input string, out any) error {
	t.Helper()
	raw, err := b.reg.Run(b.ctx, gmail.Name, action, json.RawMessage(input))
	if err != nil {
		b.noSecrets(t, err.Error())
		return err
	}
	b.noSecrets(t, string(raw))
	connectortest.CheckOutput(t, b.reg, gmail.Name, action, json.RawMessage(input), raw)
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("output %s does not decode: %v", raw, err)
	}
	return nil
}

func (b *bundle) noSecrets(t testing.TB, s string) {
	t.Helper()
	for _, secret := range b.secrets() {
		if strings.Contains(s, secret) {
			t.Fatalf("%q holds a secret", s)
		}
	}
}

func wantStepError(t *testing.T, err error, code string, retryable bool) *connectors.StepError {
	t.Helper()
	var se *connectors.StepError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T); want a *StepError %s", err, err, code)
	}
	if se.Code != code || se.Retryable != retryable {
		t.Fatalf("err = %v (retryable %v); want code %s, retryable %v", se, se.Retryable, code, retryable)
	}
	return se
}

func TestListLabels(t *testing.T) {
	b := setup(t)
	var out gmail.LabelsOutput
	if err := b.run(t, "list_labels", `{}`, &out); err != nil {
		t.Fatal(err)
	}
	want := gmail.LabelsOutput{Labels: []gmail.Label{
		{ID: "CHAT", Name: "CHAT", Type: "system"}, {ID: "SENT", Name: "SENT", Type: "system"},
		{ID: "INBOX", Name: "INBOX", Type: "system"}, {ID: "Label_3", Name: "Receipts", Type: "user"},
	}}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("out = %+v", out)
	}
	if got := b.fake.forms(); len(got) != 1 || !reflect.DeepEqual(got[0], url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "client_id": {clientID}, "client_secret": {clientSecret},
	}) {
		t.Fatalf("token requests = %v", got)
	}
	if n := b.fake.tokenRequests(); n != 1 {
		t.Fatalf("the token endpoint received %d requests; want 1", n)
	}
	call := b.fake.lastCall()
	if call.Method != "GET" || call.Path != "/gmail/v1/users/me/labels" || call.Auth != "Bearer "+b.fake.issuedTokens()[0] {
		t.Fatalf("call = %+v", call)
	}
}

func TestAccessTokenIsCachedPerCredentialSet(t *testing.T) {
	b := setup(t)
	for range 3 {
		if err := b.run(t, "list_labels", `{}`, &gmail.LabelsOutput{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.fake.refreshes(); n != 1 {
		t.Fatalf("%d token refreshes for one credential set; want 1", n)
	}
	// The work connection has its own credentials, so its own token.
	if err := b.run(t, "list_labels", `{"connection": "work"}`, &gmail.LabelsOutput{}); err != nil {
		t.Fatal(err)
	}
	if n := b.fake.refreshes(); n != 2 {
		t.Fatalf("%d token refreshes; want 2", n)
	}
	if got := b.fake.forms()[1]; got.Get("client_id") != work["client_id"] || got.Get("refresh_token") != work["refresh_token"] {
		t.Fatalf("work refresh = %v", got)
	}
	calls := b.fake.calls()
	if calls[2].Auth != calls[0].Auth || calls[3].Auth == calls[0].Auth {
		t.Fatalf("bearer tokens = %q, %q, %q, %q", calls[0].Auth, calls[1].Auth, calls[2].Auth, calls[3].Auth)
	}
}

func TestConcurrentStepsRefreshOnce(t *testing.T) {
	b := setup(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := b.reg.Run(b.ctx, gmail.Name, "list_labels", json.RawMessage(`{}`))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := b.fake.refreshes(); n != 1 {
		t.Fatalf("%d token refreshes for 16 concurrent steps; want 1", n)
	}
}

func TestExpiringTokenIsRefreshed(t *testing.T) {
	b := setup(t)
	b.fake.setExpiresIn(5) // within oauth2's 10-second margin: never reused
	for range 2 {
		if err := b.run(t, "list_labels", `{}`, &gmail.LabelsOutput{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.fake.refreshes(); n != 2 {
		t.Fatalf("%d token refreshes; want 2", n)
	}
}

func TestRevokedAccessTokenIsRefreshedOnce(t *testing.T) {
	b := setup(t)
	if err := b.run(t, "list_labels", `{}`, &gmail.LabelsOutput{}); err != nil {
		t.Fatal(err)
	}
	b.fake.revokeAccessTokens()
	if err := b.run(t, "list_labels", `{}`, &gmail.LabelsOutput{}); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	if n, calls := b.fake.refreshes(), len(b.fake.calls()); n != 2 || calls != 2 {
		t.Fatalf("%d refreshes, %d calls that passed; want 2 and 2", n, calls)
	}

	// A token Gmail refuses even fresh: one retry, then auth_failed.
	b.fake.setOverride(func(w http.ResponseWriter, r *http.Request) {
		googleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "authError", "Invalid Credentials")
	})
	err := b.run(t, "list_labels", `{}`, &gmail.LabelsOutput{})
	se := wantStepError(t, err, gmail.CodeAuthFailed, false)
	if se.Message != "gmail: authError" {
		t.Fatalf("message = %q", se.Message)
	}
	if n, calls := b.fake.refreshes(), len(b.fake.calls()); n != 3 || calls != 4 {
		t.Fatalf("%d refreshes, %d calls; want 3 and 4", n, calls)
	}
}

func TestListMessages(t *testing.T) {
	b := setup(t)
	var out gmail.MessagesOutput
	input := `{"query": "from:alice@example.com is:unread", "max_results": 25, "label_ids": ["INBOX", "UNREAD"]}`
	if err := b.run(t, "list_messages", input, &out); err != nil {
		t.Fatal(err)
	}
	call := b.fake.lastCall()
	wantQuery := url.Values{"alt": {"json"}, "prettyPrint": {"false"}, "q": {"from:alice@example.com is:unread"},
		"maxResults": {"25"}, "labelIds": {"INBOX", "UNREAD"}}
	if call.Method != "GET" || call.Path != "/gmail/v1/users/me/messages" || !reflect.DeepEqual(call.Query, wantQuery) {
		t.Fatalf("call = %+v", call)
	}
	next := "09876543210987654321"
	want := gmail.MessagesOutput{
		Messages:      []gmail.MessageRef{{ID: "18f2a7c3b9d4e5f1", ThreadID: "18f2a7c3b9d4e5f1"}, {ID: "18f29e0a1b2c3d4e", ThreadID: "18f29d7f6e5d4c3b"}},
		NextPageToken: &next, ResultSizeEstimate: 201,
	}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("out = %+v", out)
	}

	out = gmail.MessagesOutput{}
	if err := b.run(t, "list_messages", `{"page_token": "`+next+`"}`, &out); err != nil {
		t.Fatal(err)
	}
	if got := b.fake.lastCall().Query; got.Get("pageToken") != next || got.Has("q") || got.Has("maxResults") {
		t.Fatalf("query = %v", got)
	}
	if out.NextPageToken != nil || len(out.Messages) != 2 {
		t.Fatalf("last page = %+v", out)
	}
}

func TestSendEmailPlainText(t *testing.T) {
	b := setup(t)
	before := time.Now().Add(-time.Second).Truncate(time.Second)
	var out gmail.SentMessage
	input := `{"to": ["ada@example.com", "Charles Babbage <charles@example.org>"], "cc": ["\"Lovelace, Ada\" <ada.l@example.com>"],
		"subject": "Weekly report", "text": "Hello,\n\nall jobs ran. A line that is long enough to be wrapped by quoted-printable: ` + strings.Repeat("x", 90) + `\n= done"}`
	if err := b.run(t, "send_email", input, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID == "" || out.ThreadID != out.ID || !reflect.DeepEqual(out.LabelIDs, []string{"SENT"}) {
		t.Fatalf("out = %+v", out)
	}
	if call := b.fake.lastCall(); call.Method != "POST" || call.Path != "/gmail/v1/users/me/messages/send" {
		t.Fatalf("call = %+v", call)
	}
	msgs := b.fake.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages sent", len(msgs))
	}
	m := msgs[0]
	h := m.Header
	to, err := h.AddressList("To")
	if err != nil || len(to) != 2 || to[0].Address != "ada@example.com" || to[1].Name != "Charles Babbage" || to[1].Address != "charles@example.org" {
		t.Fatalf("To = %q (%v)", h.Get("To"), err)
	}
	cc, err := h.AddressList("Cc")
	if err != nil || len(cc) != 1 || cc[0].Name != "Lovelace, Ada" || cc[0].Address != "ada.l@example.com" {
		t.Fatalf("Cc = %q (%v)", h.Get("Cc"), err)
	}
	if h.Get("Subject") != "Weekly report" || h.Get("MIME-Version") != "1.0" || h.Get("Bcc") != "" || h.Get("Reply-To") != "" {
		t.Fatalf("header = %v", h)
	}
	date, err := h.Date()
	if err != nil || date.Before(before) || date.After(time.Now()) {
		t.Fatalf("Date = %q (%v)", h.Get("Date"), err)
	}
	if !regexp.MustCompile(`^<[A-Z2-7]{26}@levqor>$`).MatchString(h.Get("Message-ID")) {
		t.Fatalf("Message-ID = %q", h.Get("Message-ID"))
	}
	wantParts := []part{{ContentType: "text/plain; charset=utf-8", Encoding: "quoted-printable",
		Body: "Hello,\r\n\r\nall jobs ran. A line that is long enough to be wrapped by quoted-printable: " + strings.Repeat("x", 90) + "\r\n= done"}}
	if !reflect.DeepEqual(m.Parts, wantParts) {
		t.Fatalf("parts = %+v", m.Parts)
	}
	for _, line := range strings.Split(string(m.Raw), "\r\n") {
		if len(line) > 78 {
			t.Fatalf("line of %d characters: %q", len(line), line)
		}
	}
}

func TestSendEmailMultipartAndEncodedHeaders(t *testing.T) {
	b := setup(t)
	var out gmail.SentMessage
	input := `{"to": ["Zoë Müller <zoe@example.de>"], "bcc": ["audit@example.com"], "reply_to": "Support <support@example.com>",
		"subject": "  Rechnung für März – ✓ bezahlt  ", "text": "Grüße\n", "html": "<p>Grüße</p>"}`
	if err := b.run(t, "send_email", input, &out); err != nil {
		t.Fatal(err)
	}
	m := b.fake.messages()[0]
	h := m.Header
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(h.Get("Subject"))
	if err != nil || subject != "Rechnung für März – ✓ bezahlt" {
		t.Fatalf("Subject = %q → %q (%v)", h.Get("Subject"), subject, err)
	}
	if !strings.HasPrefix(h.Get("Subject"), "=?utf-8?q?") {
		t.Fatalf("Subject is not an encoded word: %q", h.Get("Subject"))
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != "Zoë Müller" || to[0].Address != "zoe@example.de" {
		t.Fatalf("To = %q (%v)", h.Get("To"), err)
	}
	if bcc, err := h.AddressList("Bcc"); err != nil || len(bcc) != 1 || bcc[0].Address != "audit@example.com" {
		t.Fatalf("Bcc = %q (%v)", h.Get("Bcc"), err)
	}
	if rt, err := mail.ParseAddress(h.Get("Reply-To")); err != nil || rt.Name != "Support" || rt.Address != "support@example.com" {
		t.Fatalf("Reply-To = %q (%v)", h.Get("Reply-To"), err)
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" || params["boundary"] == "" || h.Get("Content-Transfer-Encoding") != "" {
		t.Fatalf("Content-Type = %q (%v)", h.Get("Content-Type"), err)
	}
	wantParts := []part{
		{ContentType: "text/plain; charset=utf-8", Encoding: "quoted-printable", Body: "Grüße\r\n"},
		{ContentType: "text/html; charset=utf-8", Encoding: "quoted-printable", Body: "<p>Grüße</p>"},
	}
	if !reflect.DeepEqual(m.Parts, wantParts) {
		t.Fatalf("parts = %+v", m.Parts)
	}
}

func TestSendEmailFoldsLongRecipientLists(t *testing.T) {
	b := setup(t)
	var to []string
	for i := range 50 {
		to = append(to, strconv.Quote("Recipient Number "+strconv.Itoa(i)+" <r"+strconv.Itoa(i)+"@example.com>"))
	}
	input := `{"to": [` + strings.Join(to, ",") + `], "subject": "` + strings.Repeat("ünïcödé ", 60) + `", "html": "<b>hi</b>"}`
	if err := b.run(t, "send_email", input, &gmail.SentMessage{}); err != nil {
		t.Fatal(err)
	}
	m := b.fake.messages()[0]
	head, _, _ := strings.Cut(string(m.Raw), "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		if len(line) > 78 {
			t.Fatalf("header line of %d characters: %q", len(line), line)
		}
	}
	got, err := m.Header.AddressList("To")
	if err != nil || len(got) != 50 || got[49].Name != "Recipient Number 49" || got[49].Address != "r49@example.com" {
		t.Fatalf("To parsed to %d addresses (%v)", len(got), err)
	}
	var dec mime.WordDecoder
	if s, err := dec.DecodeHeader(m.Header.Get("Subject")); err != nil || s != strings.TrimSpace(strings.Repeat("ünïcödé ", 60)) {
		t.Fatalf("Subject decodes to %q (%v)", s, err)
	}
	if want := []part{{ContentType: "text/html; charset=utf-8", Encoding: "quoted-printable", Body: "<b>hi</b>"}}; !reflect.DeepEqual(m.Parts, want) {
		t.Fatalf("parts = %+v", m.Parts)
	}
}

func TestSendEmailRejectsHeaderInjection(t *testing.T) {
	b := setup(t)
	tests := []struct{ name, input, wantMsg string }{
		{"CRLF in subject", `{"to": ["ada@example.com"], "subject": "Hi\r\nBcc: evil@example.net", "text": "x"}`, "subject must not contain a line break"},
		{"LF in subject", `{"to": ["ada@example.com"], "subject": "Hi\nX-Evil: 1", "text": "x"}`, "subject must not contain a line break"},
		{"CR in subject", `{"to": ["ada@example.com"], "subject": "Hi\rX-Evil: 1", "text": "x"}`, "subject must not contain a line break"},
		{"CRLF in to", `{"to": ["ada@example.com\r\nBcc: evil@example.net"], "subject": "Hi", "text": "x"}`, "to[0] must not contain a line break"},
		{"LF in a display name", `{"to": ["ok@example.com", "Ada\nBcc: evil@example.net <ada@example.com>"], "subject": "Hi", "text": "x"}`, "to[1] must not contain a line break"},
		{"CRLF in cc", `{"to": ["ada@example.com"], "cc": ["bob@example.com\r\n\r\nInjected body"], "subject": "Hi", "text": "x"}`, "cc[0] must not contain a line break"},
		{"CRLF in bcc", `{"to": ["ada@example.com"], "bcc": ["\r\nTo: evil@example.net"], "subject": "Hi", "text": "x"}`, "bcc[0] must not contain a line break"},
		{"CRLF in reply_to", `{"to": ["ada@example.com"], "reply_to": "a@example.com\r\nX: y", "subject": "Hi", "text": "x"}`, "reply_to must not contain a line break"},
		{"encoded CRLF in a display name", `{"to": ["=?utf-8?b?QWRhDQpCY2M6IGV2aWxAZXhhbXBsZS5uZXQ=?= <ada@example.com>"], "subject": "Hi", "text": "x"}`, "to[0] must not contain control characters"},
		{"two addresses in one", `{"to": ["ada@example.com, evil@example.net"], "subject": "Hi", "text": "x"}`, "to[0] is not an email address"},
		{"not an address", `{"to": ["ada at example.com"], "subject": "Hi", "text": "x"}`, "to[0] is not an email address"},
		{"group syntax", `{"to": ["friends: ada@example.com, evil@example.net;"], "subject": "Hi", "text": "x"}`, "to[0] is not an email address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.reg.Run(b.ctx, gmail.Name, "send_email", json.RawMessage(tt.input))
			se := wantStepError(t, err, connectors.CodeInvalidInput, false)
			if se.Message != tt.wantMsg {
				t.Fatalf("message = %q; want %q", se.Message, tt.wantMsg)
			}
		})
	}
	if n, calls := b.fake.refreshes(), len(b.fake.calls()); n != 0 || calls != 0 || len(b.fake.messages()) != 0 {
		t.Fatalf("%d refreshes, %d calls for refused input; want none", n, calls)
	}
}

func TestVendorErrors(t *testing.T) {
	tests := []struct {
		name          string
		conn          map[string]string // the default connection; nil means the valid one
		override      http.HandlerFunc
		tokenOverride http.HandlerFunc
		action, input string
		timeout       time.Duration
		wantCode      string
		wantRetryable bool
		wantRetryIn   time.Duration
		wantMsg       string
	}{
		{name: "revoked refresh token", conn: map[string]string{"client_id": clientID, "client_secret": clientSecret, "refresh_token": "1//0gRevokedToken"},
			action: "list_labels", input: `{}`, wantCode: gmail.CodeAuthFailed, wantMsg: "Google refused the Gmail connection's credentials (invalid_grant)"},
		{name: "wrong client secret", conn: map[string]string{"client_id": clientID, "client_secret": "GOCSPX-wrong", "refresh_token": refreshToken},
			action: "send_email", input: `{"to": ["a@example.com"], "subject": "s", "text": "t"}`, wantCode: gmail.CodeAuthFailed, wantMsg: "(invalid_client)"},
		{name: "token endpoint down", action: "list_labels", input: `{}`,
			tokenOverride: raw(503, `{"error": "temporarily_unavailable"}`),
			wantCode:      connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "Google's token endpoint failed (temporarily_unavailable)"},
		{name: "token endpoint rate limit", action: "list_labels", input: `{}`,
			tokenOverride: raw(429, `{"error": "rate_limit_exceeded"}`, "Retry-After", "12"),
			wantCode:      gmail.CodeRateLimited, wantRetryable: true, wantRetryIn: 12 * time.Second},
		{name: "token endpoint malformed", action: "list_labels", input: `{}`, tokenOverride: raw(200, `{"access_token": `),
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "Google's token endpoint's response could not be read"},
		{name: "token response oversized", action: "list_labels", input: `{}`,
			tokenOverride: raw(200, `{"access_token": "`+strings.Repeat("a", gmail.MaxResponseBytes)+`"}`,
				"Content-Length", strconv.Itoa(20+gmail.MaxResponseBytes)),
			wantCode: connectors.CodeResponseTooLarge},
		{name: "not found", action: "list_messages", input: `{}`,
			override: func(w http.ResponseWriter, r *http.Request) {
				googleError(w, 404, "NOT_FOUND", "notFound", "Requested entity was not found.")
			},
			wantCode: gmail.CodeNotFound, wantMsg: "gmail: notFound"},
		{name: "bad request", action: "send_email", input: `{"to": ["a@example.com"], "subject": "s", "text": "t"}`,
			override: func(w http.ResponseWriter, r *http.Request) {
				googleError(w, 400, "INVALID_ARGUMENT", "invalidArgument", "Invalid To header")
			},
			wantCode: gmail.CodeBadRequest, wantMsg: "gmail: invalidArgument (Invalid To header)"},
		{name: "rate limited 429", action: "list_labels", input: `{}`,
			override: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "30")
				googleError(w, 429, "RESOURCE_EXHAUSTED", "rateLimitExceeded", "Too many concurrent requests for user")
			},
			wantCode: gmail.CodeRateLimited, wantRetryable: true, wantRetryIn: 30 * time.Second, wantMsg: "gmail: rateLimitExceeded"},
		{name: "rate limited 403", action: "send_email", input: `{"to": ["a@example.com"], "subject": "s", "text": "t"}`,
			override: func(w http.ResponseWriter, r *http.Request) {
				googleError(w, 403, "PERMISSION_DENIED", "userRateLimitExceeded", "User Rate Limit Exceeded")
			},
			wantCode: gmail.CodeRateLimited, wantRetryable: true, wantMsg: "gmail: userRateLimitExceeded"},
		{name: "rate limited, ErrorInfo only", action: "list_labels", input: `{}`,
			override: raw(403, `{"error": {"code": 403, "message": "Quota exceeded", "status": "PERMISSION_DENIED",
				"details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED", "domain": "googleapis.com"}]}}`),
			wantCode: gmail.CodeRateLimited, wantRetryable: true},
		{name: "missing scope", action: "send_email", input: `{"to": ["a@example.com"], "subject": "s", "text": "t"}`,
			override: func(w http.ResponseWriter, r *http.Request) {
				googleError(w, 403, "PERMISSION_DENIED", "insufficientPermissions", "Request had insufficient authentication scopes.")
			},
			wantCode: gmail.CodeForbidden, wantMsg: "gmail: insufficientPermissions"},
		{name: "backend error", action: "list_labels", input: `{}`,
			override: func(w http.ResponseWriter, r *http.Request) {
				googleError(w, 500, "INTERNAL", "backendError", "Backend Error")
			},
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "gmail: backendError"},
		{name: "gateway page", action: "list_labels", input: `{}`,
			override: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "<html>502</html>", http.StatusBadGateway) },
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "Gmail responded 502 Bad Gateway"},
		{name: "timeout", action: "list_labels", input: `{}`, timeout: 150 * time.Millisecond, override: delay(5 * time.Second),
			wantCode: connectors.CodeTimeout, wantRetryable: true, wantMsg: "Gmail did not answer within 150ms"},
		{name: "token endpoint timeout", action: "list_labels", input: `{}`, timeout: 150 * time.Millisecond, tokenOverride: delay(5 * time.Second),
			wantCode: connectors.CodeTimeout, wantRetryable: true, wantMsg: "Google's token endpoint did not answer within 150ms"},
		{name: "oversized, declared", action: "list_labels", input: `{}`,
			override: raw(200, `{"labels": []}`+strings.Repeat(" ", gmail.MaxResponseBytes), "Content-Length", strconv.Itoa(14+gmail.MaxResponseBytes)),
			wantCode: connectors.CodeResponseTooLarge},
		{name: "oversized, chunked", action: "list_labels", input: `{}`,
			override: raw(200, `{"labels": [`+strings.Repeat(`{"id": "Label_1", "name": "x"},`, gmail.MaxResponseBytes/30)+`{}]}`),
			wantCode: connectors.CodeResponseTooLarge},
		{name: "malformed JSON", action: "list_labels", input: `{}`, override: raw(200, `{"labels": [{"id": `),
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "Gmail's response could not be read"},
		{name: "send answered without an id", action: "send_email", input: `{"to": ["a@example.com"], "subject": "s", "text": "t"}`,
			override: raw(200, `{}`), wantCode: connectors.CodeUpstreamError, wantMsg: "Gmail's response names no message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t, func(c *gmail.Config) {
				c.Timeout = tt.timeout
				if tt.conn != nil {
					creds := connectortest.NewCredentials()
					creds.Set(owner, gmail.Name, "default", tt.conn)
					c.Credentials = creds
				}
			})
			b.fake.setOverride(tt.override)
			b.fake.setTokenOverride(tt.tokenOverride)
			err := b.run(t, tt.action, tt.input, &map[string]any{})
			se := wantStepError(t, err, tt.wantCode, tt.wantRetryable)
			if se.RetryAfter != tt.wantRetryIn {
				t.Fatalf("RetryAfter = %v; want %v", se.RetryAfter, tt.wantRetryIn)
			}
			if !strings.Contains(se.Message, tt.wantMsg) {
				t.Fatalf("message = %q; want it to contain %q", se.Message, tt.wantMsg)
			}
			for _, v := range tt.conn {
				if strings.Contains(se.Error(), v) {
					t.Fatalf("message holds a credential: %q", se.Message)
				}
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	b := setup(t)
	tests := []struct {
		name    string
		ctx     context.Context
		input   string
		wantMsg string
	}{
		{"no step", context.Background(), `{}`, "no owner"},
		{"owner without a connection", connectors.WithStep(context.Background(), connectors.Step{OwnerID: "usr_other"}), `{}`,
			"no Gmail connection; add one with PUT /api/v1/connections/gmail"},
		{"unknown named connection", b.ctx, `{"connection": "home"}`, `no Gmail connection named "home"`},
		{"incomplete connection", b.ctx, `{"connection": "partial"}`, `no Gmail connection named "partial" with a client_secret`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.reg.Run(tt.ctx, gmail.Name, "list_labels", json.RawMessage(tt.input))
			se := wantStepError(t, err, connectors.CodeNoCredentials, false)
			if !strings.Contains(se.Message, tt.wantMsg) {
				t.Fatalf("message = %q; want %q", se.Message, tt.wantMsg)
			}
		})
	}
	if n, calls := b.fake.refreshes(), len(b.fake.calls()); n != 0 || calls != 0 {
		t.Fatalf("%d refreshes, %d calls without credentials", n, calls)
	}
}

func TestCredentialsStoreFailureIsRetryable(t *testing.T) {
	creds := connectortest.NewCredentials()
	creds.Fail(errors.New("decrypt connection: cipher: message authentication failed"))
	b := setup(t, func(c *gmail.Config) { c.Credentials = creds })
	err := b.run(t, "list_labels", `{}`, &gmail.LabelsOutput{})
	se := wantStepError(t, err, connectors.CodeUpstreamError, true)
	if strings.Contains(se.Message, "cipher") {
		t.Fatalf("message leaks the store's error: %q", se.Message)
	}
}

func TestSchemaRejectsBadInput(t *testing.T) {
	b := setup(t)
	addrs := func(n int) string {
		return `[` + strings.TrimSuffix(strings.Repeat(`"a@example.com",`, n), ",") + `]`
	}
	tests := []struct{ name, action, input, wantMsg string }{
		{"no recipients", "send_email", `{"to": [], "subject": "s", "text": "t"}`, "minItems"},
		{"too many recipients", "send_email", `{"to": ` + addrs(51) + `, "subject": "s", "text": "t"}`, "maxItems"},
		{"too many cc", "send_email", `{"to": ["a@example.com"], "cc": ` + addrs(51) + `, "subject": "s", "text": "t"}`, "maxItems"},
		{"no body", "send_email", `{"to": ["a@example.com"], "subject": "s"}`, "anyOf"},
		{"empty text", "send_email", `{"to": ["a@example.com"], "subject": "s", "text": ""}`, "minLength"},
		{"no subject", "send_email", `{"to": ["a@example.com"], "text": "t"}`, "required"},
		{"subject too long", "send_email", `{"to": ["a@example.com"], "subject": "` + strings.Repeat("s", 501) + `", "text": "t"}`, "maxLength"},
		{"address too long", "send_email", `{"to": ["` + strings.Repeat("a", 321) + `"], "subject": "s", "text": "t"}`, "maxLength"},
		{"to as a string", "send_email", `{"to": "a@example.com", "subject": "s", "text": "t"}`, "type"},
		{"unknown field", "send_email", `{"to": ["a@example.com"], "subject": "s", "text": "t", "headers": {"X": "y"}}`, "additionalProperties"},
		{"max_results over 100", "list_messages", `{"max_results": 101}`, "maximum"},
		{"max_results zero", "list_messages", `{"max_results": 0}`, "minimum"},
		{"bad label id", "list_messages", `{"label_ids": ["INBOX&q=x"]}`, "pattern"},
		{"bad connection name", "list_labels", `{"connection": "a/b"}`, "pattern"},
		{"unknown field in list_labels", "list_labels", `{"user_id": "someone@example.com"}`, "additionalProperties"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.reg.Run(b.ctx, gmail.Name, tt.action, json.RawMessage(tt.input))
			se := wantStepError(t, err, connectors.CodeInvalidInput, false)
			if !strings.Contains(se.Message, tt.wantMsg) {
				t.Fatalf("message = %q; want %q", se.Message, tt.wantMsg)
			}
		})
	}
	if n, calls := b.fake.refreshes(), len(b.fake.calls()); n != 0 || calls != 0 {
		t.Fatalf("%d refreshes, %d calls for invalid input", n, calls)
	}
}

func TestStepDeadline(t *testing.T) {
	b := setup(t)
	b.fake.setOverride(delay(5 * time.Second))
	ctx, cancel := context.WithTimeout(b.ctx, 100*time.Millisecond)
	defer cancel()
	_, err := b.reg.Run(ctx, gmail.Name, "list_labels", json.RawMessage(`{}`))
	wantStepError(t, err, connectors.CodeTimeout, true)
}

func TestOutboundGuardRefuses(t *testing.T) {
	guard, err := outbound.NewGuard(nil) // allows nothing private: the fake on 127.0.0.1 is refused
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, func(c *gmail.Config) { c.HTTPClient = guard.Client(time.Minute) })
	err = b.run(t, "list_labels", `{}`, &gmail.LabelsOutput{})
	wantStepError(t, err, connectors.CodeRefused, false)
	if n := b.fake.refreshes(); n != 0 {
		t.Fatal("the guard let the token request through")
	}
}

// recordingTransport records the paths of the requests it carries.
type recordingTransport struct {
	mu    sync.Mutex
	paths []string
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.paths = append(rt.paths, r.URL.Path)
	rt.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func TestTokenRefreshAndCallsUseTheConfiguredClient(t *testing.T) {
	rt := &recordingTransport{}
	b := setup(t, func(c *gmail.Config) { c.HTTPClient = &http.Client{Transport: rt} })
	if err := b.run(t, "list_labels", `{}`, &gmail.LabelsOutput{}); err != nil {
		t.Fatal(err)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if want := []string{"/token", "/gmail/v1/users/me/labels"}; !reflect.DeepEqual(rt.paths, want) {
		t.Fatalf("the configured client carried %v; want %v", rt.paths, want)
	}
}

func TestNew(t *testing.T) {
	creds := connectortest.NewCredentials()
	for _, cfg := range []gmail.Config{
		{BaseURL: "ftp://gmail.googleapis.com/", Credentials: creds},
		{TokenURL: "https://user:pass@oauth2.googleapis.com/token", Credentials: creds},
		{TokenURL: "https://oauth2.googleapis.com/token?x=1", Credentials: creds},
		{BaseURL: "gmail.googleapis.com", Credentials: creds},
		{},
		{Credentials: creds, Timeout: -time.Second},
	} {
		if _, err := gmail.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	c, err := gmail.New(gmail.Config{Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CredentialFields(); !reflect.DeepEqual(got, []string{"client_id", "client_secret", "refresh_token"}) {
		t.Fatalf("CredentialFields = %v", got)
	}
	reg, err := connectors.NewRegistry(c)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range reg.Catalogue()[0].Actions {
		names = append(names, a.Name)
	}
	if !reflect.DeepEqual(names, []string{"list_labels", "list_messages", "send_email"}) {
		t.Fatalf("actions = %v", names)
	}
}
