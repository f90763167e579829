package email_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/connectortest"
	"github.com/levqor/levqor/connectors/email"
	"github.com/levqor/levqor/resendapi/resendtest"
)

const (
	testKey   = "re_test_4f9a2b7c1d8e6f3a"
	otherKey  = "re_other_0a1b2c3d4e5f6a7b"
	publicURL = "https://levqor.example"
)

var senders = []string{"support@levqor.example", "billing@levqor.example", "no-reply@levqor.example", "Levqor Security <security@levqor.example>"}

type bundle struct {
	fake  *resendtest.Server
	creds *connectortest.Credentials
	conn  *email.Connector
	reg   *connectors.Registry
	step  connectors.Step
	t     testing.TB // checks every output against its schema
}

func setup(t testing.TB, mutate ...func(*email.Config)) *bundle {
	t.Helper()
	b := &bundle{
		fake:  resendtest.New(t, testKey),
		creds: connectortest.NewCredentials(),
		step:  connectors.Step{JobID: "job_1", StepID: "notify", OwnerID: "usr_1", Attempt: 1},
		t:     t,
	}
	b.creds.Set("usr_1", email.Name, "default", map[string]string{"api_key": testKey})
	b.creds.Set("usr_1", email.Name, "wrong", map[string]string{"api_key": otherKey})
	b.creds.Set("usr_1", email.Name, "empty", map[string]string{})
	cfg := email.Config{BaseURL: b.fake.URL, Credentials: b.creds, Senders: senders, PublicURL: publicURL}
	for _, m := range mutate {
		m(&cfg)
	}
	conn, err := email.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	b.conn = conn
	if b.reg, err = connectors.NewRegistry(conn); err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	return b
}

func (b *bundle) ctx() context.Context { return connectors.WithStep(context.Background(), b.step) }

func (b *bundle) run(ctx context.Context, input string) (json.RawMessage, error) {
	out, err := b.reg.Run(ctx, email.Name, "send", json.RawMessage(input))
	if err == nil {
		connectortest.CheckOutput(b.t, b.reg, email.Name, "send", json.RawMessage(input), out)
	}
	return out, err
}

func stepError(t *testing.T, err error) *connectors.StepError {
	t.Helper()
	var se *connectors.StepError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *StepError", err, err)
	}
	return se
}

