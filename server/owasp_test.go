package server_test

// The OWASP API Security Top 10 (2023) items that apply to this API, one named test
// each. API9 (inventory) is TestRouteInventory and TestNearMissRoutes; API6, API7
// and API10 (business flows, SSRF, unsafe consumption of APIs) arrive with jobs and
// connectors.

import (
	"bytes"
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/levqor/levqor/gen/client"
	"github.com/levqor/levqor/server"
)

// TestAPI1BrokenObjectLevelAuthorization: an owner asking for another owner's user
// gets 404 (not 403), whichever way it asks.
func TestAPI1BrokenObjectLevelAuthorization(t *testing.T) {
	b := setup(t, withAdmin)
	alice, bob := b.createUser(t, "alice@example.com"), b.createUser(t, "bob@example.com")
	aliceKey := b.createKey(t, alice.Id, "users:read", "users:write").Key

	for _, tc := range []struct{ method, path, contentType, body string }{
		{"GET", "/api/v1/users/" + bob.Id, "", ""},
		{"GET", "/api/v1/users?email=bob@example.com", "", ""},
		{"PATCH", "/api/v1/users/" + bob.Id, "application/merge-patch+json", `{"name":"pwned"}`},
	} {
		resp, body := b.do(t, tc.method, tc.path, hdr(aliceKey, tc.contentType), strings.NewReader(tc.body))
		if p := problemOf(t, resp, body); resp.StatusCode != http.StatusNotFound || p.Code != "not_found" {
			t.Errorf("%s %s as alice: %d %s", tc.method, tc.path, resp.StatusCode, body)
		}
	}
	// Upserting bob's email would change bob: refused as a function alice may not use.
	resp, body := b.do(t, "POST", "/api/v1/users", hdr(aliceKey, "application/json"), strings.NewReader(`{"email":"bob@example.com","name":"pwned"}`))
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusForbidden || p.Code != "forbidden" {
		t.Errorf("alice upserting bob: %d %s", resp.StatusCode, body)
	}
	got, err := b.Store.GetUser(t.Context(), bob.Id)
	if err != nil || got.Name != "" {
		t.Errorf("bob changed: %+v %v", got, err)
	}
	// Her own user she can read and change.
	resp, body = b.do(t, "GET", "/api/v1/users/"+alice.Id, hdr(aliceKey, ""), nil)
	if u := decode[client.User](t, resp, body, http.StatusOK); u.Id != alice.Id {
		t.Errorf("alice reading herself: %+v", u)
	}
	resp, body = b.do(t, "PATCH", "/api/v1/users/"+alice.Id, hdr(aliceKey, "application/merge-patch+json"), strings.NewReader(`{"name":"Alice"}`))
	if u := decode[client.User](t, resp, body, http.StatusOK); u.Name != "Alice" {
		t.Errorf("alice patching herself: %+v", u)
	}
}

