package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v86"
	"github.com/stripe/stripe-go/v86/webhook"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/notifier"
)

// Receipt says what the webhook did with an event.
type Receipt struct {
	Duplicate bool // the event had been applied already: nothing changed
}

// errBadSignature is the one answer to a missing, forged or stale signature: which
// of them it was helps an attacker more than an operator (the log says).
var errBadSignature = levqor.Errorf(levqor.EInvalid, "The Stripe-Signature header does not verify this body (wrong secret, altered body or timestamp outside the tolerance).")

// Webhook verifies a Stripe event (payload exactly as received, and its
// Stripe-Signature header) and applies it once.
//
// The event's API version is not checked against the SDK's (see docs/adr/0015):
// events are read only for their type, ids and invoice amounts, and the subscription
// itself is read again from Stripe through the SDK, at the SDK's API version.
func (s *Service) Webhook(ctx context.Context, payload []byte, signature string) (Receipt, error) {
	if s.cfg.WebhookSecret == "" {
		return Receipt{}, levqor.Errorf(levqor.EUnavailable, "The Stripe webhook is not configured on this server.")
	}
	ev, err := webhook.ConstructEventWithOptions(payload, signature, s.cfg.WebhookSecret,
		webhook.ConstructEventOptions{Tolerance: s.cfg.Tolerance, IgnoreAPIVersionMismatch: true})
	if err != nil {
		for _, sigErr := range []error{webhook.ErrNotSigned, webhook.ErrInvalidHeader, webhook.ErrNoValidSignature, webhook.ErrTooOld} {
			if errors.Is(err, sigErr) {
				return Receipt{}, &levqor.Error{Code: levqor.EInvalid, Message: errBadSignature.Error(), Err: err}
			}
		}
		// Signed, but not a JSON event object (or a thin event): nothing to apply.
		return Receipt{}, &levqor.Error{Code: levqor.EInvalid, Message: "The signed body is not a Stripe event.", Err: err}
	}
	if ev.ID == "" || len(ev.ID) > 255 || ev.Type == "" {
		return Receipt{}, levqor.Errorf(levqor.EInvalid, "The signed body is not a Stripe event (no id or type).")
	}
	e := Event{ID: ev.ID, Type: string(ev.Type), ReceivedAt: s.now().UTC()}
	var (
		acct *Account
		mail *notifier.Message
	)
	switch ev.Type {
	case "checkout.session.completed":
		acct, err = s.onCheckoutCompleted(ctx, ev)
	case "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted":
		acct, err = s.onSubscription(ctx, ev)
	case "invoice.paid", "invoice.payment_failed":
		acct, mail, err = s.onInvoice(ctx, ev)
	default:
		// Not used by Levqor; recorded all the same, so the log shows it was seen.
	}
	if err != nil {
		return Receipt{}, err
	}
	applied, err := s.store.ApplyBillingEvent(ctx, e, acct)
	if err != nil {
		return Receipt{}, fmt.Errorf("billing: apply event %s: %w", e.ID, err)
	}
	if !applied {
		return Receipt{Duplicate: true}, nil
	}
	if acct != nil {
		s.log.InfoContext(ctx, "billing event applied", "event", e.ID, "type", e.Type, "user_id", acct.UserID,
			"plan", acct.Plan, "status", acct.Status)
	}
	if mail != nil && s.mail != nil {
		mail.IdempotencyKey = "billing/" + e.ID // one email per event, whichever instance sends it
		_ = s.mail.Enqueue(*mail)               // ErrDisabled, ErrQueueFull: logged by the notifier
	}
	return Receipt{}, nil
}

// decode reads the event's object into v: a signed body whose object does not decode
// is refused (400), never a 500.
func decode(ev stripe.Event, v any) error {
	if ev.Data == nil || len(ev.Data.Raw) == 0 {
		return levqor.Errorf(levqor.EInvalid, "The Stripe event %s has no data.object.", ev.ID)
	}
	if err := json.Unmarshal(ev.Data.Raw, v); err != nil {
		return &levqor.Error{Code: levqor.EInvalid, Message: fmt.Sprintf("The Stripe event %s's data.object is not a %s.", ev.ID, ev.Type), Err: err}
	}
	return nil
}

// accountOf finds the account of a Stripe customer; ok is false for customers Levqor
// did not create (another integration on the same Stripe account): their events are
// recorded and ignored.
func (s *Service) accountOf(ctx context.Context, ev stripe.Event, c *stripe.Customer) (Account, bool, error) {
	if c == nil || c.ID == "" {
		return Account{}, false, nil
	}
	acct, err := s.store.BillingAccountByCustomer(ctx, c.ID)
	if levqor.ErrorCode(err) == levqor.ENotFound {
		s.log.WarnContext(ctx, "stripe event for an unknown customer", "event", ev.ID, "type", string(ev.Type), "customer", c.ID)
		return Account{}, false, nil
	}
	if err != nil {
		return Account{}, false, fmt.Errorf("billing: read account: %w", err)
	}
	return acct, true, nil
}

