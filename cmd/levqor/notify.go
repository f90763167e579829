package main

import (
	"context"
	"log/slog"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/users"
)

// budgetThresholdMail emails an owner whose AI spending reached the soft threshold
// of a day's or a month's limit. Owners without a user record (bootstrap keys) are
// skipped. Enqueue never blocks, and its failures are logged by the notifier.
func budgetThresholdMail(n *notifier.Notifier, us users.Store, log *slog.Logger) func(context.Context, string, budget.Period) {
	return func(ctx context.Context, ownerID string, p budget.Period) {
		if !n.Enabled() || ownerID == "" {
			return
		}
		u, err := us.GetUser(ctx, ownerID)
		if err != nil {
			log.Warn("budget threshold email: no user for the owner", "owner_id", ownerID, "error", err.Error())
			return
		}
		data := map[string]any{"percent": budget.SoftThreshold * 100, "period": p.Kind,
			"limit_usd": p.Limit.USD(), "spent_usd": p.Spent.USD()}
		if u.Name != "" {
			data["name"] = u.Name
		}
		_ = n.Enqueue(notifier.Message{Template: notifier.BudgetThreshold, To: u.Email, Data: data,
			IdempotencyKey: "budget/" + ownerID + "/" + p.Name})
	}
}

// welcomeMail emails a user Levqor has just created. The idempotency key keeps a
// retried send (or a second instance) from welcoming anyone twice.
func welcomeMail(n *notifier.Notifier) func(context.Context, users.User) {
	return func(_ context.Context, u users.User) {
		if !n.Enabled() {
			return
		}
		data := map[string]any{}
		if u.Name != "" {
			data["name"] = u.Name
		}
		_ = n.Enqueue(notifier.Message{Template: notifier.Welcome, To: u.Email, Data: data, IdempotencyKey: "welcome/" + u.ID})
	}
}