// TestAPI2BrokenAuthentication: every bad-key case is 401 problem+json; a valid
// key without the scope is 403; keys never reach the logs.
func TestAPI2BrokenAuthentication(t *testing.T) {
	b := setup(t, withAdmin)
	u := b.createUser(t, "auth@example.com")
	readKey := b.createKey(t, u.Id, "users:read").Key
	revoked := b.createKey(t, u.Id, "users:read")
	resp, body := b.do(t, "DELETE", "/api/v1/keys/"+revoked.Id, hdr(adminKey, ""), nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	expiresAt := time.Now().Add(1500 * time.Millisecond).UTC()
	resp, body = b.do(t, "POST", "/api/v1/keys", hdr(adminKey, "application/json"),
		jsonBody(t, map[string]any{"owner_id": u.Id, "scopes": []string{"users:read"}, "expires_at": expiresAt}))
	expiring := decode[client.KeyWithSecret](t, resp, body, http.StatusCreated)
	path := "/api/v1/users/" + u.Id
	resp, body = b.do(t, "GET", path, hdr(expiring.Key, ""), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("expiring key before its expiry: %d %s", resp.StatusCode, body)
	}
	time.Sleep(time.Until(expiresAt) + 100*time.Millisecond)

	unknown := "lvq_live_" + strings.Repeat("A", 43)
	cases := map[string]http.Header{
		"missing":           {},
		"empty":             {"X-Api-Key": {""}},
		"malformed":         {"X-Api-Key": {"hunter2"}},
		"wrong prefix":      {"X-Api-Key": {"sk_live_" + strings.Repeat("A", 43)}},
		"unknown":           {"X-Api-Key": {unknown}},
		"revoked":           {"X-Api-Key": {revoked.Key}},
		"expired":           {"X-Api-Key": {expiring.Key}},
		"two keys":          {"X-Api-Key": {readKey, readKey}},
		"bearer not a key":  {"Authorization": {"Bearer " + readKey}},
		"lower-case prefix": {"X-Api-Key": {strings.ToUpper(readKey[:9]) + readKey[9:]}},
	}
	for name, h := range cases {
		resp, body := b.do(t, "GET", path, h, nil)
		if p := problemOf(t, resp, body); resp.StatusCode != http.StatusUnauthorized || p.Code != "unauthorized" {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	for _, q := range []string{"api_key", "key", "apikey", "token", "X-Api-Key"} {
		resp, body := b.do(t, "GET", path+"?"+q+"="+readKey, hdr(readKey, ""), nil)
		if p := problemOf(t, resp, body); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(deref(p.Detail), "URL") {
			t.Errorf("key in query %s: %d %s", q, resp.StatusCode, body)
		}
	}
	resp, body = b.do(t, "PATCH", path, hdr(readKey, "application/merge-patch+json"), strings.NewReader(`{"name":"x"}`))
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusForbidden || p.Code != "forbidden" {
		t.Errorf("read key writing: %d %s", resp.StatusCode, body)
	}
	for _, secret := range []string{readKey, revoked.Key, expiring.Key, adminKey, unknown} {
		if strings.Contains(b.Logs(), secret) || strings.Contains(b.Logs(), secret[len(secret)-12:]) {
			t.Errorf("a key appears in the logs")
		}
	}
}

// TestNoKeyConfiguredMeansClosed: with no bootstrap key and none stored, every
// authenticated operation answers 401 — never "allow all".
func TestNoKeyConfiguredMeansClosed(t *testing.T) {
	b := setup(t)
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/api/v1/users/usr_0abc", ""},
		{"GET", "/api/v1/users?email=a@example.com", ""},
		{"POST", "/api/v1/users", `{"email":"a@example.com"}`},
		{"GET", "/api/v1/keys", ""},
		{"POST", "/api/v1/keys", `{"owner_id":"usr_0abc","scopes":["admin"]}`},
		{"DELETE", "/api/v1/keys/key_0abc", ""},
		{"POST", "/api/v1/keys/key_0abc/roll", `{}`},
	} {
		for _, key := range []string{"", "anything-at-all-0123456789"} {
			resp, body := b.do(t, tc.method, tc.path, hdr(key, "application/json"), strings.NewReader(tc.body))
			if p := problemOf(t, resp, body); resp.StatusCode != http.StatusUnauthorized || p.Code != "unauthorized" {
				t.Errorf("%s %s with key %q: %d %s", tc.method, tc.path, key, resp.StatusCode, body)
			}
		}
	}
}

// TestAPI3BrokenObjectPropertyLevelAuthorization: server-owned fields cannot be
// set, and no response carries a key's hash or (after creation) its secret.
func TestAPI3BrokenObjectPropertyLevelAuthorization(t *testing.T) {
	b := setup(t, withAdmin)
	u := b.createUser(t, "prop@example.com")
	k := b.createKey(t, u.Id, "users:read", "users:write")
	for _, field := range []string{`"id":"usr_0mine"`, `"created_at":"2001-01-01T00:00:00Z"`, `"updated_at":"2001-01-01T00:00:00Z"`} {
		resp, body := b.do(t, "POST", "/api/v1/users", hdr(adminKey, "application/json"), strings.NewReader(`{"email":"prop@example.com",`+field+`}`))
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("upsert with %s: %d %s", field, resp.StatusCode, body)
		}
		resp, body = b.do(t, "PATCH", "/api/v1/users/"+u.Id, hdr(k.Key, "application/merge-patch+json"), strings.NewReader(`{`+field+`}`))
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("patch with %s: %d %s", field, resp.StatusCode, body)
		}
	}
	stored, err := b.Store.GetKey(t.Context(), k.Id)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/keys", "/api/v1/keys?owner_id=" + u.Id} {
		resp, body := b.do(t, "GET", path, hdr(adminKey, ""), nil)
		list := decode[client.KeyList](t, resp, body, http.StatusOK)
		if len(list.Data) != 1 || list.Data[0].Id != k.Id || list.Data[0].Last4 != k.Key[len(k.Key)-4:] {
			t.Errorf("list = %+v", list)
		}
		if bytes.Contains(body, []byte(k.Key[9:])) || bytes.Contains(body, []byte(`"key"`)) || bytes.Contains(body, []byte("hash")) {
			t.Errorf("key list leaks a secret or hash: %s", body)
		}
		for _, enc := range []string{string(stored.Hash), strconv.Quote(string(stored.Hash))} {
			if bytes.Contains(body, []byte(enc)) {
				t.Errorf("key list contains the hash")
			}
		}
	}
}