func outputID(t *testing.T, out json.RawMessage) string {
	t.Helper()
	var o struct {
		ID string `json:"id"`
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil || o.ID == "" {
		t.Fatalf("output %s is not {id}: %v", out, err)
	}
	return o.ID
}

func TestSendText(t *testing.T) {
	b := setup(t)
	out, err := b.run(b.ctx(), `{
		"to": ["Ada Lovelace <ada@example.com>", "grace@example.org"],
		"cc": "cc@example.com",
		"bcc": ["bcc@example.com"],
		"reply_to": "replies@example.com",
		"subject": "Weekly report ✓",
		"text": "Plain body",
		"html": "<p>HTML body</p>"
	}`)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	sent := b.fake.Sent()
	if len(sent) != 1 {
		t.Fatalf("the fake sent %d emails, want 1", len(sent))
	}
	got := sent[0]
	if id := outputID(t, out); id != got.ID {
		t.Errorf("output id %q, want the fake's %q", id, got.ID)
	}
	want := resendtest.Email{
		ID:             got.ID,
		IdempotencyKey: "levqor/email/job_1/notify",
		UserAgent:      got.UserAgent,
		From:           "no-reply@levqor.example",
		To:             []string{`"Ada Lovelace" <ada@example.com>`, "grace@example.org"},
		Cc:             []string{"cc@example.com"},
		Bcc:            []string{"bcc@example.com"},
		ReplyTo:        "replies@example.com",
		Subject:        "Weekly report ✓",
		Text:           "Plain body",
		HTML:           "<p>HTML body</p>",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sent\n %+v\nwant\n %+v", got, want)
	}
	if !strings.HasPrefix(got.UserAgent, "resend-go/") {
		t.Errorf("User-Agent %q: the request did not come through resend-go", got.UserAgent)
	}
	if strings.Contains(string(out), testKey) {
		t.Error("the output holds the API key")
	}
}

func TestSendFromAndConnection(t *testing.T) {
	b := setup(t)
	b.creds.Set("usr_1", email.Name, "marketing", map[string]string{"api_key": testKey})
	if _, err := b.run(b.ctx(), `{"to": "a@example.com", "from": "Levqor Security <security@levqor.example>", "subject": "s", "text": "t", "connection": "marketing"}`); err != nil {
		t.Fatalf("send: %v", err)
	}
	if got := b.fake.Sent()[0].From; got != "Levqor Security <security@levqor.example>" {
		t.Errorf("from %q", got)
	}
}

func TestDefaultFrom(t *testing.T) {
	b := setup(t, func(c *email.Config) { c.DefaultFrom = "billing@levqor.example" })
	if _, err := b.run(b.ctx(), `{"to": "a@example.com", "subject": "s", "html": "<b>h</b>"}`); err != nil {
		t.Fatalf("send: %v", err)
	}
	if got := b.fake.Sent()[0].From; got != "billing@levqor.example" {
		t.Errorf("from %q, want the configured default", got)
	}
}

func TestSendTemplate(t *testing.T) {
	b := setup(t)
	_, err := b.run(b.ctx(), `{"to": "a@example.com", "template": "job_failed",
		"data": {"job_id": "job_42", "name": "<script>alert(1)</script>", "error_code": "timeout"}}`)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	got := b.fake.Sent()[0]
	if got.Subject != "Job job_42 failed" {
		t.Errorf("subject %q", got.Subject)
	}
	if strings.Contains(got.HTML, "<script>") || !strings.Contains(got.HTML, "&lt;script&gt;") {
		t.Error("the html does not escape the data")
	}
	if !strings.Contains(got.Text, "job_42") || !strings.Contains(got.HTML, publicURL+"/docs") {
		t.Errorf("text or html lacks the job or the public URL:\n%s", got.Text)
	}
}

func TestRetriedStepSendsOnce(t *testing.T) {
	b := setup(t)
	input := `{"to": "a@example.com", "subject": "Once", "text": "only once"}`
	out1, err := b.run(b.ctx(), input)
	if err != nil {
		t.Fatalf("first attempt: %v", err)
	}
	retry := b.step
	retry.Attempt = 2
	out2, err := b.reg.Run(connectors.WithStep(context.Background(), retry), email.Name, "send", json.RawMessage(input))
	if err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	if outputID(t, out1) != outputID(t, out2) {
		t.Errorf("the retry got id %s, the first attempt %s", out2, out1)
	}
	if n := len(b.fake.Sent()); n != 1 {
		t.Fatalf("the fake sent %d emails after a retried step, want 1", n)
	}
	if n := b.fake.Requests(); n != 2 {
		t.Errorf("the fake saw %d requests, want 2 (the retry must reach Resend, which dedupes)", n)
	}

	other := b.step
	other.StepID = "notify-again"
	if _, err := b.reg.Run(connectors.WithStep(context.Background(), other), email.Name, "send", json.RawMessage(input)); err != nil {
		t.Fatalf("another step: %v", err)
	}
	if n := len(b.fake.Sent()); n != 2 {
		t.Errorf("a different step sent %d emails in all, want 2", n)
	}
}

func TestRetriedStepWithChangedInput(t *testing.T) {
	b := setup(t)
	if _, err := b.run(b.ctx(), `{"to": "a@example.com", "subject": "One", "text": "x"}`); err != nil {
		t.Fatal(err)
	}
	_, err := b.run(b.ctx(), `{"to": "a@example.com", "subject": "Two", "text": "x"}`)
	se := stepError(t, err)
	if se.Code != email.CodeIdempotencyConflict || se.Retryable {
		t.Fatalf("got %+v, want a final idempotency_conflict", se)
	}
	if len(b.fake.Sent()) != 1 {
		t.Error("the changed retry was sent")
	}
}

func TestVendorErrors(t *testing.T) {
	big := `{"id": "` + strings.Repeat("a", 70<<10) + `"}`
	tests := []struct {
		name        string
		reply       resendtest.Reply
		code        string
		retryable   bool
		retryAfter  time.Duration
		msgContains []string
	}{
		{"rate limited, Retry-After", resendtest.Reply{Status: 429, Name: "rate_limit_exceeded", Message: "Too many requests.",
			Header: map[string]string{"Retry-After": "7", "ratelimit-reset": "3"}}, email.CodeRateLimited, true, 7 * time.Second, []string{"429 rate_limit_exceeded"}},
		{"rate limited, ratelimit-reset", resendtest.Reply{Status: 429, Name: "rate_limit_exceeded", Message: "Too many requests.",
			Header: map[string]string{"ratelimit-reset": "3"}}, email.CodeRateLimited, true, 3 * time.Second, nil},
		{"rate limited, huge Retry-After is capped", resendtest.Reply{Status: 429, Name: "rate_limit_exceeded",
			Header: map[string]string{"Retry-After": "999999"}}, email.CodeRateLimited, true, time.Hour, nil},
		{"daily quota", resendtest.Reply{Status: 429, Name: "daily_quota_exceeded", Message: "You have reached your daily email sending quota."},
			email.CodeRateLimited, false, 0, []string{"quota", "daily_quota_exceeded"}},
		{"missing key", resendtest.Reply{Status: 401, Name: "missing_api_key", Message: "Missing API key in the authorization header."},
			email.CodeAuthFailed, false, 0, []string{"401 missing_api_key"}},
		{"restricted key", resendtest.Reply{Status: 401, Name: "restricted_api_key", Message: "This API key is restricted to only send emails."},
			email.CodeAuthFailed, false, 0, []string{"restricted_api_key"}},
		{"validation 422", resendtest.Reply{Status: 422, Name: "validation_error", Message: "Invalid `to` field."},
			email.CodeBadRequest, false, 0, []string{"422 validation_error", "Invalid `to` field."}},
		{"validation 400", resendtest.Reply{Status: 400, Name: "validation_error", Message: "We found an error with one or more fields in the request."},
			email.CodeBadRequest, false, 0, []string{"400 validation_error"}},
		{"missing field 422", resendtest.Reply{Status: 422, Name: "missing_required_field", Message: "Missing `subject` field."},
			email.CodeBadRequest, false, 0, []string{"missing_required_field"}},
		{"idempotency mismatch", resendtest.Reply{Status: 409, Name: "invalid_idempotent_request", Message: "Same idempotency key used with a different request payload."},
			email.CodeIdempotencyConflict, false, 0, []string{"409 invalid_idempotent_request", "not sent again"}},
		{"idempotency in progress", resendtest.Reply{Status: 409, Name: "concurrent_idempotent_requests", Message: "Same idempotency key used while original request is still in progress."},
			email.CodeIdempotencyConflict, true, 2 * time.Second, []string{"concurrent_idempotent_requests"}},
		{"server error", resendtest.Reply{Status: 500, Name: "internal_server_error", Message: "Unexpected error."},
			connectors.CodeUpstreamError, true, 0, []string{"500 internal_server_error"}},
		{"gateway error, not JSON", resendtest.Reply{Status: 502, Raw: "<html>Bad Gateway</html>"},
			connectors.CodeUpstreamError, true, 0, []string{"502"}},
		{"wrong base URL", resendtest.Reply{Status: 404, Name: "not_found", Message: "The requested endpoint does not exist."},
			connectors.CodeUpstreamError, false, 0, []string{"LEVQOR_RESEND_BASE_URL"}},
		{"malformed 200", resendtest.Reply{Status: 200, Raw: "this is not json"},
			connectors.CodeUpstreamError, true, 0, []string{"could not be read"}},
		{"200 without id", resendtest.Reply{Status: 200, Raw: `{"object": "email"}`},
			connectors.CodeUpstreamError, true, 0, nil},
		{"200 with a hostile id", resendtest.Reply{Status: 200, Raw: `{"id": "<img src=x>"}`},
			connectors.CodeUpstreamError, true, 0, nil},
		{"oversized response", resendtest.Reply{Status: 200, Raw: big},
			connectors.CodeResponseTooLarge, false, 0, nil},
		{"oversized error", resendtest.Reply{Status: 500, Raw: `{"message": "` + strings.Repeat("x", 70<<10) + `"}`},
			connectors.CodeResponseTooLarge, false, 0, nil},
		{"message echoing the key", resendtest.Reply{Status: 422, Name: "validation_error", Message: "key " + testKey + " and re_abcdefghijkl are wrong\r\nBcc: x"},
			email.CodeBadRequest, false, 0, []string{"[redacted]"}},
		{"auth message echoing the key", resendtest.Reply{Status: 403, Name: "invalid_api_key", Message: "API key " + testKey + " is invalid"},
			email.CodeAuthFailed, false, 0, []string{"403 invalid_api_key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			b.fake.Script(tt.reply)
			out, err := b.run(b.ctx(), `{"to": "a@example.com", "subject": "s", "text": "t"}`)
			if err == nil {
				t.Fatalf("no error; output %s", out)
			}
			se := stepError(t, err)
			if se.Code != tt.code || se.Retryable != tt.retryable || se.RetryAfter != tt.retryAfter {
				t.Errorf("got code %s retryable %v retry-after %v (%q), want %s %v %v",
					se.Code, se.Retryable, se.RetryAfter, se.Message, tt.code, tt.retryable, tt.retryAfter)
			}
			for _, want := range tt.msgContains {
				if !strings.Contains(se.Message, want) {
					t.Errorf("message %q lacks %q", se.Message, want)
				}
			}
			if strings.Contains(se.Error(), testKey) || strings.Contains(se.Error(), "re_abcdefghijkl") || strings.ContainsAny(se.Message, "\r\n") {
				t.Errorf("message %q leaks a key or a control character", se.Message)
			}
			if len(b.fake.Sent()) != 0 {
				t.Error("the fake sent an email")
			}
		})
	}
}

func TestBadKeyAndUnverifiedDomain(t *testing.T) {
	b := setup(t)
	_, err := b.run(b.ctx(), `{"to": "a@example.com", "subject": "s", "text": "t", "connection": "wrong"}`)
	se := stepError(t, err)
	if se.Code != email.CodeAuthFailed || se.Retryable {
		t.Errorf("wrong key: got %+v, want a final auth_failed", se)
	}
	if strings.Contains(se.Error(), otherKey) {
		t.Error("the error holds the key")
	}

	b.fake.VerifiedDomains("elsewhere.example")
	_, err = b.run(b.ctx(), `{"to": "a@example.com", "subject": "s", "text": "t"}`)
	se = stepError(t, err)
	if se.Code != email.CodeBadRequest || se.Retryable || !strings.Contains(se.Message, "403 validation_error") || !strings.Contains(se.Message, "not verified") {
		t.Errorf("unverified domain: got %+v, want a final bad_request with Resend's explanation", se)
	}
	if len(b.fake.Sent()) != 0 {
		t.Error("the fake sent an email")
	}
}

func TestTimeouts(t *testing.T) {
	t.Run("step deadline", func(t *testing.T) {
		b := setup(t)
		b.fake.Script(resendtest.Reply{Status: 200, Raw: `{"id": "late"}`, Delay: 5 * time.Second})
		ctx, cancel := context.WithTimeout(b.ctx(), 100*time.Millisecond)
		defer cancel()
		_, err := b.run(ctx, `{"to": "a@example.com", "subject": "s", "text": "t"}`)
		if se := stepError(t, err); se.Code != connectors.CodeTimeout || !se.Retryable {
			t.Errorf("got %+v, want a retryable timeout", se)
		}
	})
	t.Run("HTTP client timeout", func(t *testing.T) {
		b := setup(t, func(c *email.Config) { c.HTTPClient = &http.Client{Timeout: 100 * time.Millisecond} })
		b.fake.Script(resendtest.Reply{Status: 200, Raw: `{"id": "late"}`, Delay: 5 * time.Second})
		_, err := b.run(b.ctx(), `{"to": "a@example.com", "subject": "s", "text": "t"}`)
		if se := stepError(t, err); se.Code != connectors.CodeTimeout || !se.Retryable {
			t.Errorf("got %+v, want a retryable timeout", se)
		}
	})
}

func TestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	b := setup(t, func(c *email.Config) { c.BaseURL = url })
	_, err := b.run(b.ctx(), `{"to": "a@example.com", "subject": "s", "text": "t"}`)
	if se := stepError(t, err); se.Code != connectors.CodeUpstreamError || !se.Retryable {
		t.Errorf("got %+v, want a retryable upstream_error", se)
	}
}

