package storetest

import (
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/billing"
	"github.com/levqor/levqor/store"
)

// RunBilling checks the billing.Store contract: a customer stored once, events applied
// once (also when delivered concurrently) together with their effect on the account and
// on the user's plan.
func RunBilling(t *testing.T, open func(t testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	u, _, err := s.CreateUserIfAbsent(ctx, newUser("billing-"+newID()+"@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.BillingAccount(ctx, u.ID); levqor.ErrorCode(err) != levqor.ENotFound {
		t.Fatalf("BillingAccount before any = %v; want not_found", err)
	}
	at := time.Date(2026, 12, 7, 4, 30, 0, 123456000, time.FixedZone("X", 3600))
	first, err := s.CreateBillingAccount(ctx, u.ID, "cus_first", at)
	if err != nil || first.CustomerID != "cus_first" || first.Plan != billing.FreePlan || !first.UpdatedAt.Equal(at) {
		t.Fatalf("CreateBillingAccount = %+v, %v; want cus_first on the free plan at %v", first, err, at)
	}
	if again, err := s.CreateBillingAccount(ctx, u.ID, "cus_second", at.Add(time.Hour)); err != nil || again.CustomerID != "cus_first" {
		t.Fatalf("second CreateBillingAccount = %+v, %v; want the first customer kept", again, err)
	}
	if got, err := s.BillingAccountByCustomer(ctx, "cus_first"); err != nil || got.UserID != u.ID {
		t.Fatalf("BillingAccountByCustomer = %+v, %v", got, err)
	}
	if _, err := s.BillingAccountByCustomer(ctx, "cus_second"); levqor.ErrorCode(err) != levqor.ENotFound {
		t.Fatalf("BillingAccountByCustomer(unknown) = %v; want not_found", err)
	}

	paid := first
	paid.SubscriptionID, paid.Plan, paid.Status, paid.PriceID = "sub_1", "pro_monthly", "active", "price_pro_monthly"
	paid.CurrentPeriodEnd = time.Date(2027, 1, 7, 4, 30, 0, 0, time.UTC)
	paid.PaymentFailedAt = time.Date(2026, 12, 6, 1, 2, 3, 456789000, time.UTC)
	paid.LatestInvoiceID, paid.LatestInvoiceStatus = "in_1", "paid"
	paid.UpdatedAt = at.Add(time.Minute).UTC()

	// The same event delivered eight times at once: exactly one applies.
	var applied atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.ApplyBillingEvent(ctx, billing.Event{ID: "evt_1", Type: "invoice.paid", ReceivedAt: at}, &paid)
			if err != nil {
				t.Errorf("ApplyBillingEvent: %v", err)
			}
			if ok {
				applied.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := applied.Load(); n != 1 {
		t.Fatalf("one event delivered 8 times concurrently applied %d times; want 1", n)
	}
	got, err := s.BillingAccount(ctx, u.ID)
	if err != nil || !reflect.DeepEqual(got, paid) {
		t.Fatalf("account after the event:\n got  %+v, %v\n want %+v", got, err, paid)
	}
	if uu, err := s.GetUser(ctx, u.ID); err != nil || uu.Plan != "pro_monthly" {
		t.Fatalf("user's plan = %q, %v; want pro_monthly (set in the event's transaction)", uu.Plan, err)
	}

	// A duplicate changes nothing, even with another effect.
	other := paid
	other.Plan, other.Status = billing.FreePlan, "canceled"
	if ok, err := s.ApplyBillingEvent(ctx, billing.Event{ID: "evt_1", Type: "invoice.paid", ReceivedAt: at}, &other); err != nil || ok {
		t.Fatalf("duplicate ApplyBillingEvent = %v, %v; want false, nil", ok, err)
	}
	if got, _ := s.BillingAccount(ctx, u.ID); got.Plan != "pro_monthly" {
		t.Fatalf("a duplicate event changed the account: %+v", got)
	}
	// An event without an effect is recorded; a correction without an event applies.
	if ok, err := s.ApplyBillingEvent(ctx, billing.Event{ID: "evt_2", Type: "ping", ReceivedAt: at}, nil); err != nil || !ok {
		t.Fatalf("event without effect = %v, %v; want true", ok, err)
	}
	cleared := paid
	cleared.PaymentFailedAt, cleared.CurrentPeriodEnd = time.Time{}, time.Time{}
	if ok, err := s.ApplyBillingEvent(ctx, billing.Event{}, &cleared); err != nil || !ok {
		t.Fatalf("correction = %v, %v; want true", ok, err)
	}
	if got, _ := s.BillingAccount(ctx, u.ID); !got.PaymentFailedAt.IsZero() || !got.CurrentPeriodEnd.IsZero() {
		t.Fatalf("zero times not stored as NULL: %+v", got)
	}
	// An event whose account does not exist fails whole: the event is not recorded.
	ghost := paid
	ghost.UserID = newID()
	if _, err := s.ApplyBillingEvent(ctx, billing.Event{ID: "evt_3", Type: "x", ReceivedAt: at}, &ghost); err == nil {
		t.Fatal("ApplyBillingEvent for a missing account succeeded")
	}
	if ok, err := s.ApplyBillingEvent(ctx, billing.Event{ID: "evt_3", Type: "x", ReceivedAt: at}, nil); err != nil || !ok {
		t.Fatalf("evt_3 after its failed transaction = %v, %v; want recorded now (the failure rolled back)", ok, err)
	}
	all, err := s.BillingAccounts(ctx)
	if err != nil || len(all) != 1 || all[0].UserID != u.ID {
		t.Fatalf("BillingAccounts = %+v, %v", all, err)
	}
}
