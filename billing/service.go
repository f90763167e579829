package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v86"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/users"
)

// Defaults of Config.
const (
	// DefaultGrace is how long a paid plan's limits keep applying after a failed payment:
	// long enough for Stripe's first retries and for the customer to update a card.
	DefaultGrace = 72 * time.Hour
	// DefaultTolerance is the oldest a webhook signature's timestamp may be: Stripe's own
	// default, which bounds how long a captured delivery could be replayed.
	DefaultTolerance = 5 * time.Minute
)

// Config configures a Service. Build it once in main.
type Config struct {
	SecretKey     string        // Stripe secret key (sk_… or rk_…); "" disables checkout, portal and reconcile
	WebhookSecret string        // whsec_…; "" disables the webhook (503)
	BaseURL       string        // Stripe's API root; "" means https://api.stripe.com
	PublicURL     string        // the site root of Checkout's success and cancel pages and the portal's return
	Plans         []Plan        // the price table; nil means DefaultPlans()
	Grace         time.Duration // a paid plan's limits after a failed payment (LEVQOR_BILLING_GRACE, DefaultGrace)
	Tolerance     time.Duration // the oldest webhook signature accepted; 0 means DefaultTolerance
	HTTPClient    *http.Client  // nil: a client with a 30-second timeout
	Logger        *slog.Logger
}

// Mailer sends Levqor's own email without blocking (notifier.Notifier).
type Mailer interface {
	Enqueue(msg notifier.Message) error
}

// UserReader reads users (users.Store).
type UserReader interface {
	GetUser(ctx context.Context, id string) (users.User, error)
}

// Service is billing: checkout, portal, the plan in force and Stripe's webhook.
type Service struct {
	store     Store
	users     UserReader
	mail      Mailer // nil: no email
	stripe    *stripe.Client
	cfg       Config
	plans     map[string]Plan // by id
	byPrice   map[string]Plan // by Stripe price id
	log       *slog.Logger
	now       func() time.Time
	secretSet bool
}

// NewService returns a Service over st (accounts) and us (users' emails).
func NewService(st Store, us UserReader, cfg Config) (*Service, error) {
	if cfg.Plans == nil {
		cfg.Plans = DefaultPlans()
	}
	if err := CheckPlans(cfg.Plans); err != nil {
		return nil, fmt.Errorf("plans: %w", err)
	}
	cfg.Grace = max(cfg.Grace, 0) // 0: a failed payment drops to the free plan at once
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = DefaultTolerance
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = stripe.APIURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{store: st, users: us, cfg: cfg, plans: map[string]Plan{}, byPrice: map[string]Plan{},
		log: cfg.Logger, now: time.Now, secretSet: cfg.SecretKey != ""}
	for _, p := range cfg.Plans {
		s.plans[p.ID] = p
		if p.PriceID != "" {
			s.byPrice[p.PriceID] = p
		}
	}
	// stripe-go logs requests and errors to stderr by default; Levqor logs what it
	// needs itself, so the SDK's logger is silenced (no request details in logs).
	backends := stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL:               stripe.String(strings.TrimRight(cfg.BaseURL, "/")),
		HTTPClient:        cfg.HTTPClient,
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
		MaxNetworkRetries: stripe.Int64(2),
	})
	s.stripe = stripe.NewClient(cfg.SecretKey, stripe.WithBackends(backends))
	return s, nil
}

// WithMailer sets where payment emails go.
func (s *Service) WithMailer(m Mailer) *Service {
	s.mail = m
	return s
}

// WithClock sets the service's clock, for tests.
func (s *Service) WithClock(now func() time.Time) *Service {
	s.now = now
	return s
}

// Plans returns the price table.
func (s *Service) Plans() []Plan { return append([]Plan(nil), s.cfg.Plans...) }

// errNotConfigured answers requests that need Stripe when no key is configured.
var errNotConfigured = levqor.Errorf(levqor.EUnavailable, "Billing is not configured on this server.")

// stripeError hides Stripe's answer from the client (it is logged by the caller's
// error path) and says what to do.
func stripeError(what string, err error) error {
	return &levqor.Error{Code: levqor.EUnavailable, Message: "Stripe could not be reached or refused the request; try again later.",
		Err: fmt.Errorf("%s: %w", what, err)}
}

// owner returns the user behind p: billing is per user, so keys without one are refused.
func (s *Service) owner(ctx context.Context, p keys.Principal) (users.User, error) {
	if p.OwnerID == "" {
		return users.User{}, levqor.Errorf(levqor.EForbidden, "This key has no user to bill; use a key created for a user.")
	}
	u, err := s.users.GetUser(ctx, p.OwnerID)
	if err != nil {
		return users.User{}, fmt.Errorf("billing: read user: %w", err)
	}
	return u, nil
}