func TestCredentials(t *testing.T) {
	input := func(connection string) string {
		s := `{"to": "a@example.com", "subject": "s", "text": "t"`
		if connection != "" {
			s += `, "connection": "` + connection + `"`
		}
		return s + "}"
	}
	tests := []struct {
		name       string
		owner      string
		connection string
		storeErr   error
		code       string
		retryable  bool
	}{
		{"owner without connections", "usr_2", "", nil, connectors.CodeNoCredentials, false},
		{"no such named connection", "usr_1", "nope", nil, connectors.CodeNoCredentials, false},
		{"connection without api_key", "usr_1", "empty", nil, connectors.CodeNoCredentials, false},
		{"store failure", "usr_1", "", errors.New("database is locked: secret-detail"), connectors.CodeUpstreamError, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			b.creds.Fail(tt.storeErr)
			b.step.OwnerID = tt.owner
			_, err := b.run(b.ctx(), input(tt.connection))
			se := stepError(t, err)
			if se.Code != tt.code || se.Retryable != tt.retryable {
				t.Errorf("got %+v, want %s retryable=%v", se, tt.code, tt.retryable)
			}
			if strings.Contains(se.Message, "secret-detail") {
				t.Error("the store's error text reached the message")
			}
			if b.fake.Requests() != 0 {
				t.Error("a request reached Resend")
			}
		})
	}
}

