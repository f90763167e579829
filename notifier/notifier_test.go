package notifier_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/resendapi"
	"github.com/levqor/levqor/resendapi/resendtest"
)

const (
	testKey   = "re_notifier_8d7c6b5a4f3e"
	domain    = "levqor.example"
	publicURL = "https://levqor.example"
	recipient = "ada.lovelace@example.org"
)

// logs captures the notifier's JSON log lines.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) raw() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logs) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.raw()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// count returns how many records have msg (and level, unless "").
func (l *logs) count(t *testing.T, level, msg string) int {
	n := 0
	for _, r := range l.records(t) {
		if r["msg"] == msg && (level == "" || r["level"] == level) {
			n++
		}
	}
	return n
}

type bundle struct {
	fake *resendtest.Server
	logs *logs
	n    *notifier.Notifier
}

func setup(t *testing.T, mutate ...func(*notifier.Config)) *bundle {
	t.Helper()
	b := &bundle{fake: resendtest.New(t, testKey), logs: &logs{}}
	cfg := notifier.Config{
		BaseURL:    b.fake.URL,
		APIKey:     testKey,
		Domain:     domain,
		PublicURL:  publicURL,
		Logger:     slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RetryDelay: time.Millisecond,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	n, err := notifier.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	b.n = n
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Close(ctx)
		if strings.Contains(b.logs.raw(), testKey) {
			t.Error("the logs hold the API key")
		}
		if strings.Contains(b.logs.raw(), recipient) {
			t.Error("the logs hold a recipient's address")
		}
	})
	return b
}

