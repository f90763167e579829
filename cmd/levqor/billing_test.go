package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/billing"
	"github.com/levqor/levqor/billing/billingtest"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
	"github.com/levqor/levqor/users"
)

// fixtureSubscription is the id of the one subscription stripe-mock lists.
func fixtureSubscription(t *testing.T, base string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/subscriptions?status=all", nil)
	req.SetBasicAuth(billingtest.SecretKey, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Data []struct{ ID string } `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list.Data) == 0 {
		t.Fatalf("stripe-mock lists no subscription: %v", err)
	}
	return list.Data[0].ID
}

// TestBillingReconcile seeds an account that disagrees with Stripe (stripe-mock):
// reconcile reports it (WARN, exit 1), --fix applies Stripe's state (OK), and a second
// run finds nothing. On both engines.
func TestBillingReconcile(t *testing.T) {
	base := billingtest.StripeMock(t)
	price, customer := billingtest.FixturePrice(t, base)
	subID := fixtureSubscription(t, base)
	plans := billing.DefaultPlans()
	plans[1].PriceID = price
	plansJSON, _ := json.Marshal(plans)

	for name, dbURL := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "levqor.db") },
		"postgres": func(t *testing.T) string { return storetest.PostgresURL(t) },
	} {
		t.Run(name, func(t *testing.T) {
			url := dbURL(t)
			env := map[string]string{"LEVQOR_DATABASE_URL": url, "LEVQOR_DATA_DIR": t.TempDir(),
				"LEVQOR_STRIPE_SECRET_KEY": billingtest.SecretKey, "LEVQOR_STRIPE_BASE_URL": base, "LEVQOR_PLANS": string(plansJSON)}
			getenv := func(k string) string { return env[k] }

			// Seed: the account says canceled/free; Stripe says active on pro_monthly's price.
			st, err := store.OpenShared(t.Context(), store.Options{Engine: map[bool]string{true: "postgres", false: "sqlite"}[name == "postgres"],
				SQLitePath: url, PostgresURL: url})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			u, _, err := st.CreateUserIfAbsent(t.Context(), users.User{ID: levqor.NewID("usr"), Email: "rec@example.com", Locale: "en-GB",
				Currency: "GBP", Plan: "free", Meta: map[string]any{}, CreatedAt: now, UpdatedAt: now})
			if err != nil {
				t.Fatal(err)
			}
			acct, err := st.CreateBillingAccount(t.Context(), u.ID, customer, now)
			if err != nil {
				t.Fatal(err)
			}
			acct.SubscriptionID, acct.Status, acct.Plan, acct.PriceID = subID, "canceled", billing.FreePlan, price
			if _, err := st.ApplyBillingEvent(t.Context(), billing.Event{}, &acct); err != nil {
				t.Fatal(err)
			}
			st.Close()

			reconcile := func(args ...string) (string, error) {
				var out bytes.Buffer
				err := run(t.Context(), append([]string{"billing", "reconcile"}, args...), getenv, &out, &out)
				return out.String(), err
			}
			out, err := reconcile("--since", "7d", "--mode", "test")
			var cf checkFailed
			if !errors.As(err, &cf) || exitCode(err) != 1 || !strings.Contains(out, "RECONCILE_STATUS=WARN") ||
				!strings.Contains(out, `field=status local="canceled" stripe="active"`) || !strings.Contains(out, `field=plan local="free" stripe="pro_monthly"`) {
				t.Fatalf("reconcile of a seeded mismatch: %v (exit %d)\n%s", err, exitCode(err), out)
			}
			if out, err := reconcile("--mode", "live"); err == nil || !strings.Contains(err.Error(), "test key") {
				t.Fatalf("--mode live with a test key: %v\n%s", err, out)
			}
			out, err = reconcile("--since", "30d", "--fix")
			if err != nil || !strings.Contains(out, "fixed=true") || !strings.Contains(out, "RECONCILE_STATUS=OK") {
				t.Fatalf("reconcile --fix: %v\n%s", err, out)
			}
			out, err = reconcile()
			if err != nil || strings.Contains(out, "MISMATCH") || !strings.Contains(out, "RECONCILE_STATUS=OK") {
				t.Fatalf("reconcile after --fix: %v\n%s", err, out)
			}
			if _, err := reconcile("--since", "forever"); !errors.As(err, new(usageError)) {
				t.Fatalf("--since forever: %v; want a usage error", err)
			}
		})
	}
}
