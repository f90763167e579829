package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors/email/resendtest"
	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/store/storetest"
	"github.com/levqor/levqor/users"
)

// TestBudgetThresholdMail: when an owner's settled spending reaches the soft threshold,
// the owner gets one billing email about that period; a second settlement in the same
// period sends nothing more.
func TestBudgetThresholdMail(t *testing.T) {
	fake := resendtest.New(t, "re_threshold_key")
	n, err := notifier.New(notifier.Config{BaseURL: fake.URL, APIKey: fake.APIKey, Domain: "levqor.ai", PublicURL: "https://levqor.ai"})
	if err != nil {
		t.Fatal(err)
	}
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
	fake := resendtest.New(t, "re_welcome_key")
	n, err := notifier.New(notifier.Config{BaseURL: fake.URL, APIKey: fake.APIKey, Domain: "levqor.ai", PublicURL: "https://levqor.ai"})
	if err != nil {
		t.Fatal(err)
	}
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