// TestAPI4UnrestrictedResourceConsumption: bodies over the limit (413), deep JSON
// (400) and request bursts (429 with Retry-After and the rate-limit headers).
func TestAPI4UnrestrictedResourceConsumption(t *testing.T) {
	rate := func(n int64) limiter.Rate { return limiter.Rate{Period: time.Minute, Limit: n} }
	b := setup(t, withAdmin, func(o *testOptions) {
		o.MaxBodyBytes = 4 << 10
		o.Limits = &server.Limits{IP: rate(3), Global: rate(100), Key: rate(4), Store: memory.NewStore(), FailOpen: true}
	})
	resp, body := b.do(t, "POST", "/api/v1/users", hdr(adminKey, "application/json"), strings.NewReader(`{"email":"a@example.com","name":"`+strings.Repeat("x", 5<<10)+`"}`))
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusRequestEntityTooLarge || p.Code != "too_large" {
		t.Errorf("large body: %d %s", resp.StatusCode, body)
	}
	resp, body = b.do(t, "POST", "/api/v1/users", hdr(adminKey, "application/json"), strings.NewReader(strings.Repeat(`{"a":`, 33)+"1"+strings.Repeat("}", 33)))
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusBadRequest || !strings.Contains(deref(p.Detail), "nested") {
		t.Errorf("deep JSON: %d %s", resp.StatusCode, body)
	}

	// Per key: the two requests above never reached the gate; four pass, the fifth is 429.
	for i := 1; i <= 5; i++ {
		resp, body = b.do(t, "GET", "/api/v1/keys", hdr(adminKey, ""), nil)
		checkRateHeaders(t, resp, "key", 4)
		if i <= 4 && resp.StatusCode != http.StatusOK {
			t.Fatalf("keyed request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusTooManyRequests || p.Code != "rate_limited" {
		t.Fatalf("fifth keyed request: %d %s", resp.StatusCode, body)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
	}

	// Per IP on public routes: 3 pass, the fourth is 429; probes stay unlimited.
	for i := 1; i <= 4; i++ {
		resp, body = b.do(t, "GET", "/status", nil, nil)
		checkRateHeaders(t, resp, "", 3)
	}
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusTooManyRequests || p.Code != "rate_limited" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("fourth anonymous request: %d %s", resp.StatusCode, body)
	}
	for i := 0; i < 10; i++ {
		if resp, body := b.do(t, "GET", "/health", nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("/health is exempt, got %d %s", resp.StatusCode, body)
		}
	}
	// Guessing keys is limited by IP too: failed authentications spend the IP budget.
	resp, body = b.do(t, "GET", "/api/v1/keys", hdr("lvq_live_"+strings.Repeat("B", 43), ""), nil)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("bad key from a rate-limited IP: %d %s", resp.StatusCode, body)
	}
}