func TestNoStep(t *testing.T) {
	b := setup(t)
	_, err := b.run(context.Background(), `{"to": "a@example.com", "subject": "s", "text": "t"}`)
	if se := stepError(t, err); se.Code != email.CodeNoStep {
		t.Errorf("got %+v, want no_step", se)
	}
	if b.creds.Calls() != 0 || b.fake.Requests() != 0 {
		t.Error("credentials were resolved or Resend was called without a step")
	}
}

func TestInvalidInput(t *testing.T) {
	many := make([]string, 51)
	for i := range many {
		many[i] = fmt.Sprintf(`"r%d@example.com"`, i)
	}
	tests := []struct{ name, input, want string }{
		{"sender not allowed", `{"to": "a@example.com", "from": "ceo@evil.example", "subject": "s", "text": "t"}`, "/from"},
		{"sender with another display name", `{"to": "a@example.com", "from": "PayPal <no-reply@levqor.example>", "subject": "s", "text": "t"}`, "/from"},
		{"CRLF in subject", `{"to": "a@example.com", "subject": "Hi\r\nBcc: victim@example.com", "text": "t"}`, "/subject"},
		{"LF in subject", `{"to": "a@example.com", "subject": "Hi\nX-Injected: 1", "text": "t"}`, "/subject"},
		{"CRLF in to", `{"to": "a@example.com\r\nBcc: victim@example.com", "subject": "s", "text": "t"}`, "/to"},
		{"CRLF in a to list", `{"to": ["a@example.com", "b@example.com\r\nBcc: v@example.com"], "subject": "s", "text": "t"}`, "/to/1"},
		{"LF in a display name", `{"to": "Eve\n <a@example.com>", "subject": "s", "text": "t"}`, "/to"},
		{"CR in reply_to", `{"to": "a@example.com", "reply_to": "r@example.com\rBcc: v@example.com", "subject": "s", "text": "t"}`, "/reply_to"},
		{"NUL in cc", "{\"to\": \"a@example.com\", \"cc\": \"c@example.com\\u0000\", \"subject\": \"s\", \"text\": \"t\"}", "/cc"},
		{"two addresses in one", `{"to": "a@example.com, victim@example.com", "subject": "s", "text": "t"}`, "to[0]"},
		{"not an address", `{"to": "nobody", "subject": "s", "text": "t"}`, "to[0]"},
		{"bad bcc", `{"to": "a@example.com", "bcc": ["ok@example.com", "<<>>"], "subject": "s", "text": "t"}`, "bcc[1]"},
		{"51 recipients", `{"to": [` + strings.Join(many, ",") + `], "subject": "s", "text": "t"}`, "/to"},
		{"no recipients", `{"to": [], "subject": "s", "text": "t"}`, "/to"},
		{"missing to", `{"subject": "s", "text": "t"}`, "(root)"},
		{"no content", `{"to": "a@example.com", "subject": "s"}`, "missing property 'text'"},
		{"no subject", `{"to": "a@example.com", "text": "t"}`, "(root)"},
		{"template and text", `{"to": "a@example.com", "template": "welcome", "text": "t"}`, "/text"},
		{"template and subject", `{"to": "a@example.com", "template": "welcome", "subject": "s"}`, "/subject"},
		{"data without template", `{"to": "a@example.com", "subject": "s", "text": "t", "data": {}}`, "(root)"},
		{"unknown template", `{"to": "a@example.com", "template": "invoice"}`, "/template"},
		{"template data missing", `{"to": "a@example.com", "template": "job_failed", "data": {}}`, "data.job_id is required"},
		{"template data wrong type", `{"to": "a@example.com", "template": "budget_threshold", "data": {"percent": "80", "period": "daily", "limit_usd": 10}}`, "data.percent must be a number"},
		{"template data unknown field", `{"to": "a@example.com", "template": "welcome", "data": {"nmae": "x"}}`, "data.nmae is not a field"},
		{"template data with a newline", `{"to": "a@example.com", "template": "welcome", "data": {"name": "Ada\r\nBcc: x"}}`, "data.name must be one line"},
		{"subject too long", `{"to": "a@example.com", "subject": "` + strings.Repeat("s", 999) + `", "text": "t"}`, "/subject"},
		{"text too long", `{"to": "a@example.com", "subject": "s", "text": "` + strings.Repeat("t", email.MaxBodyBytes+1) + `"}`, "/text"},
		{"unknown field", `{"to": "a@example.com", "subject": "s", "text": "t", "headers": {"X": "1"}}`, "(root)"},
		{"wrong type", `{"to": 42, "subject": "s", "text": "t"}`, "/to"},
		{"not an object", `["to"]`, "(root)"},
		{"not JSON", `{"to": `, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			_, err := b.run(b.ctx(), tt.input)
			se := stepError(t, err)
			if se.Code != connectors.CodeInvalidInput || se.Retryable {
				t.Fatalf("got %+v, want a final invalid_input", se)
			}
			if !strings.Contains(se.Message, tt.want) {
				t.Errorf("message %q lacks %q", se.Message, tt.want)
			}
			if strings.Contains(se.Message, "victim@") {
				t.Errorf("message %q repeats the input", se.Message)
			}
			if b.fake.Requests() != 0 || b.creds.Calls() != 0 {
				t.Error("an invalid step resolved credentials or reached Resend")
			}
		})
	}
}