// Checkout starts a Stripe Checkout for plan planID for p's user and returns its URL.
func (s *Service) Checkout(ctx context.Context, p keys.Principal, planID string) (string, error) {
	if !s.secretSet {
		return "", errNotConfigured
	}
	plan, ok := s.plans[planID]
	if !ok || plan.PriceID == "" {
		return "", &levqor.Error{Code: levqor.EInvalid, Message: fmt.Sprintf("There is no paid plan %q.", planID),
			Fields: []levqor.FieldError{{Pointer: "/plan", Detail: "Not a paid plan's id."}}}
	}
	u, err := s.owner(ctx, p)
	if err != nil {
		return "", err
	}
	acct, err := s.account(ctx, u)
	if err != nil {
		return "", err
	}
	if acct.Plan != FreePlan && live(stripe.SubscriptionStatus(acct.Status)) {
		return "", levqor.Errorf(levqor.EConflict, "You already have a %s subscription; change plans in the billing portal.", acct.Plan)
	}
	params := &stripe.CheckoutSessionCreateParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModeSubscription)),
		Customer:          stripe.String(acct.CustomerID),
		ClientReferenceID: stripe.String(u.ID),
		LineItems:         []*stripe.CheckoutSessionCreateLineItemParams{{Price: stripe.String(plan.PriceID), Quantity: stripe.Int64(1)}},
		SuccessURL:        stripe.String(s.publicURL("/billing/success?session_id={CHECKOUT_SESSION_ID}")),
		CancelURL:         stripe.String(s.publicURL("/pricing")),
		SubscriptionData: &stripe.CheckoutSessionCreateSubscriptionDataParams{
			Metadata: map[string]string{"levqor_user_id": u.ID, "levqor_plan": plan.ID},
		},
	}
	params.AddMetadata("levqor_user_id", u.ID)
	params.AddMetadata("levqor_plan", plan.ID)
	// One key per request: a retry of this call by the SDK is deduplicated, a new
	// click makes a new session (a session cannot be reused once abandoned).
	params.SetIdempotencyKey(levqor.NewID("chk"))
	sess, err := s.stripe.V1CheckoutSessions.Create(ctx, params)
	if err != nil {
		return "", stripeError("create checkout session", err)
	}
	return sess.URL, nil
}

// Portal opens Stripe's billing portal for p's user and returns its URL.
func (s *Service) Portal(ctx context.Context, p keys.Principal) (string, error) {
	if !s.secretSet {
		return "", errNotConfigured
	}
	u, err := s.owner(ctx, p)
	if err != nil {
		return "", err
	}
	acct, err := s.store.BillingAccount(ctx, u.ID)
	if levqor.ErrorCode(err) == levqor.ENotFound {
		return "", levqor.Errorf(levqor.ENotFound, "No billing account yet: start with a checkout.")
	} else if err != nil {
		return "", fmt.Errorf("billing: read account: %w", err)
	}
	params := &stripe.BillingPortalSessionCreateParams{Customer: stripe.String(acct.CustomerID), ReturnURL: stripe.String(s.publicURL("/account"))}
	params.SetIdempotencyKey(levqor.NewID("prt"))
	sess, err := s.stripe.V1BillingPortalSessions.Create(ctx, params)
	if err != nil {
		return "", stripeError("create portal session", err)
	}
	return sess.URL, nil
}

func (s *Service) publicURL(path string) string {
	return strings.TrimRight(s.cfg.PublicURL, "/") + path
}

// account returns u's account, creating its Stripe customer the first time. The
// customer is created with an idempotency key per user, so two first checkouts at
// once make one customer, and the store keeps the first stored either way.
func (s *Service) account(ctx context.Context, u users.User) (Account, error) {
	acct, err := s.store.BillingAccount(ctx, u.ID)
	if err == nil {
		return acct, nil
	}
	if levqor.ErrorCode(err) != levqor.ENotFound {
		return Account{}, fmt.Errorf("billing: read account: %w", err)
	}
	params := &stripe.CustomerCreateParams{Email: stripe.String(u.Email)}
	if u.Name != "" {
		params.Name = stripe.String(u.Name)
	}
	params.AddMetadata("levqor_user_id", u.ID)
	params.SetIdempotencyKey("levqor-customer-" + u.ID)
	c, err := s.stripe.V1Customers.Create(ctx, params)
	if err != nil {
		return Account{}, stripeError("create customer", err)
	}
	acct, err = s.store.CreateBillingAccount(ctx, u.ID, c.ID, s.now().UTC())
	if err != nil {
		return Account{}, fmt.Errorf("billing: store customer: %w", err)
	}
	return acct, nil
}

// Status is an owner's billing state as GET /api/v1/billing shows it.
type Status struct {
	Plan             Plan   // in force now
	SubscribedPlan   string // the subscription's plan, "" without an account
	Status           string // Stripe's status, or "none"
	CurrentPeriodEnd time.Time
	GraceUntil       time.Time
	Configured       bool // false: the owner runs under the server's default budgets (no account)
}

// Status returns p's owner's billing state.
func (s *Service) Status(ctx context.Context, p keys.Principal) (Status, error) {
	if p.OwnerID == "" {
		return Status{}, levqor.Errorf(levqor.EForbidden, "This key has no user to bill; use a key created for a user.")
	}
	acct, err := s.store.BillingAccount(ctx, p.OwnerID)
	if levqor.ErrorCode(err) == levqor.ENotFound {
		return Status{Plan: s.plans[FreePlan], Status: "none"}, nil
	} else if err != nil {
		return Status{}, fmt.Errorf("billing: read account: %w", err)
	}
	plan, grace := s.inForce(acct)
	st := Status{Plan: plan, SubscribedPlan: acct.Plan, Status: acct.Status, CurrentPeriodEnd: acct.CurrentPeriodEnd, GraceUntil: grace, Configured: true}
	if st.Status == "" {
		st.Status = "none"
	}
	return st, nil
}