// checkRateHeaders checks the IETF and X-RateLimit headers of a limited response.
func checkRateHeaders(t *testing.T, resp *http.Response, policy string, limit int) {
	t.Helper()
	h := resp.Header
	if h.Get("X-RateLimit-Limit") != strconv.Itoa(limit) || h.Get("X-RateLimit-Remaining") == "" || h.Get("X-RateLimit-Reset") == "" {
		t.Errorf("X-RateLimit headers: %v", h)
	}
	if !strings.Contains(h.Get("RateLimit-Policy"), ";q="+strconv.Itoa(limit)+";w=60") || !strings.Contains(h.Get("RateLimit"), ";r=") {
		t.Errorf("RateLimit headers: policy %q, state %q", h.Get("RateLimit-Policy"), h.Get("RateLimit"))
	}
	if policy != "" && !strings.HasPrefix(h.Get("RateLimit-Policy"), `"`+policy+`"`) {
		t.Errorf("policy %q, want %q", h.Get("RateLimit-Policy"), policy)
	}
}

// TestAPI5BrokenFunctionLevelAuthorization: a normal key (every scope but admin)
// cannot use any admin operation.
func TestAPI5BrokenFunctionLevelAuthorization(t *testing.T) {
	b := setup(t, withAdmin)
	u := b.createUser(t, "fn@example.com")
	k := b.createKey(t, u.Id, "jobs:read", "jobs:write", "users:read", "users:write", "metrics:read")
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/api/v1/keys", ""},
		{"POST", "/api/v1/keys", `{"owner_id":"` + u.Id + `","scopes":["admin"]}`},
		{"DELETE", "/api/v1/keys/" + k.Id, ""},
		{"POST", "/api/v1/keys/" + k.Id + "/roll", `{}`},
	} {
		resp, body := b.do(t, tc.method, tc.path, hdr(k.Key, "application/json"), strings.NewReader(tc.body))
		if p := problemOf(t, resp, body); resp.StatusCode != http.StatusForbidden || p.Code != "forbidden" {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, body)
		}
	}
	if got, _ := b.Store.GetKey(t.Context(), k.Id); got.RevokedAt != nil {
		t.Error("the key revoked itself")
	}
}

// TestAPI8SecurityMisconfiguration: CORS by allowlist only, HSTS only over TLS
// (or a trusted proxy saying so). Headers and problem+json on 404/405/413/429
// are TestSecurityHeadersOnEveryResponse and the tests above.
func TestAPI8SecurityMisconfiguration(t *testing.T) {
	b := setup(t, withAdmin, func(o *testOptions) {
		o.CORSOrigins = []string{"https://app.levqor.ai"}
		o.TrustedProxies = []netipPrefix{mustPrefix("127.0.0.0/8")}
	})
	get := func(h http.Header) *http.Response {
		resp, _ := b.do(t, "GET", "/health", h, nil)
		return resp
	}
	if resp := get(http.Header{"Origin": {"https://app.levqor.ai"}}); resp.Header.Get("Access-Control-Allow-Origin") != "https://app.levqor.ai" {
		t.Errorf("allowed origin: ACAO %q", resp.Header.Get("Access-Control-Allow-Origin"))
	}
	resp := get(http.Header{"Origin": {"https://evil.example"}})
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("disallowed origin got %s", k)
		}
	}
	req, _ := http.NewRequestWithContext(context.Background(), "OPTIONS", b.URL+"/api/v1/users", nil)
	req.Header.Set("Origin", "https://app.levqor.ai")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,x-api-key")
	pre, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pre.Body.Close()
	if pre.StatusCode >= 300 || pre.Header.Get("Access-Control-Allow-Origin") != "https://app.levqor.ai" ||
		!strings.Contains(strings.ToLower(pre.Header.Get("Access-Control-Allow-Headers")), "x-api-key") {
		t.Errorf("preflight: %d %v", pre.StatusCode, pre.Header)
	}
	if resp := get(nil); resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS over plain HTTP")
	}
	if resp := get(http.Header{"X-Forwarded-Proto": {"https"}}); !strings.HasPrefix(resp.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("HSTS behind a trusted TLS proxy: %q", resp.Header.Get("Strict-Transport-Security"))
	}
	if resp := get(nil); resp.Header.Get("Server") != "" {
		t.Errorf("Server header %q", resp.Header.Get("Server"))
	}
}

type netipPrefix = netip.Prefix

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