func (b *bundle) close(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.n.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestRenderEveryTemplate(t *testing.T) {
	names := notifier.Templates()
	if len(names) != 7 {
		t.Fatalf("templates %v, want seven", names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			data := notifier.ExampleData(name)
			data["name"] = `<script>alert("x")</script> & Co`
			c, err := notifier.Render(name, data, publicURL+"/")
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if c.Subject == "" || strings.ContainsAny(c.Subject, "\r\n") {
				t.Errorf("subject %q", c.Subject)
			}
			if strings.Contains(c.HTML, "<script>") || !strings.Contains(c.HTML, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co") {
				t.Errorf("the HTML does not escape the name:\n%s", c.HTML)
			}
			if !strings.Contains(c.Text, `<script>alert("x")</script> & Co`) {
				t.Errorf("the text part lacks the name as written:\n%s", c.Text)
			}
			if strings.Contains(c.Text, "<p") || strings.Contains(c.Text, "&lt;") || len(c.Text) < 100 {
				t.Errorf("the text part is not plain text:\n%s", c.Text)
			}
			for _, want := range []string{"<!DOCTYPE html>", "Levqor", `href="` + publicURL + `/legal/privacy"`, "<title>" + htmlEscape(c.Subject) + "</title>"} {
				if !strings.Contains(c.HTML, want) {
					t.Errorf("the HTML lacks %q", want)
				}
			}
			if !strings.Contains(c.Text, publicURL+"/docs") || strings.Contains(c.Text, publicURL+"//") {
				t.Errorf("the text part's links are not rooted at the public URL:\n%s", c.Text)
			}
		})
	}
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

func TestRenderContent(t *testing.T) {
	c, err := notifier.Render(notifier.BudgetThreshold, map[string]any{"percent": 80, "period": "monthly", "limit_usd": 200, "spent_usd": 160.5}, publicURL)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "You have used 80% of your monthly AI budget" {
		t.Errorf("subject %q", c.Subject)
	}
	for _, want := range []string{"$200.00", "$160.50", "month ends"} {
		if !strings.Contains(c.Text, want) || !strings.Contains(c.HTML, want) {
			t.Errorf("text or HTML lacks %q", want)
		}
	}
	c, err = notifier.Render(notifier.PaymentFailed, map[string]any{"amount": 12.5, "currency": "eur"}, publicURL)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "Your payment of 12.50 EUR failed" || strings.Contains(c.Text, "<no value>") || strings.Contains(c.HTML, "<no value>") {
		t.Errorf("subject %q; text:\n%s", c.Subject, c.Text)
	}
}

// approvalData is the approval template's example with message.
func approvalData(message string) map[string]any {
	d := notifier.ExampleData(notifier.ApprovalRequest)
	d["message"] = message
	return d
}

// An approval request keeps the message's lines (an AI draft to review), escaped in
// the HTML, and links to the approval page.
func TestRenderApprovalRequest(t *testing.T) {
	c, err := notifier.Render(notifier.ApprovalRequest, approvalData("Dear <ACME>,\r\n\n\tthe fix ships Monday & not later.\nBye"), publicURL)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "Approval needed: Send this reply to ACME?" {
		t.Errorf("subject %q", c.Subject)
	}
	if !strings.Contains(c.Text, "Dear <ACME>,\n\n\tthe fix ships Monday & not later.\nBye") {
		t.Errorf("the text part does not keep the message's lines:\n%s", c.Text)
	}
	if !strings.Contains(c.HTML, "Dear &lt;ACME&gt;,\n\n\tthe fix ships Monday &amp; not later.\nBye") || !strings.Contains(c.HTML, "white-space:pre-wrap") {
		t.Errorf("the HTML does not escape the message or keep its lines:\n%s", c.HTML)
	}
	link := publicURL + "/approvals/AbCdEf0123456789-_example"
	if !strings.Contains(c.Text, link) || !strings.Contains(c.HTML, `href="`+link+`"`) {
		t.Errorf("no link to %s:\n%s", link, c.Text)
	}
}

func TestRenderRejects(t *testing.T) {
	tests := []struct {
		name, template string
		data           map[string]any
		want           string
	}{
		{"unknown template", "invoice", nil, "unknown template"},
		{"missing required", notifier.JobFailed, map[string]any{}, "data.job_id is required"},
		{"null required", notifier.JobFailed, map[string]any{"job_id": nil}, "data.job_id is required"},
		{"unknown field", notifier.Welcome, map[string]any{"nmae": "x"}, "data.nmae is not a field"},
		{"hostile unknown field", notifier.Welcome, map[string]any{"<b>\n": "x"}, "(an unknown field)"},
		{"number as string", notifier.BudgetThreshold, map[string]any{"percent": "80", "period": "daily", "limit_usd": 1}, "data.percent must be a number"},
		{"NaN", notifier.PaymentFailed, map[string]any{"amount": nan(), "currency": "USD"}, "data.amount must be a number"},
		{"out of range", notifier.BudgetThreshold, map[string]any{"percent": -1, "period": "daily", "limit_usd": 1}, "data.percent must be between"},
		{"bad period", notifier.BudgetThreshold, map[string]any{"percent": 1, "period": "weekly", "limit_usd": 1}, `data.period must be "daily"`},
		{"bad currency", notifier.PaymentConfirmation, map[string]any{"amount": 1, "currency": "dollars"}, "data.currency must be a three-letter"},
		{"string as number", notifier.Welcome, map[string]any{"name": 7}, "data.name must be a string"},
		{"newline in text", notifier.Welcome, map[string]any{"name": "Ada\r\nBcc: eve@example.com"}, "data.name must be one line"},
		{"blank text", notifier.Welcome, map[string]any{"name": "  "}, "data.name must not be empty"},
		{"too long", notifier.Welcome, map[string]any{"name": strings.Repeat("a", 101)}, "data.name must be at most 100"},
		{"bad id", notifier.JobFailed, map[string]any{"job_id": "job 1"}, "data.job_id must be 1 to 64"},
		{"control in paragraphs", notifier.ApprovalRequest, approvalData("line\x1b[31m"), "data.message must be text without control"},
		{"paragraphs too long", notifier.ApprovalRequest, approvalData(strings.Repeat("é", notifier.MaxParagraphs+1)), "data.message must be at most 20000"},
		{"blank paragraphs", notifier.ApprovalRequest, approvalData(" \r\n "), "data.message must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := notifier.Render(tt.template, tt.data, publicURL)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Render: %v, want an error with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "eve@") {
				t.Errorf("the error %q repeats the value", err)
			}
		})
	}
}