// TestRunChecksWithoutRegistry calls Run directly, as nothing stops a caller from doing:
// the connector's own checks must hold without the schema in front of them.
func TestRunChecksWithoutRegistry(t *testing.T) {
	tests := []struct{ name, input, want string }{
		{"sender not allowed", `{"to": "a@example.com", "from": "ceo@evil.example", "subject": "s", "text": "t"}`, "from must be one of"},
		{"CRLF in subject", `{"to": "a@example.com", "subject": "Hi\r\nBcc: v@example.com", "text": "t"}`, "subject must be one line"},
		{"CRLF in to", `{"to": "a@example.com\r\nBcc: v@example.com", "subject": "s", "text": "t"}`, "to[0] is not one valid"},
		{"no content", `{"to": "a@example.com", "subject": "s"}`, "give text, html or both"},
		{"template and text", `{"to": "a@example.com", "template": "welcome", "text": "t"}`, "either a template"},
		{"unknown template", `{"to": "a@example.com", "template": "invoice"}`, "unknown template"},
		{"too many recipients", `{"to": [` + strings.Repeat(`"a@example.com",`, 50) + `"a@example.com"], "subject": "s", "text": "t"}`, "to must hold 1 to 50"},
		{"long connection", `{"to": "a@example.com", "subject": "s", "text": "t", "connection": "` + strings.Repeat("c", 65) + `"}`, "connection must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			_, err := b.conn.Run(b.ctx(), "send", json.RawMessage(tt.input))
			se := stepError(t, err)
			if se.Code != connectors.CodeInvalidInput || !strings.Contains(se.Message, tt.want) {
				t.Errorf("got %+v, want invalid_input with %q", se, tt.want)
			}
			if b.fake.Requests() != 0 {
				t.Error("the request reached Resend")
			}
		})
	}
	b := setup(t)
	if _, err := b.conn.Run(b.ctx(), "receive", json.RawMessage(`{}`)); stepError(t, err).Code != connectors.CodeUnknownAction {
		t.Errorf("unknown action: %v", err)
	}
}

