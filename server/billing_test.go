package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/levqor/levqor/billing"
	"github.com/levqor/levqor/billing/billingtest"
	"github.com/levqor/levqor/gen/client"
	"github.com/levqor/levqor/server"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
)

// withBilling runs the server over open's store with billing against stripe-mock at base,
// pro_monthly at stripe-mock's fixture price.
func withBilling(t *testing.T, open func(testing.TB) store.Store, base string) func(*testOptions) {
	return func(o *testOptions) {
		o.Store = open(t)
		price, _ := billingtest.FixturePrice(t, base)
		plans := billing.DefaultPlans()
		plans[1].PriceID = price
		svc, err := billing.NewService(o.Store, o.Store, billing.Config{SecretKey: billingtest.SecretKey,
			WebhookSecret: billingtest.WebhookSecret, BaseURL: base, PublicURL: "https://levqor.test", Plans: plans,
			Grace: time.Hour, Logger: o.Logger})
		if err != nil {
			t.Fatal(err)
		}
		o.Billing = svc
	}
}

func TestBillingRoutes(t *testing.T) {
	base := billingtest.StripeMock(t)
	for name, open := range map[string]func(testing.TB) store.Store{"sqlite": storetest.OpenSQLite, "postgres": storetest.OpenPostgres} {
		t.Run(name, func(t *testing.T) {
			b := setup(t, withBilling(t, open, base), withAdmin)
			u := b.createUser(t, "payer@example.com")
			key := b.createKey(t, u.Id, "users:read", "users:write").Key
			var bodies [][]byte
			call := func(method, path string, body any, want int) []byte {
				t.Helper()
				var rd *bytes.Reader
				if body != nil {
					rd = jsonBody(t, body)
				} else {
					rd = bytes.NewReader(nil)
				}
				resp, got := b.do(t, method, path, hdr(key, "application/json"), rd)
				if resp.StatusCode != want {
					t.Fatalf("%s %s: %d %s; want %d", method, path, resp.StatusCode, got, want)
				}
				bodies = append(bodies, got)
				return got
			}
			var st client.Billing
			_ = json.Unmarshal(call("GET", "/api/v1/billing", nil, 200), &st)
			if st.Plan != "free" || st.Status != "none" || st.Limits.JobsPerMinute != 10 {
				t.Fatalf("billing before checkout = %+v", st)
			}
			call("POST", "/api/v1/billing/portal", nil, 404)
			var redirect client.BillingRedirect
			_ = json.Unmarshal(call("POST", "/api/v1/billing/checkout", map[string]any{"plan": "pro_monthly"}, 200), &redirect)
			if !strings.HasPrefix(redirect.Url, "https://") {
				t.Fatalf("checkout url %q", redirect.Url)
			}
			call("POST", "/api/v1/billing/checkout", map[string]any{"plan": "gold"}, 400)
			call("POST", "/api/v1/billing/checkout", map[string]any{"plan": "pro_monthly", "price": 1}, 400)
			call("POST", "/api/v1/billing/portal", nil, 200)

			acct, err := b.Store.BillingAccount(t.Context(), u.Id)
			if err != nil {
				t.Fatal(err)
			}
			ev := billingtest.Event("evt_srv", "customer.subscription.updated", time.Now(), map[string]any{
				"id": "sub_srv", "object": "subscription", "customer": acct.CustomerID, "status": "active"})
			hook := func(body []byte, sig string, contentType string) (*http.Response, []byte) {
				h := http.Header{}
				if sig != "" {
					h.Set("Stripe-Signature", sig)
				}
				if contentType != "" {
					h.Set("Content-Type", contentType)
				}
				resp, got := b.do(t, "POST", "/billing/webhook", h, bytes.NewReader(body))
				bodies = append(bodies, got)
				return resp, got
			}
			for i, wantDup := range []bool{false, true} {
				resp, got := hook(ev, billingtest.Sign(ev, billingtest.WebhookSecret, time.Time{}), "application/json; charset=utf-8")
				r := decode[client.WebhookReceipt](t, resp, got, 200)
				if !r.Received || (r.Duplicate != nil && *r.Duplicate) != wantDup {
					t.Fatalf("delivery %d: %+v; want duplicate=%v", i, r, wantDup)
				}
			}
			_ = json.Unmarshal(call("GET", "/api/v1/billing", nil, 200), &st)
			if st.Plan != "pro_monthly" || st.Status != "active" || st.Limits.JobsPerMinute != 120 || st.CurrentPeriodEnd == nil {
				t.Fatalf("billing after the webhook = %+v; want pro_monthly in force", st)
			}
			if got, _ := b.Store.GetUser(t.Context(), u.Id); got.Plan != "pro_monthly" {
				t.Fatalf("user's plan %q; want pro_monthly", got.Plan)
			}

			// Hostile requests: always a 4xx problem, never a 5xx, never an effect.
			signed := func(body []byte) string { return billingtest.Sign(body, billingtest.WebhookSecret, time.Time{}) }
			deep := []byte(strings.Repeat(`{"a":`, 200) + "1" + strings.Repeat("}", 200))
			for _, tc := range []struct {
				name, sig, ct string
				body          []byte
			}{
				{"no signature", "", "application/json", ev},
				{"forged", billingtest.Sign(ev, "whsec_forged00000000000000000000", time.Time{}), "application/json", ev},
				{"stale", billingtest.Sign(ev, billingtest.WebhookSecret, time.Now().Add(-time.Hour)), "application/json", ev},
				{"altered body", signed(ev), "application/json", bytes.Replace(ev, []byte("active"), []byte("unpaid"), 1)},
				{"garbage header", "t=,v1=,,,===", "application/json", ev},
				{"huge header", "t=1,v1=" + strings.Repeat("a", 5000), "application/json", ev},
				{"not json", signed([]byte("hello")), "application/json", []byte("hello")},
				{"empty", signed(nil), "application/json", nil},
				{"array", signed([]byte("[1,2]")), "application/json", []byte("[1,2]")},
				{"text", signed(ev), "text/plain", ev},
				{"deep", signed(deep), "application/json", deep},
				{"NUL", signed([]byte(`{"id":"evt_\u0000"}`)), "application/json", []byte(`{"id":"evt_\u0000"}`)},
				{"signed junk object", signed([]byte(`{"id":"evt_j","object":"event","type":"invoice.paid","data":{"object":[1]}}`)), "application/json",
					[]byte(`{"id":"evt_j","object":"event","type":"invoice.paid","data":{"object":[1]}}`)},
				{"signed non-event", signed([]byte(`{"id":"x","object":"charge"}`)), "application/json", []byte(`{"id":"x","object":"charge"}`)},
			} {
				resp, got := hook(tc.body, tc.sig, tc.ct)
				if resp.StatusCode < 400 || resp.StatusCode >= 500 {
					t.Errorf("%s: %d %s; want a 4xx", tc.name, resp.StatusCode, got)
					continue
				}
				problemOf(t, resp, got)
			}
			if got, _ := b.Store.GetUser(t.Context(), u.Id); got.Plan != "pro_monthly" {
				t.Fatalf("a hostile request changed the plan to %q", got.Plan)
			}
			// No Stripe secret in any response or log line.
			for _, secret := range []string{billingtest.SecretKey, billingtest.WebhookSecret} {
				for _, body := range bodies {
					if bytes.Contains(body, []byte(secret)) {
						t.Fatalf("a response carries a Stripe secret: %s", body)
					}
				}
				if strings.Contains(b.Logs(), secret) {
					t.Fatalf("the log carries a Stripe secret")
				}
			}
		})
	}
}