func nan() float64 {
	var zero float64
	return zero / zero
}

func TestSendersPerTemplate(t *testing.T) {
	want := map[string]struct{ from, replyTo string }{
		notifier.Welcome:             {"Levqor Support <support@levqor.example>", ""},
		notifier.JobFailed:           {"Levqor <no-reply@levqor.example>", "support@levqor.example"},
		notifier.BudgetThreshold:     {"Levqor Billing <billing@levqor.example>", ""},
		notifier.PaymentConfirmation: {"Levqor Billing <billing@levqor.example>", ""},
		notifier.PaymentFailed:       {"Levqor Billing <billing@levqor.example>", ""},
		notifier.NewsletterConfirm:   {"Levqor <no-reply@levqor.example>", "support@levqor.example"},
		notifier.ApprovalRequest:     {"Levqor <no-reply@levqor.example>", ""},
	}
	b := setup(t)
	for _, name := range notifier.Templates() {
		id, err := b.n.Send(context.Background(), notifier.Message{Template: name, To: recipient, Data: notifier.ExampleData(name)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sent := b.fake.Sent()
		got := sent[len(sent)-1]
		if got.ID != id {
			t.Errorf("%s: Send returned %q, the fake sent %q", name, id, got.ID)
		}
		w, ok := want[name]
		if !ok {
			t.Fatalf("no expectation for template %s", name)
		}
		if got.From != w.from || got.ReplyTo != w.replyTo || len(got.To) != 1 || got.To[0] != recipient {
			t.Errorf("%s: from %q reply-to %q to %v, want %q %q", name, got.From, got.ReplyTo, got.To, w.from, w.replyTo)
		}
		if got.Text == "" || got.HTML == "" || got.Subject == "" || got.IdempotencyKey == "" {
			t.Errorf("%s: sent %+v lacks a part", name, got)
		}
	}
}

func TestSendErrors(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	if _, err := b.n.Send(ctx, notifier.Message{Template: notifier.Welcome, To: "not an address"}); !errors.Is(err, notifier.ErrBadRecipient) {
		t.Errorf("bad recipient: %v", err)
	}
	if _, err := b.n.Send(ctx, notifier.Message{Template: notifier.Welcome, To: "a@example.com, b@example.com"}); !errors.Is(err, notifier.ErrBadRecipient) {
		t.Errorf("two recipients: %v", err)
	}
	if _, err := b.n.Send(ctx, notifier.Message{Template: "nope", To: recipient}); !errors.Is(err, notifier.ErrUnknownTemplate) {
		t.Errorf("unknown template: %v", err)
	}
	var de *notifier.DataError
	if _, err := b.n.Send(ctx, notifier.Message{Template: notifier.JobFailed, To: recipient}); !errors.As(err, &de) {
		t.Errorf("missing data: %v", err)
	}
	b.fake.Script(resendtest.Reply{Status: 422, Name: "validation_error", Message: "Invalid `to` field."})
	_, err := b.n.Send(ctx, notifier.Message{Template: notifier.Welcome, To: recipient})
	var re *resendapi.Error
	if !errors.As(err, &re) || re.Kind != resendapi.KindInvalid || re.Retryable() {
		t.Errorf("vendor refusal: %v", err)
	}
	if b.fake.Requests() != 1 || len(b.fake.Sent()) != 0 {
		t.Errorf("%d requests, %d sent; want 1 and 0 (Send does not retry)", b.fake.Requests(), len(b.fake.Sent()))
	}
}

func TestSendIdempotencyKey(t *testing.T) {
	b := setup(t)
	msg := notifier.Message{Template: notifier.Welcome, To: recipient, IdempotencyKey: "welcome/usr_1"}
	id1, err1 := b.n.Send(context.Background(), msg)
	id2, err2 := b.n.Send(context.Background(), msg)
	if err1 != nil || err2 != nil || id1 != id2 {
		t.Fatalf("ids %q %q, errors %v %v", id1, id2, err1, err2)
	}
	if n := len(b.fake.Sent()); n != 1 {
		t.Errorf("sent %d welcomes under one key, want 1", n)
	}
	msg.IdempotencyKey = strings.Repeat("k", 257)
	if _, err := b.n.Send(context.Background(), msg); err == nil {
		t.Error("an over-long key was accepted")
	}
}

func TestEnqueueRetriesThenSucceeds(t *testing.T) {
	b := setup(t)
	b.fake.Script(
		resendtest.Reply{Status: 500, Name: "internal_server_error", Message: "Unexpected error."},
		resendtest.Reply{Status: 429, Name: "rate_limit_exceeded", Message: "Too many requests."},
	)
	if err := b.n.Enqueue(notifier.Message{Template: notifier.JobFailed, To: recipient, Data: map[string]any{"job_id": "job_9"}}); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	b.close(t)
	if n := len(b.fake.Sent()); n != 1 {
		t.Fatalf("sent %d, want 1", n)
	}
	keys := b.fake.IdempotencyKeys()
	if len(keys) != 3 || keys[0] == "" || keys[1] != keys[0] || keys[2] != keys[0] {
		t.Errorf("idempotency keys of the attempts: %q; want three equal ones", keys)
	}
	if got := b.logs.count(t, "WARN", "email send failed; retrying"); got != 2 {
		t.Errorf("%d retry lines, want 2:\n%s", got, b.logs.raw())
	}
	var sent map[string]any
	for _, r := range b.logs.records(t) {
		if r["msg"] == "email sent" {
			sent = r
		}
	}
	if sent == nil || sent["attempts"] != float64(3) || sent["to_domain"] != "example.org" || sent["template"] != notifier.JobFailed || sent["email_id"] != b.fake.Sent()[0].ID {
		t.Errorf("the success line is %v", sent)
	}
}

func TestPermanentFailureLoggedOnce(t *testing.T) {
	b := setup(t)
	b.fake.Script(resendtest.Reply{Status: 422, Name: "validation_error", Message: "Invalid `to` field, key " + testKey})
	if err := b.n.Enqueue(notifier.Message{Template: notifier.Welcome, To: recipient}); err != nil {
		t.Fatal(err)
	}
	b.close(t)
	if n := b.fake.Requests(); n != 1 {
		t.Errorf("%d requests, want 1: a refused email is not retried", n)
	}
	recs := b.logs.records(t)
	if len(recs) != 1 || recs[0]["level"] != "ERROR" || recs[0]["msg"] != "email not sent" {
		t.Fatalf("want exactly one error line, got:\n%s", b.logs.raw())
	}
	if e, _ := recs[0]["error"].(string); !strings.Contains(e, "422 validation_error") || !strings.Contains(e, "[redacted]") {
		t.Errorf("the error line says %q", e)
	}
}

func TestRetriesRunOut(t *testing.T) {
	b := setup(t, func(c *notifier.Config) { c.MaxAttempts = 3 })
	for range 5 {
		b.fake.Script(resendtest.Reply{Status: 503, Raw: "upstream down"})
	}
	if err := b.n.Enqueue(notifier.Message{Template: notifier.Welcome, To: recipient}); err != nil {
		t.Fatal(err)
	}
	b.close(t)
	if n := b.fake.Requests(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	if w, e := b.logs.count(t, "WARN", "email send failed; retrying"), b.logs.count(t, "ERROR", "email not sent"); w != 2 || e != 1 {
		t.Errorf("%d retry lines and %d failure lines, want 2 and 1:\n%s", w, e, b.logs.raw())
	}
}

func TestBadKeyNeverLogged(t *testing.T) {
	b := setup(t, func(c *notifier.Config) { c.APIKey = "re_wrong_key_1234567890" })
	if err := b.n.Enqueue(notifier.Message{Template: notifier.Welcome, To: recipient}); err != nil {
		t.Fatal(err)
	}
	b.close(t)
	if b.fake.Requests() != 1 || b.logs.count(t, "ERROR", "email not sent") != 1 {
		t.Fatalf("an auth failure must fail once without retries:\n%s", b.logs.raw())
	}
	if strings.Contains(b.logs.raw(), "re_wrong_key_1234567890") || !strings.Contains(b.logs.raw(), "invalid_api_key") {
		t.Errorf("logs:\n%s", b.logs.raw())
	}
}

// waitRequests waits until the fake has seen n requests.
func waitRequests(t *testing.T, fake *resendtest.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for fake.Requests() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the fake saw %d requests, want %d", fake.Requests(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestQueueFull(t *testing.T) {
	b := setup(t, func(c *notifier.Config) { c.QueueSize = 1 })
	// The first message holds the worker in a slow, failing attempt.
	b.fake.Script(resendtest.Reply{Status: 503, Raw: "slow", Delay: 200 * time.Millisecond})
	msg := notifier.Message{Template: notifier.Welcome, To: recipient}
	if err := b.n.Enqueue(msg); err != nil {
		t.Fatal(err)
	}
	waitRequests(t, b.fake, 1)
	if err := b.n.Enqueue(msg); err != nil {
		t.Fatalf("second message: %v", err)
	}
	if err := b.n.Enqueue(msg); !errors.Is(err, notifier.ErrQueueFull) {
		t.Fatalf("third message: %v, want ErrQueueFull", err)
	}
	if n := b.logs.count(t, "WARN", "email dropped: the queue is full"); n != 1 {
		t.Errorf("%d queue-full lines, want 1:\n%s", n, b.logs.raw())
	}
	b.close(t)
	if n := len(b.fake.Sent()); n != 2 {
		t.Errorf("sent %d, want the 2 that were queued", n)
	}
}

func TestCloseDrains(t *testing.T) {
	b := setup(t)
	b.fake.Script(resendtest.Reply{Status: 500, Name: "internal_server_error", Delay: 50 * time.Millisecond})
	for i := range 5 {
		if err := b.n.Enqueue(notifier.Message{Template: notifier.JobFailed, To: recipient, Data: map[string]any{"job_id": "job_" + string(rune('a'+i))}}); err != nil {
			t.Fatal(err)
		}
	}
	b.close(t)
	if n := len(b.fake.Sent()); n != 5 {
		t.Fatalf("Close returned with %d of 5 sent", n)
	}
	if err := b.n.Enqueue(notifier.Message{Template: notifier.Welcome, To: recipient}); !errors.Is(err, notifier.ErrClosed) {
		t.Errorf("Enqueue after Close: %v, want ErrClosed", err)
	}
	if err := b.n.Close(context.Background()); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

func TestCloseGivesUp(t *testing.T) {
	b := setup(t)
	b.fake.Script(resendtest.Reply{Status: 200, Raw: `{"id": "never"}`, Delay: 10 * time.Second})
	for range 2 {
		if err := b.n.Enqueue(notifier.Message{Template: notifier.Welcome, To: recipient}); err != nil {
			t.Fatal(err)
		}
	}
	waitRequests(t, b.fake, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := b.n.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v after its deadline", d)
	}
	if n := b.logs.count(t, "WARN", "email dropped: the notifier closed before it was sent"); n != 2 {
		t.Errorf("%d dropped lines, want 2:\n%s", n, b.logs.raw())
	}
	if b.fake.Requests() != 1 {
		t.Errorf("%d requests; the second message must not be tried after Close gave up", b.fake.Requests())
	}
}

func TestDisabled(t *testing.T) {
	b := setup(t, func(c *notifier.Config) { c.APIKey = "" })
	if b.n.Enabled() {
		t.Fatal("enabled without a key")
	}
	msg := notifier.Message{Template: notifier.Welcome, To: recipient}
	if _, err := b.n.Send(context.Background(), msg); !errors.Is(err, notifier.ErrDisabled) {
		t.Errorf("Send: %v", err)
	}
	if err := b.n.Enqueue(msg); !errors.Is(err, notifier.ErrDisabled) {
		t.Errorf("Enqueue: %v", err)
	}
	b.close(t)
	if b.fake.Requests() != 0 {
		t.Error("a disabled notifier called Resend")
	}
	if b.logs.count(t, "INFO", "email dropped: system email is disabled") != 1 || !strings.Contains(b.logs.raw(), "system email is disabled: no Resend API key") {
		t.Errorf("logs:\n%s", b.logs.raw())
	}
}

func TestEnqueueRejectsBadMessages(t *testing.T) {
	b := setup(t)
	if err := b.n.Enqueue(notifier.Message{Template: notifier.JobFailed, To: recipient}); err == nil {
		t.Error("a message without its data was queued")
	}
	if err := b.n.Enqueue(notifier.Message{Template: notifier.Welcome, To: "ada\r\nBcc: eve@example.com"}); !errors.Is(err, notifier.ErrBadRecipient) {
		t.Errorf("bad recipient: %v", err)
	}
	b.close(t)
	if n := b.logs.count(t, "ERROR", "email not queued"); n != 2 {
		t.Errorf("%d lines, want 2:\n%s", n, b.logs.raw())
	}
	if b.fake.Requests() != 0 {
		t.Error("a bad message reached Resend")
	}
}

func TestNewRejects(t *testing.T) {
	for name, cfg := range map[string]notifier.Config{
		"no public URL":  {APIKey: testKey, Domain: domain},
		"relative URL":   {APIKey: testKey, Domain: domain, PublicURL: "/levqor"},
		"no domain":      {APIKey: testKey, PublicURL: publicURL},
		"address domain": {APIKey: testKey, Domain: "x@levqor.example", PublicURL: publicURL},
		"bad base URL":   {APIKey: testKey, Domain: domain, PublicURL: publicURL, BaseURL: "resend"},
	} {
		if _, err := notifier.New(cfg); err == nil {
			t.Errorf("%s: New accepted the config", name)
		}
	}
}

// FuzzRenderName checks that no name can open an element in the HTML part or break the
// subject onto a second line.
func FuzzRenderName(f *testing.F) {
	for _, s := range []string{"Ada", "<script>", `"><img src=x onerror=alert(1)>`, "a\r\nb", "\u2028", "{{.SiteURL}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name := "<x-lvq " + s
		for _, tmpl := range notifier.Templates() {
			data := notifier.ExampleData(tmpl)
			data["name"] = name
			c, err := notifier.Render(tmpl, data, publicURL)
			if err != nil {
				var de *notifier.DataError
				if !errors.As(err, &de) {
					t.Fatalf("%s: %v is not a DataError", tmpl, err)
				}
				continue
			}
			if strings.Contains(c.HTML, "<x-lvq") {
				t.Fatalf("%s: the name opened an element:\n%s", tmpl, c.HTML)
			}
			if strings.ContainsAny(c.Subject, "\r\n") {
				t.Fatalf("%s: subject %q", tmpl, c.Subject)
			}
		}
	})
}

type panickingTransport struct{}

func (panickingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	panic("transport exploded with " + testKey)
}

func TestWorkerSurvivesPanic(t *testing.T) {
	b := setup(t, func(c *notifier.Config) { c.HTTPClient = &http.Client{Transport: panickingTransport{}} })
	for range 2 {
		if err := b.n.Enqueue(notifier.Message{Template: notifier.Welcome, To: recipient}); err != nil {
			t.Fatal(err)
		}
	}
	b.close(t)
	if n := b.logs.count(t, "ERROR", "email not sent: the send panicked"); n != 2 {
		t.Errorf("%d panic lines, want 2 (the worker must go on after the first):\n%s", n, b.logs.raw())
	}
}
