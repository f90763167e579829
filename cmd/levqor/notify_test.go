package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/resendapi/resendtest"
	"github.com/levqor/levqor/store/storetest"
	"github.com/levqor/levqor/users"
)

// testNotifier is a notifier for levqor.ai sending through a local Resend fake.
func testNotifier(t *testing.T, apiKey string) (*notifier.Notifier, *resendtest.Server) {
	t.Helper()
	fake := resendtest.New(t, apiKey)
	n, err := notifier.New(notifier.Config{BaseURL: fake.URL, APIKey: fake.APIKey, Domain: "levqor.ai", PublicURL: "https://levqor.ai"})
	if err != nil {
		t.Fatal(err)
	}
	return n, fake
}

// TestBudgetThresholdMail: when an owner's settled spending reaches the soft threshold,
// the owner gets one billing email about that period; a second settlement in the same
// period sends nothing more.
func TestBudgetThresholdMail(t *testing.T) {
	n, fake := testNotifier(t, "re_threshold_key")
	st := storetest.OpenSQLite(t)
	ctx := context.Background()
	now := time.Now().UTC()
	u, _, err := st.CreateUserIfAbsent(ctx, users.User{ID: "usr_thresh", Email: "ada@example.com", Name: "Ada", CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	svc := budget.NewService(st, budget.Limits{Daily: budget.USDToNanos(1), Monthly: budget.USDToNanos(100)}).
		OnThreshold(budgetThresholdMail(n, st, slog.New(slog.DiscardHandler)))
	limits, err := svc.Limits(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i, usd := range []float64{0.85, 0.05} {
		o := svc.Owner(limits, u.ID, "job_thresh", "ask", time.Minute)
		r, err := budget.Reserve(ctx, o, "gpt-4o-mini", usd)
		if err != nil {
			t.Fatalf("reserve %d: %v", i, err)
		}
		if err := o.Settle(ctx, r, usd); err != nil {
			t.Fatalf("settle %d: %v", i, err)
		}
	}
	if err := n.Close(ctx); err != nil { // drains the queue
		t.Fatal(err)
	}
	sent := fake.Sent()
	if len(sent) != 1 {
		t.Fatalf("sent %d emails, want 1: %+v", len(sent), sent)
	}
	e := sent[0]
	if len(e.To) != 1 || e.To[0] != "ada@example.com" || !strings.Contains(e.From, "billing@levqor.ai") ||
		!strings.Contains(e.Text, "80") || e.IdempotencyKey != "budget/usr_thresh/"+now.Format("2006-01-02") {
		t.Errorf("email = %+v", e)
	}
}

// TestWelcomeMail: a created user gets one welcome email from support@, by name.
func TestWelcomeMail(t *testing.T) {
	n, fake := testNotifier(t, "re_welcome_key")
	welcomeMail(n)(context.Background(), users.User{ID: "usr_welcome", Email: "grace@example.com", Name: "Grace"})
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	sent := fake.Sent()
	if len(sent) != 1 || len(sent[0].To) != 1 || sent[0].To[0] != "grace@example.com" ||
		!strings.Contains(sent[0].From, "support@levqor.ai") || !strings.Contains(sent[0].Text, "Grace") {
		t.Fatalf("sent = %+v", sent)
	}
}

// TestJobFailedMail: an owner who opted in gets one no-reply email for a job that
// failed for good, keyed by the job; a second failure within ten minutes, an owner
// who did not opt in and a job whose failure was not stored send nothing.
func TestJobFailedMail(t *testing.T) {
	n, fake := testNotifier(t, "re_jobfailed_key")
	st := storetest.OpenSQLite(t)
	ctx := context.Background()
	now := time.Now().UTC()
	for _, u := range []users.User{{ID: "usr_optin", Email: "ada@example.com", Name: "Ada"}, {ID: "usr_quiet", Email: "bob@example.com"}} {
		u.CreatedAt, u.UpdatedAt = now, now
		if _, _, err := st.CreateUserIfAbsent(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetNotificationSettings(ctx, "usr_optin", notifier.Settings{JobFailed: true}, now); err != nil {
		t.Fatal(err)
	}
	job := func(id, owner, status string) jobs.Job {
		j := jobs.Job{ID: id, OwnerID: owner, Workflow: "nightly-digest", Status: status, RunAt: now, MaxAttempts: 1, TimeoutS: 10,
			Payload: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now}
		if _, _, err := st.InsertJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		return j
	}
	hook := jobFailedMail(n, st, slog.New(slog.DiscardHandler))
	hook(ctx, job("job_notstored", "usr_optin", jobs.StatusRunning), "upstream_error", "lease lost") // not failed in the store
	hook(ctx, job("job_quiet", "usr_quiet", jobs.StatusFailed), "upstream_error", "nobody asked")
	hook(ctx, job("job_first", "usr_optin", jobs.StatusFailed), "rate_limited", "Step \"post\" failed:\nSlack asked\tto slow down")
	hook(ctx, job("job_second", "usr_optin", jobs.StatusFailed), "rate_limited", "again") // within ten minutes
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	sent := fake.Sent()
	if len(sent) != 1 {
		t.Fatalf("sent %d emails, want 1: %+v", len(sent), sent)
	}
	e := sent[0]
	if len(e.To) != 1 || e.To[0] != "ada@example.com" || !strings.Contains(e.From, "no-reply@levqor.ai") ||
		e.IdempotencyKey != "job_failed/job_first" || !strings.Contains(e.Subject, "job_first") ||
		!strings.Contains(e.Text, "nightly-digest") || !strings.Contains(e.Text, `Step "post" failed: Slack asked to slow down`) {
		t.Errorf("email = %+v", e)
	}
}