func TestBillingNotConfigured(t *testing.T) {
	b := setup(t, withAdmin)
	u := b.createUser(t, "nobill@example.com")
	key := b.createKey(t, u.Id, "users:read", "users:write").Key
	for _, path := range []string{"/api/v1/billing/checkout", "/api/v1/billing/portal"} {
		resp, body := b.do(t, "POST", path, hdr(key, "application/json"), jsonBody(t, map[string]any{"plan": "pro_monthly"}))
		if path == "/api/v1/billing/portal" {
			resp, body = b.do(t, "POST", path, hdr(key, ""), nil)
		}
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s without billing: %d %s; want 503", path, resp.StatusCode, body)
		}
	}
	ev := []byte(`{"id":"evt_1","object":"event","type":"invoice.paid","data":{"object":{}}}`)
	h := http.Header{"Stripe-Signature": {billingtest.Sign(ev, billingtest.WebhookSecret, time.Time{})}, "Content-Type": {"application/json"}}
	if resp, body := b.do(t, "POST", "/billing/webhook", h, bytes.NewReader(ev)); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("webhook without billing: %d %s; want 503", resp.StatusCode, body)
	}
}

// TestPlanIntakeLimit: an owner with a billing account submits at most its plan's jobs
// per minute (free: 10); the next intake is 429 with Retry-After, and a paid plan
// raises the limit at once.
func TestPlanIntakeLimit(t *testing.T) {
	base := billingtest.StripeMock(t)
	for name, open := range map[string]func(testing.TB) store.Store{"sqlite": storetest.OpenSQLite, "postgres": storetest.OpenPostgres} {
		t.Run(name, func(t *testing.T) {
			b := setup(t, withBilling(t, open, base), withAdmin, func(o *testOptions) {
				o.Limits = &server.Limits{Store: memory.NewStore(), IP: limiter.Rate{Period: time.Minute, Limit: 1000},
					Global: limiter.Rate{Period: time.Minute, Limit: 1000}, Key: limiter.Rate{Period: time.Minute, Limit: 1000}}
			})
			u := b.createUser(t, "busy@example.com")
			key := b.createKey(t, u.Id, "jobs:write", "users:write").Key
			job := echoJob("plan-limit")
			submit := func() *http.Response {
				resp, _ := b.do(t, "POST", "/api/v1/intake", hdr(key, "application/json"), jsonBody(t, job))
				return resp
			}
			// No billing account yet: the per-key limit only.
			for i := range 12 {
				if resp := submit(); resp.StatusCode != http.StatusAccepted {
					t.Fatalf("intake %d without an account: %d", i, resp.StatusCode)
				}
			}
			resp, body := b.do(t, "POST", "/api/v1/billing/checkout", hdr(key, "application/json"), jsonBody(t, map[string]any{"plan": "pro_monthly"}))
			if resp.StatusCode != 200 {
				t.Fatalf("checkout: %d %s", resp.StatusCode, body)
			}
			// Now on the free plan (an account without a subscription): 10 a minute.
			for i := range 10 {
				if resp := submit(); resp.StatusCode != http.StatusAccepted {
					t.Fatalf("intake %d on the free plan: %d", i, resp.StatusCode)
				}
			}
			resp = submit()
			if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("11th intake on the free plan: %d (Retry-After %q); want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			// Subscribing to pro (120 a minute) lifts it.
			acct, _ := b.Store.BillingAccount(t.Context(), u.Id)
			ev := billingtest.Event("evt_pro", "customer.subscription.updated", time.Now(), map[string]any{
				"id": "sub_pro", "object": "subscription", "customer": acct.CustomerID, "status": "active"})
			h := http.Header{"Stripe-Signature": {billingtest.Sign(ev, billingtest.WebhookSecret, time.Time{})}, "Content-Type": {"application/json"}}
			if resp, body := b.do(t, "POST", "/billing/webhook", h, bytes.NewReader(ev)); resp.StatusCode != 200 {
				t.Fatalf("webhook: %d %s", resp.StatusCode, body)
			}
			if resp := submit(); resp.StatusCode != http.StatusAccepted {
				t.Fatalf("intake after upgrading: %d; want 202", resp.StatusCode)
			}
		})
	}
}
