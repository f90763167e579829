package main

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/store"
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

// jobFailedEvery is the least time between two job-failed emails to one owner (per
// process): a connector that breaks fails many jobs at once, and one email says so.
const jobFailedEvery = 10 * time.Minute

// jobFailedMail emails an owner who opted in (PUT /api/v1/notifications) that one of
// its jobs failed for good, at most once every jobFailedEvery; the rest are listed by
// GET /api/v1/jobs?status=failed. It reads the job back first, so an attempt whose
// end was not stored (its lease had passed to another worker) sends nothing. The
// idempotency key is the job's, so a second instance or a retried send never repeats it.
func jobFailedMail(n *notifier.Notifier, st store.Store, log *slog.Logger) func(context.Context, jobs.Job, string, string) {
	var mu sync.Mutex
	last := map[string]time.Time{} // owner → last job-failed email
	return func(ctx context.Context, j jobs.Job, code, message string) {
		if !n.Enabled() || j.OwnerID == "" {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		set, err := st.NotificationSettings(ctx, j.OwnerID)
		if err != nil || !set.JobFailed {
			if err != nil {
				log.Warn("job failed email: settings unreadable", "owner_id", j.OwnerID, "job_id", j.ID, "error", err.Error())
			}
			return
		}
		if stored, err := st.GetJob(ctx, j.ID); err != nil || stored.Status != jobs.StatusFailed {
			return
		}
		u, err := st.GetUser(ctx, j.OwnerID)
		if err != nil {
			log.Warn("job failed email: no user for the owner", "owner_id", j.OwnerID, "error", err.Error())
			return
		}
		now := time.Now()
		mu.Lock()
		if t, ok := last[j.OwnerID]; ok && now.Sub(t) < jobFailedEvery {
			mu.Unlock()
			log.Info("job failed email skipped: one was sent to this owner less than 10 minutes ago", "owner_id", j.OwnerID, "job_id", j.ID)
			return
		}
		last[j.OwnerID] = now
		mu.Unlock()
		data := map[string]any{"job_id": j.ID, "error": oneLine(message, 500)}
		if code != "" {
			data["error_code"] = code
		}
		if j.Workflow != "" {
			data["workflow"] = j.Workflow
		}
		if u.Name != "" {
			data["name"] = u.Name
		}
		if err := n.Enqueue(notifier.Message{Template: notifier.JobFailed, To: u.Email, Data: data, IdempotencyKey: "job_failed/" + j.ID}); err != nil {
			mu.Lock() // not queued (logged by the notifier): the next failure may try
			if last[j.OwnerID].Equal(now) {
				delete(last, j.OwnerID)
			}
			mu.Unlock()
		}
	}
}

// oneLine makes s one line of valid text (control characters become spaces) of at
// most n runes, marking a cut with an ellipsis: a vendor's error may hold anything.
func oneLine(s string, n int) string {
	r := []rune(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "�")))
	if len(r) > n {
		r = append(r[:n-1], '…')
	}
	return string(r)
}