// refresh applies Stripe's current view of subscription id to acct: reading it again
// instead of trusting the event makes the outcome independent of delivery order.
func (s *Service) refresh(ctx context.Context, acct Account, id string) (*Account, error) {
	sub, err := s.stripe.V1Subscriptions.Retrieve(ctx, id, &stripe.SubscriptionRetrieveParams{})
	if isNotFound(err) {
		acct.Status, acct.Plan = string(stripe.SubscriptionStatusCanceled), FreePlan
		acct.UpdatedAt = s.now().UTC()
		return &acct, nil
	}
	if err != nil {
		return nil, stripeError("read subscription", err) // 503: Stripe delivers again later
	}
	next := s.withSubscription(acct, sub)
	next.UpdatedAt = s.now().UTC()
	return &next, nil
}

func (s *Service) onCheckoutCompleted(ctx context.Context, ev stripe.Event) (*Account, error) {
	var sess stripe.CheckoutSession
	if err := decode(ev, &sess); err != nil {
		return nil, err
	}
	acct, ok, err := s.accountOf(ctx, ev, sess.Customer)
	if err != nil || !ok {
		return nil, err
	}
	if sess.ClientReferenceID != "" && sess.ClientReferenceID != acct.UserID {
		s.log.WarnContext(ctx, "checkout session's user is not its customer's", "event", ev.ID)
		return nil, nil
	}
	if sess.Subscription == nil || sess.Subscription.ID == "" {
		return nil, nil
	}
	return s.refresh(ctx, acct, sess.Subscription.ID)
}

func (s *Service) onSubscription(ctx context.Context, ev stripe.Event) (*Account, error) {
	var sub stripe.Subscription
	if err := decode(ev, &sub); err != nil {
		return nil, err
	}
	acct, ok, err := s.accountOf(ctx, ev, sub.Customer)
	if err != nil || !ok || sub.ID == "" {
		return nil, err
	}
	if acct.SubscriptionID != "" && acct.SubscriptionID != sub.ID && acct.Status != string(stripe.SubscriptionStatusCanceled) &&
		ev.Type == "customer.subscription.deleted" {
		return nil, nil // an older subscription ended; the current one is unaffected
	}
	if acct.SubscriptionID == sub.ID && acct.Status == string(stripe.SubscriptionStatusCanceled) {
		return nil, nil // canceled is final in Stripe: a late event cannot revive it
	}
	if ev.Type == "customer.subscription.deleted" {
		// Final by definition; no need to ask Stripe.
		acct.SubscriptionID, acct.Status, acct.Plan = sub.ID, string(stripe.SubscriptionStatusCanceled), FreePlan
		acct.UpdatedAt = s.now().UTC()
		return &acct, nil
	}
	return s.refresh(ctx, acct, sub.ID)
}

func (s *Service) onInvoice(ctx context.Context, ev stripe.Event) (*Account, *notifier.Message, error) {
	var inv stripe.Invoice
	if err := decode(ev, &inv); err != nil {
		return nil, nil, err
	}
	acct, ok, err := s.accountOf(ctx, ev, inv.Customer)
	if err != nil || !ok {
		return nil, nil, err
	}
	next := &acct
	if subID := invoiceSubscription(inv); subID != "" && ev.Type == "invoice.paid" {
		if next, err = s.refresh(ctx, acct, subID); err != nil {
			return nil, nil, err
		}
	}
	next.LatestInvoiceID, next.LatestInvoiceStatus = inv.ID, string(inv.Status)
	next.UpdatedAt = s.now().UTC()
	template, amount := notifier.PaymentConfirmation, inv.AmountPaid
	if ev.Type == "invoice.paid" {
		next.PaymentFailedAt = time.Time{}
	} else {
		template, amount = notifier.PaymentFailed, inv.AmountDue
		if next.PaymentFailedAt.IsZero() { // the grace period runs from the first failure
			next.PaymentFailedAt = time.Unix(ev.Created, 0).UTC()
			if ev.Created <= 0 {
				next.PaymentFailedAt = s.now().UTC()
			}
		}
	}
	return next, s.paymentMail(ctx, template, next, inv, amount), nil
}

// invoiceSubscription is the subscription an invoice bills, if any.
func invoiceSubscription(inv stripe.Invoice) string {
	if inv.Parent != nil && inv.Parent.SubscriptionDetails != nil && inv.Parent.SubscriptionDetails.Subscription != nil {
		return inv.Parent.SubscriptionDetails.Subscription.ID
	}
	return ""
}

// paymentMail is the email of a paid or failed invoice, or nil when the user cannot be read.
func (s *Service) paymentMail(ctx context.Context, template string, acct *Account, inv stripe.Invoice, amount int64) *notifier.Message {
	u, err := s.users.GetUser(ctx, acct.UserID)
	if err != nil || inv.Currency == "" {
		return nil
	}
	data := map[string]any{"amount": float64(amount) / 100, "currency": strings.ToUpper(string(inv.Currency))}
	if p, ok := s.plans[acct.Plan]; ok && p.ID != FreePlan {
		data["plan"] = p.Name
	}
	if u.Name != "" {
		data["name"] = u.Name
	}
	if template == notifier.PaymentConfirmation && inv.ID != "" {
		data["invoice_id"] = inv.ID
	}
	return &notifier.Message{Template: template, To: u.Email, Data: data}
}
