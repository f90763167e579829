package billing_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/billing"
	"github.com/levqor/levqor/billing/billingtest"
	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
	"github.com/levqor/levqor/users"
)

// engines runs f against a fresh store of each engine.
func engines(t *testing.T, f func(t *testing.T, open func(testing.TB) store.Store)) {
	for _, e := range []struct {
		name string
		open func(testing.TB) store.Store
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		t.Run(e.name, func(t *testing.T) { f(t, e.open) })
	}
}

// mailbox records the emails the service enqueues.
type mailbox struct {
	mu   sync.Mutex
	msgs []notifier.Message
}

func (m *mailbox) Enqueue(msg notifier.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, msg)
	return nil
}

func (m *mailbox) sent() []notifier.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]notifier.Message(nil), m.msgs...)
}

type bundle struct {
	st       store.Store
	svc      *billing.Service
	mail     *mailbox
	logs     *syncBuffer
	user     users.User
	owner    keys.Principal
	customer string // the user's Stripe customer (stripe-mock's fixture customer)
	price    string // stripe-mock's fixture price: the pro_monthly plan's
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// plansFor is the default table with pro_monthly at stripe-mock's fixture price.
func plansFor(price string) []billing.Plan {
	plans := billing.DefaultPlans()
	plans[1].PriceID = price
	return plans
}

// setup builds the service over a fresh store, against stripe-mock at base, with a
// user whose billing account holds stripe-mock's fixture customer.
func setup(t *testing.T, open func(testing.TB) store.Store, base string, grace time.Duration) *bundle {
	t.Helper()
	price, customer := billingtest.FixturePrice(t, base)
	b := &bundle{st: open(t), mail: &mailbox{}, logs: &syncBuffer{}, customer: customer, price: price}
	var err error
	b.svc, err = billing.NewService(b.st, b.st, billing.Config{
		SecretKey: billingtest.SecretKey, WebhookSecret: billingtest.WebhookSecret, BaseURL: base,
		PublicURL: "https://levqor.test", Plans: plansFor(price), Grace: grace,
		Logger: slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	b.svc.WithMailer(b.mail)
	now := time.Now().UTC()
	b.user, _, err = b.st.CreateUserIfAbsent(t.Context(), users.User{ID: levqor.NewID("usr"), Email: "ada-" + levqor.NewID("x") + "@example.com",
		Name: "Ada", Locale: "en-GB", Currency: "GBP", Plan: "free", Meta: map[string]any{}, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	b.owner = keys.Principal{KeyID: "key_1", OwnerID: b.user.ID, Scopes: []string{keys.ScopeUsersWrite}}
	if _, err := b.st.CreateBillingAccount(t.Context(), b.user.ID, customer, now); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, secret := range []string{billingtest.SecretKey, billingtest.WebhookSecret} {
			if strings.Contains(b.logs.String(), secret) {
				t.Errorf("a Stripe secret reached the logs:\n%s", b.logs.String())
			}
		}
	})
	return b
}

// deliver signs ev now and hands it to the webhook.
func (b *bundle) deliver(t *testing.T, ev []byte) (billing.Receipt, error) {
	t.Helper()
	return b.svc.Webhook(t.Context(), ev, billingtest.Sign(ev, billingtest.WebhookSecret, time.Time{}))
}

func (b *bundle) account(t *testing.T) billing.Account {
	t.Helper()
	a, err := b.st.BillingAccount(t.Context(), b.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (b *bundle) userPlan(t *testing.T) string {
	t.Helper()
	u, err := b.st.GetUser(t.Context(), b.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	return u.Plan
}

func subscription(id, customer, status, price string) map[string]any {
	return map[string]any{"id": id, "object": "subscription", "customer": customer, "status": status,
		"items": map[string]any{"object": "list", "data": []any{map[string]any{"id": "si_1", "object": "subscription_item",
			"price": map[string]any{"id": price, "object": "price"}, "current_period_end": 1}}}}
}

func invoice(id, customer, status string, amount int64) map[string]any {
	return map[string]any{"id": id, "object": "invoice", "customer": customer, "status": status, "currency": "usd",
		"amount_paid": amount, "amount_due": amount,
		"parent": map[string]any{"type": "subscription_details", "subscription_details": map[string]any{"subscription": "sub_1"}}}
}

func TestCheckoutAndPortal(t *testing.T) {
	base := billingtest.StripeMock(t)
	engines(t, func(t *testing.T, open func(testing.TB) store.Store) {
		b := setup(t, open, base, time.Hour)
		ctx := t.Context()
		// A user without an account gets a customer once, then a session.
		fresh, _, err := b.st.CreateUserIfAbsent(ctx, users.User{ID: levqor.NewID("usr"), Email: "new-" + levqor.NewID("x") + "@example.com",
			Locale: "en-GB", Currency: "GBP", Plan: "free", Meta: map[string]any{}, CreatedAt: time.Now(), UpdatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		p := keys.Principal{KeyID: "key_2", OwnerID: fresh.ID, Scopes: []string{keys.ScopeUsersWrite}}
		if _, err := b.svc.Portal(ctx, p); levqor.ErrorCode(err) != levqor.ENotFound {
			t.Fatalf("Portal before any checkout = %v; want not_found", err)
		}
		url, err := b.svc.Checkout(ctx, p, "pro_monthly")
		if err != nil || !strings.HasPrefix(url, "https://") {
			t.Fatalf("Checkout = %q, %v; want a Stripe URL", url, err)
		}
		acct, err := b.st.BillingAccount(ctx, fresh.ID)
		if err != nil || !strings.HasPrefix(acct.CustomerID, "cus_") {
			t.Fatalf("account after checkout = %+v, %v; want a stored customer", acct, err)
		}
		if _, err := b.svc.Checkout(ctx, p, "pro_annual"); err != nil {
			t.Fatalf("second Checkout: %v", err)
		}
		if again, _ := b.st.BillingAccount(ctx, fresh.ID); again.CustomerID != acct.CustomerID {
			t.Fatalf("second checkout changed the customer %s → %s; want it created once", acct.CustomerID, again.CustomerID)
		}
		if url, err := b.svc.Portal(ctx, p); err != nil || !strings.HasPrefix(url, "https://") {
			t.Fatalf("Portal = %q, %v", url, err)
		}
		for _, plan := range []string{"free", "gold", ""} {
			if _, err := b.svc.Checkout(ctx, p, plan); levqor.ErrorCode(err) != levqor.EInvalid {
				t.Errorf("Checkout(%q) = %v; want invalid", plan, err)
			}
		}
		if _, err := b.svc.Checkout(ctx, keys.Principal{Scopes: []string{keys.ScopeAdmin}}, "pro_monthly"); levqor.ErrorCode(err) != levqor.EForbidden {
			t.Errorf("Checkout by a key without a user = %v; want forbidden", err)
		}
		// A user with a live subscription is sent to the portal, not billed twice.
		if _, err := b.deliver(t, billingtest.Event("evt_live", "customer.subscription.updated", time.Now(), subscription("sub_1", b.customer, "active", b.price))); err != nil {
			t.Fatal(err)
		}
		if _, err := b.svc.Checkout(ctx, b.owner, "pro_annual"); levqor.ErrorCode(err) != levqor.EConflict {
			t.Errorf("Checkout with a live subscription = %v; want conflict", err)
		}
	})
}

func TestNotConfigured(t *testing.T) {
	st := storetest.OpenSQLite(t)
	svc, err := billing.NewService(st, st, billing.Config{PublicURL: "https://levqor.test"})
	if err != nil {
		t.Fatal(err)
	}
	p := keys.Principal{OwnerID: "usr_1"}
	if _, err := svc.Checkout(t.Context(), p, "pro_monthly"); levqor.ErrorCode(err) != levqor.EUnavailable {
		t.Errorf("Checkout without a key = %v; want unavailable", err)
	}
	if _, err := svc.Webhook(t.Context(), []byte(`{}`), "t=1,v1=00"); levqor.ErrorCode(err) != levqor.EUnavailable {
		t.Errorf("Webhook without a secret = %v; want unavailable", err)
	}
}

func TestWebhookEveryType(t *testing.T) {
	base := billingtest.StripeMock(t)
	engines(t, func(t *testing.T, open func(testing.TB) store.Store) {
		b := setup(t, open, base, time.Hour)
		now := time.Now()
		check := func(what, plan, status string) {
			t.Helper()
			if a := b.account(t); a.Plan != plan || a.Status != status {
				t.Fatalf("%s: account plan %q status %q; want %q %q", what, a.Plan, a.Status, plan, status)
			}
			if got := b.userPlan(t); got != plan {
				t.Fatalf("%s: user's plan %q; want %q", what, got, plan)
			}
		}
		session := map[string]any{"id": "cs_1", "object": "checkout.session", "customer": b.customer, "subscription": "sub_1",
			"client_reference_id": b.user.ID, "mode": "subscription"}
		if _, err := b.deliver(t, billingtest.Event("evt_cs", "checkout.session.completed", now, session)); err != nil {
			t.Fatal(err)
		}
		check("checkout.session.completed", "pro_monthly", "active") // re-read from Stripe: the fixture's price
		if a := b.account(t); a.SubscriptionID != "sub_1" || a.CurrentPeriodEnd.IsZero() {
			t.Fatalf("account after checkout: %+v; want sub_1 with a period end", a)
		}
		for i, typ := range []string{"customer.subscription.created", "customer.subscription.updated"} {
			// The event says canceled on an unknown price; Stripe (re-read) says active pro.
			ev := billingtest.Event(fmt.Sprintf("evt_sub%d", i), typ, now, subscription("sub_1", b.customer, "canceled", "price_stale"))
			if _, err := b.deliver(t, ev); err != nil {
				t.Fatal(err)
			}
			check(typ, "pro_monthly", "active")
		}
		if _, err := b.deliver(t, billingtest.Event("evt_fail", "invoice.payment_failed", now, invoice("in_2", b.customer, "open", 1900))); err != nil {
			t.Fatal(err)
		}
		if a := b.account(t); a.PaymentFailedAt.IsZero() || a.LatestInvoiceID != "in_2" {
			t.Fatalf("after invoice.payment_failed: %+v; want the failure recorded", a)
		}
		if _, err := b.deliver(t, billingtest.Event("evt_paid", "invoice.paid", now, invoice("in_3", b.customer, "paid", 1900))); err != nil {
			t.Fatal(err)
		}
		if a := b.account(t); !a.PaymentFailedAt.IsZero() || a.LatestInvoiceStatus != "paid" {
			t.Fatalf("after invoice.paid: %+v; want the failure cleared", a)
		}
		mails := b.mail.sent()
		if len(mails) != 2 || mails[0].Template != notifier.PaymentFailed || mails[1].Template != notifier.PaymentConfirmation ||
			mails[0].IdempotencyKey != "billing/evt_fail" || mails[1].IdempotencyKey != "billing/evt_paid" || mails[1].To != b.user.Email {
			t.Fatalf("emails = %+v; want payment_failed then payment_confirmation, keyed by event", mails)
		}
		if mails[1].Data["amount"] != 19.0 || mails[1].Data["currency"] != "USD" || mails[1].Data["plan"] != "Pro" {
			t.Fatalf("confirmation data = %v", mails[1].Data)
		}
		if _, err := notifier.Render(mails[1].Template, mails[1].Data, "https://levqor.test"); err != nil {
			t.Fatalf("the confirmation does not render: %v", err)
		}
		if _, err := b.deliver(t, billingtest.Event("evt_del", "customer.subscription.deleted", now, subscription("sub_1", b.customer, "canceled", b.price))); err != nil {
			t.Fatal(err)
		}
		check("customer.subscription.deleted", billing.FreePlan, "canceled")
		// Canceled is final: a late update (Stripe re-read says active here, as stripe-mock
		// always does) does not revive it.
		if _, err := b.deliver(t, billingtest.Event("evt_late", "customer.subscription.updated", now, subscription("sub_1", b.customer, "active", b.price))); err != nil {
			t.Fatal(err)
		}
		check("late update after deletion", billing.FreePlan, "canceled")
		// Unknown types and unknown customers are recorded and answered 200.
		if _, err := b.deliver(t, billingtest.Event("evt_other", "charge.refunded", now, map[string]any{"id": "ch_1", "object": "charge"})); err != nil {
			t.Fatal(err)
		}
		if _, err := b.deliver(t, billingtest.Event("evt_stranger", "invoice.paid", now, invoice("in_9", "cus_stranger", "paid", 100))); err != nil {
			t.Fatal(err)
		}
		if n := len(b.mail.sent()); n != 2 {
			t.Fatalf("%d emails; want no more for ignored events", n)
		}
	})
}

func TestWebhookSignature(t *testing.T) {
	base := billingtest.StripeMock(t)
	engines(t, func(t *testing.T, open func(testing.TB) store.Store) {
		b := setup(t, open, base, time.Hour)
		ev := billingtest.Event("evt_sig", "invoice.paid", time.Now(), invoice("in_1", b.customer, "paid", 1900))
		for name, header := range map[string]string{
			"forged":        billingtest.Sign(ev, "whsec_attacker000000000000000000", time.Time{}),
			"stale":         billingtest.Sign(ev, billingtest.WebhookSecret, time.Now().Add(-billing.DefaultTolerance-time.Minute)),
			"missing":       "",
			"malformed":     "t=abc,v1=zz",
			"other payload": billingtest.Sign([]byte(`{"id":"evt_x","object":"event"}`), billingtest.WebhookSecret, time.Time{}),
		} {
			_, err := b.svc.Webhook(t.Context(), ev, header)
			if levqor.ErrorCode(err) != levqor.EInvalid {
				t.Errorf("%s signature: %v; want invalid", name, err)
			}
		}
		if len(b.mail.sent()) != 0 || b.account(t).LatestInvoiceID != "" {
			t.Fatal("an unverified event had an effect")
		}
		// Hostile but signed bodies: refused with 400-class errors, never applied.
		for name, body := range map[string][]byte{
			"not json":        []byte("not json"),
			"not an event":    []byte(`{"object":"charge","id":"ch_1"}`),
			"object a string": []byte(`{"id":"evt_h1","object":"event","type":"invoice.paid","data":{"object":"zzz"}}`),
			"no data":         []byte(`{"id":"evt_h2","object":"event","type":"customer.subscription.updated"}`),
			"no id":           []byte(`{"object":"event","type":"invoice.paid","data":{"object":{}}}`),
			"wrong types":     []byte(`{"id":"evt_h3","object":"event","type":"invoice.paid","data":{"object":{"customer":12,"amount_paid":"x"}}}`),
		} {
			_, err := b.svc.Webhook(t.Context(), body, billingtest.Sign(body, billingtest.WebhookSecret, time.Time{}))
			if code := levqor.ErrorCode(err); code != levqor.EInvalid {
				t.Errorf("%s: %v (code %q); want invalid", name, err, code)
			}
		}
	})
}

func TestWebhookDuplicateConcurrent(t *testing.T) {
	base := billingtest.StripeMock(t)
	engines(t, func(t *testing.T, open func(testing.TB) store.Store) {
		b := setup(t, open, base, time.Hour)
		ev := billingtest.Event("evt_dup", "invoice.paid", time.Now(), invoice("in_dup", b.customer, "paid", 1900))
		const n = 6
		var wg sync.WaitGroup
		var mu sync.Mutex
		dups := 0
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := b.deliver(t, ev)
				if err != nil {
					t.Errorf("delivery: %v", err)
					return
				}
				mu.Lock()
				if r.Duplicate {
					dups++
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		if dups != n-1 {
			t.Fatalf("%d of %d concurrent deliveries were duplicates; want %d", dups, n, n-1)
		}
		if mails := b.mail.sent(); len(mails) != 1 {
			t.Fatalf("%d emails for one event delivered %d times; want 1", len(mails), n)
		}
	})
}

func TestWebhookOutOfOrder(t *testing.T) {
	base := billingtest.StripeMock(t)
	engines(t, func(t *testing.T, open func(testing.TB) store.Store) {
		b := setup(t, open, base, time.Hour)
		now := time.Now()
		// Newest first, then an older one whose payload names another plan: the final
		// plan is what Stripe says now (the fixture's price, pro_monthly), not what
		// arrived last.
		newer := billingtest.Event("evt_new", "customer.subscription.updated", now, subscription("sub_1", b.customer, "active", b.price))
		older := billingtest.Event("evt_old", "customer.subscription.created", now.Add(-time.Hour), subscription("sub_1", b.customer, "incomplete", "price_pro_annual"))
		for _, ev := range [][]byte{newer, older} {
			if _, err := b.deliver(t, ev); err != nil {
				t.Fatal(err)
			}
		}
		if a := b.account(t); a.Plan != "pro_monthly" || a.Status != "active" || a.PriceID != b.price {
			t.Fatalf("after out-of-order events: %+v; want Stripe's pro_monthly, active", a)
		}
	})
}

func TestPaymentFailureLowersLimits(t *testing.T) {
	base := billingtest.StripeMock(t)
	engines(t, func(t *testing.T, open func(testing.TB) store.Store) {
		b := setup(t, open, base, time.Hour)
		clock := time.Now()
		b.svc.WithClock(func() time.Time { return clock })
		defaults := budget.Limits{Daily: budget.USDToNanos(10), Monthly: budget.USDToNanos(200)}
		budgets := budget.NewService(b.st, defaults).WithPlanLimits(b.svc.OwnerLimits)
		ctx := t.Context()
		limits := func() budget.Limits {
			t.Helper()
			l, err := budgets.Limits(ctx, b.user.ID)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		plans := plansFor(b.price)
		free, pro := plans[0].Limits, plans[1].Limits
		want := func(what string, l billing.Limits) {
			t.Helper()
			if got := limits(); got.Daily != budget.USDToNanos(l.DailyAIUSD) || got.Monthly != budget.USDToNanos(l.MonthlyAIUSD) {
				t.Fatalf("%s: limits %+v; want the plan's %+v", what, got, l)
			}
			if jpm, ok, err := b.svc.JobsPerMinute(ctx, b.user.ID); err != nil || !ok || jpm != l.JobsPerMinute {
				t.Fatalf("%s: jobs per minute %d, %v, %v; want %d", what, jpm, ok, err, l.JobsPerMinute)
			}
		}
		want("free account before paying", free)
		if _, err := b.deliver(t, billingtest.Event("evt_up", "customer.subscription.updated", clock, subscription("sub_1", b.customer, "active", b.price))); err != nil {
			t.Fatal(err)
		}
		want("subscribed", pro)
		if _, err := b.deliver(t, billingtest.Event("evt_fail", "invoice.payment_failed", clock, invoice("in_2", b.customer, "open", 1900))); err != nil {
			t.Fatal(err)
		}
		want("within the grace period", pro)
		st, err := b.svc.Status(ctx, b.owner)
		if err != nil || st.GraceUntil.IsZero() || st.Plan.ID != "pro_monthly" {
			t.Fatalf("Status in grace = %+v, %v", st, err)
		}
		clock = clock.Add(time.Hour + time.Second)
		want("after the grace period", free)
		if st, _ := b.svc.Status(ctx, b.owner); st.Plan.ID != billing.FreePlan || st.SubscribedPlan != "pro_monthly" {
			t.Fatalf("Status after grace = %+v; want free in force, pro subscribed", st)
		}
		// An admin override still wins over the plan.
		override := budget.Limits{Daily: budget.USDToNanos(123), Monthly: budget.USDToNanos(456)}
		if err := budgets.SetLimits(ctx, b.user.ID, &override); err != nil {
			t.Fatal(err)
		}
		if got := limits(); got != override {
			t.Fatalf("limits with an override = %+v; want %+v", got, override)
		}
		if err := budgets.SetLimits(ctx, b.user.ID, nil); err != nil {
			t.Fatal(err)
		}
		// Paying again restores the plan.
		if _, err := b.deliver(t, billingtest.Event("evt_paid", "invoice.paid", clock, invoice("in_3", b.customer, "paid", 1900))); err != nil {
			t.Fatal(err)
		}
		want("paid again", pro)
		// An owner without a billing account keeps the server's defaults.
		if l, err := budgets.Limits(ctx, "usr_nobody"); err != nil || l != defaults {
			t.Fatalf("limits of an owner without an account = %+v, %v; want the defaults", l, err)
		}
	})
}