func TestCatalogue(t *testing.T) {
	b := setup(t)
	cat := b.reg.Catalogue()
	if len(cat) != 1 || cat[0].Connector != "email" || !slices.Equal(cat[0].CredentialFields, []string{"api_key"}) {
		t.Fatalf("catalogue %+v", cat)
	}
	if len(cat[0].Actions) != 1 || cat[0].Actions[0].Name != "send" {
		t.Fatalf("actions %+v", cat[0].Actions)
	}
	var schema struct {
		Properties map[string]struct {
			Enum []string `json:"enum"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(cat[0].Actions[0].InputSchema, &schema); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(schema.Properties["from"].Enum, senders) {
		t.Errorf("from enum %v, want the senders", schema.Properties["from"].Enum)
	}
	if !slices.Contains(schema.Properties["template"].Enum, "budget_threshold") {
		t.Errorf("template enum %v", schema.Properties["template"].Enum)
	}
}

func TestNewRejects(t *testing.T) {
	creds := connectortest.NewCredentials()
	tests := []struct {
		name string
		cfg  email.Config
	}{
		{"no credentials", email.Config{Senders: senders, PublicURL: publicURL}},
		{"no senders", email.Config{Credentials: creds, PublicURL: publicURL}},
		{"bad sender", email.Config{Credentials: creds, Senders: []string{"not an address"}, PublicURL: publicURL}},
		{"default not a sender", email.Config{Credentials: creds, Senders: senders, DefaultFrom: "x@levqor.example", PublicURL: publicURL}},
		{"bad base URL", email.Config{BaseURL: "ftp://resend", Credentials: creds, Senders: senders, PublicURL: publicURL}},
		{"base URL with credentials", email.Config{BaseURL: "https://u:p@resend.example", Credentials: creds, Senders: senders, PublicURL: publicURL}},
		{"no public URL", email.Config{Credentials: creds, Senders: senders}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := email.New(tt.cfg); err == nil {
				t.Error("New accepted the config")
			}
		})
	}
}

func TestBaseURLWithPath(t *testing.T) {
	fake := resendtest.New(t, testKey)
	// A gateway mounting Resend under a path: the base has no trailing slash.
	proxy := httptest.NewServer(http.StripPrefix("/resend", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2, _ := http.NewRequestWithContext(r.Context(), r.Method, strings.TrimSuffix(fake.URL, "/")+r.URL.Path, r.Body)
		r2.Header = r.Header
		resp, err := http.DefaultClient.Do(r2)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		w.Write(buf[:n])
	})))
	t.Cleanup(proxy.Close)
	b := setup(t, func(c *email.Config) { c.BaseURL = proxy.URL + "/resend" })
	b.fake = fake
	if _, err := b.run(b.ctx(), `{"to": "a@example.com", "subject": "s", "text": "t"}`); err != nil {
		t.Fatalf("send through a base path: %v", err)
	}
	if len(fake.Sent()) != 1 {
		t.Error("the email did not reach /resend/emails")
	}
}

// FuzzSendInput feeds arbitrary step inputs through the registry and the connector's own
// checks: every input either fails as invalid_input or reaches the (absent) step check,
// and none reaches Resend.
func FuzzSendInput(f *testing.F) {
	for _, s := range []string{
		`{"to": "a@example.com", "subject": "s", "text": "t"}`,
		`{"to": ["a@example.com"], "template": "welcome", "data": {"name": "x"}}`,
		`{"to": "a@example.com\r\nBcc: b@example.com", "subject": "s", "text": "t"}`,
		`{"to": "a@example.com", "from": "no-reply@levqor.example", "subject": "s\n", "html": "<p>"}`,
		`{"to": "a@example.com", "template": "budget_threshold", "data": {"percent": 1e400}}`,
		`{"to": "a@example.com", "template": "payment_failed", "data": {"amount": -1, "currency": "usd"}}`,
		`{"to": "\"a,b\" <a@example.com>", "cc": "", "subject": "s", "text": "t"}`,
		`null`, `[]`, `{`,
	} {
		f.Add(s)
	}
	b := setup(f)
	f.Fuzz(func(t *testing.T, input string) {
		_, err := b.run(context.Background(), input)
		se := stepError(t, err)
		if se.Code != connectors.CodeInvalidInput && se.Code != email.CodeNoStep {
			t.Fatalf("input %q: got %+v, want invalid_input or no_step", input, se)
		}
		if b.fake.Requests() != 0 {
			t.Fatal("an input reached Resend")
		}
	})
}