// inForce is the plan whose limits apply to acct now, and the end of the grace period
// when a payment failed: a paid plan applies while its subscription is active or
// trialing, and while it is past due or unpaid only within the grace period after the
// first failed payment; otherwise the free plan does.
func (s *Service) inForce(acct Account) (Plan, time.Time) {
	free := s.plans[FreePlan]
	plan, ok := s.plans[acct.Plan]
	if !ok || plan.ID == FreePlan {
		return free, time.Time{}
	}
	var grace time.Time
	if !acct.PaymentFailedAt.IsZero() {
		grace = acct.PaymentFailedAt.Add(s.cfg.Grace)
	}
	switch stripe.SubscriptionStatus(acct.Status) {
	case stripe.SubscriptionStatusActive, stripe.SubscriptionStatusTrialing:
	case stripe.SubscriptionStatusPastDue, stripe.SubscriptionStatusUnpaid:
		if grace.IsZero() {
			grace = acct.UpdatedAt.Add(s.cfg.Grace) // the failure's event was not seen: from when the status was
		}
	default:
		return free, time.Time{}
	}
	if !grace.IsZero() && !s.now().Before(grace) {
		return free, grace
	}
	return plan, grace
}

// OwnerLimits returns the AI budgets of the plan in force for an owner with a billing
// account; ok is false for owners without one (the server's defaults apply). It is
// the budget.Service's plan source: a stored override still wins over it.
func (s *Service) OwnerLimits(ctx context.Context, ownerID string) (budget.Limits, bool, error) {
	plan, ok, err := s.planOf(ctx, ownerID)
	if err != nil || !ok {
		return budget.Limits{}, false, err
	}
	return budget.Limits{Daily: budget.USDToNanos(plan.Limits.DailyAIUSD), Monthly: budget.USDToNanos(plan.Limits.MonthlyAIUSD)}, true, nil
}

// JobsPerMinute returns the intake rate of the plan in force for an owner with a
// billing account; ok is false for owners without one.
func (s *Service) JobsPerMinute(ctx context.Context, ownerID string) (int, bool, error) {
	plan, ok, err := s.planOf(ctx, ownerID)
	if err != nil || !ok {
		return 0, false, err
	}
	return plan.Limits.JobsPerMinute, true, nil
}

func (s *Service) planOf(ctx context.Context, ownerID string) (Plan, bool, error) {
	if ownerID == "" {
		return Plan{}, false, nil
	}
	acct, err := s.store.BillingAccount(ctx, ownerID)
	if levqor.ErrorCode(err) == levqor.ENotFound {
		return Plan{}, false, nil
	} else if err != nil {
		return Plan{}, false, fmt.Errorf("billing: read account: %w", err)
	}
	plan, _ := s.inForce(acct)
	return plan, true, nil
}

// planForSubscription is the plan a subscription in status with price entitles to:
// the price's plan while the subscription can still be paid, free once it cannot.
func (s *Service) planForSubscription(status stripe.SubscriptionStatus, priceID string) string {
	switch status {
	case stripe.SubscriptionStatusActive, stripe.SubscriptionStatusTrialing, stripe.SubscriptionStatusPastDue, stripe.SubscriptionStatusUnpaid:
		if p, ok := s.byPrice[priceID]; ok {
			return p.ID
		}
	}
	return FreePlan
}

// withSubscription returns acct updated from sub, Stripe's current view.
func (s *Service) withSubscription(acct Account, sub *stripe.Subscription) Account {
	acct.SubscriptionID = sub.ID
	acct.Status = string(sub.Status)
	acct.PriceID, acct.CurrentPeriodEnd = "", time.Time{}
	if sub.Items != nil && len(sub.Items.Data) > 0 {
		item := sub.Items.Data[0]
		if item.Price != nil {
			acct.PriceID = item.Price.ID
		}
		if item.CurrentPeriodEnd > 0 {
			acct.CurrentPeriodEnd = time.Unix(item.CurrentPeriodEnd, 0).UTC()
		}
	}
	acct.Plan = s.planForSubscription(sub.Status, acct.PriceID)
	if acct.Plan != FreePlan {
		if _, known := s.byPrice[acct.PriceID]; !known {
			s.log.Warn("stripe subscription for a price not in the plan table", "subscription", sub.ID, "price", acct.PriceID)
		}
	}
	if sub.Status == stripe.SubscriptionStatusActive || sub.Status == stripe.SubscriptionStatusTrialing {
		acct.PaymentFailedAt = time.Time{} // paid: no failure outstanding
	}
	return acct
}

// isNotFound reports whether err is Stripe's 404.
func isNotFound(err error) bool {
	var se *stripe.Error
	return errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound
}
