package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/levqor/levqor/gen/client"
	"github.com/levqor/levqor/keys"
)

// adminKey is the bootstrap admin key of servers started withAdmin.
const adminKey = "test-bootstrap-admin-key-0123456789"

// withAdmin makes adminKey a bootstrap admin key (as LEVQOR_API_KEYS does).
func withAdmin(o *testOptions) { o.Keys = keys.NewService(o.Store, []string{adminKey}) }

// hdr builds request headers: an API key (when not "") and a Content-Type (when not "").
func hdr(key, contentType string) http.Header {
	h := http.Header{}
	if key != "" {
		h.Set("X-Api-Key", key)
	}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return h
}

// jsonBody encodes v for a request body.
func jsonBody(t *testing.T, v any) *bytes.Reader {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

// decode reads a JSON response body into a T, failing the test on a wrong status.
func decode[T any](t *testing.T, resp *http.Response, body []byte, status int) T {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body %.400s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
	return v
}

// createUser upserts a user with the admin key and returns it.
func (b *bundle) createUser(t *testing.T, email string) client.User {
	t.Helper()
	resp, body := b.do(t, "POST", "/api/v1/users", hdr(adminKey, "application/json"), jsonBody(t, map[string]any{"email": email}))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("create user %s: %d %s", email, resp.StatusCode, body)
	}
	return decode[client.User](t, resp, body, resp.StatusCode)
}

// createKey issues a key for owner with the admin key and returns it with its secret.
func (b *bundle) createKey(t *testing.T, ownerID string, scopes ...string) client.KeyWithSecret {
	t.Helper()
	resp, body := b.do(t, "POST", "/api/v1/keys", hdr(adminKey, "application/json"), jsonBody(t, map[string]any{"owner_id": ownerID, "scopes": scopes}))
	return decode[client.KeyWithSecret](t, resp, body, http.StatusCreated)
}

func TestUpsertUser(t *testing.T) {
	b := setup(t, withAdmin)
	in := map[string]any{"email": "  Ada@Example.COM ", "name": "Ada", "locale": "en-GB", "currency": "EUR", "plan": "pro", "meta": map[string]any{"team": "core"}}

	resp, body := b.do(t, "POST", "/api/v1/users", hdr(adminKey, "application/json"), jsonBody(t, in))
	created := decode[client.User](t, resp, body, http.StatusCreated)
	if created.Email != "ada@example.com" || created.Name != "Ada" || created.Currency != "EUR" || created.Plan != "pro" || created.Meta["team"] != "core" {
		t.Fatalf("created = %+v", created)
	}
	if !strings.HasPrefix(created.Id, "usr_") {
		t.Errorf("id %q, want usr_ prefix", created.Id)
	}

	resp, body = b.do(t, "POST", "/api/v1/users", hdr(adminKey, "application/json"), jsonBody(t, in))
	again := decode[client.User](t, resp, body, http.StatusOK)
	if again.Id != created.Id || !again.UpdatedAt.Equal(created.UpdatedAt) {
		t.Errorf("same body twice changed the user: %+v → %+v", created, again)
	}

	resp, body = b.do(t, "POST", "/api/v1/users", hdr(adminKey, "application/json"), jsonBody(t, map[string]any{"email": "ada@example.com", "name": "Ada L."}))
	changed := decode[client.User](t, resp, body, http.StatusOK)
	if changed.Id != created.Id || changed.Name != "Ada L." || changed.Plan != "pro" || !changed.UpdatedAt.After(created.UpdatedAt) {
		t.Errorf("update by upsert = %+v", changed)
	}

	// Lookups by id and by (un-normalised) email, through the generated client.
	got, err := b.Client.GetUserWithResponse(t.Context(), created.Id, func(ctx context.Context, r *http.Request) error {
		r.Header.Set("X-Api-Key", adminKey)
		return nil
	})
	if err != nil || got.JSON200 == nil || got.JSON200.Name != "Ada L." {
		t.Fatalf("GetUser: %v %+v", err, got)
	}
	found, err := b.Client.FindUserWithResponse(t.Context(), &client.FindUserParams{Email: "ADA@example.com"}, func(ctx context.Context, r *http.Request) error {
		r.Header.Set("X-Api-Key", adminKey)
		return nil
	})
	if err != nil || found.JSON200 == nil || found.JSON200.Id != created.Id {
		t.Fatalf("FindUser: %v %+v", err, found)
	}
	resp, body = b.do(t, "GET", "/api/v1/users?email=nobody@example.com", hdr(adminKey, ""), nil)
	if p := problemOf(t, resp, body); p.Code != "not_found" {
		t.Errorf("unknown email: %+v", p)
	}
}

func TestPatchUser(t *testing.T) {
	b := setup(t, withAdmin)
	resp, body := b.do(t, "POST", "/api/v1/users", hdr(adminKey, "application/json"),
		jsonBody(t, map[string]any{"email": "p@example.com", "name": "P", "meta": map[string]any{"a": 1, "b": map[string]any{"c": 2, "d": 3}}}))
	u := decode[client.User](t, resp, body, http.StatusCreated)

	for _, ct := range []string{"application/merge-patch+json", "application/json"} {
		resp, body = b.do(t, "PATCH", "/api/v1/users/"+u.Id, hdr(adminKey, ct), strings.NewReader(`{"meta":{"a":null,"b":{"d":null,"e":4}},"currency":"USD"}`))
		p := decode[client.User](t, resp, body, http.StatusOK)
		want := map[string]any{"b": map[string]any{"c": float64(2), "e": float64(4)}}
		if mustJSON(t, p.Meta) != mustJSON(t, want) || p.Currency != "USD" || p.Name != "P" || p.Email != u.Email {
			t.Errorf("%s: patched = %+v", ct, p)
		}
	}
	resp, body = b.do(t, "PATCH", "/api/v1/users/"+u.Id, hdr(adminKey, "text/plain"), strings.NewReader(`{"name":"x"}`))
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusUnsupportedMediaType || p.Code != "unsupported_media_type" {
		t.Errorf("text/plain patch: %d %+v", resp.StatusCode, p)
	}
	resp, body = b.do(t, "PATCH", "/api/v1/users/usr_0missing", hdr(adminKey, "application/merge-patch+json"), strings.NewReader(`{"name":"x"}`))
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusNotFound || p.Code != "not_found" {
		t.Errorf("patch missing user: %d %+v", resp.StatusCode, p)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestUsersBadInput: every malformed, oversized, missing, wrong-type or hostile
// input is a 4xx problem naming the problem, never a 5xx.
func TestUsersBadInput(t *testing.T) {
	b := setup(t, withAdmin, func(o *testOptions) { o.MaxBodyBytes = 64 << 10 })
	u := b.createUser(t, "bad@example.com")
	big := strings.Repeat("x", 17<<10)
	cases := []struct {
		name, method, path, contentType, body string
		status                                int
		code, pointer                         string
	}{
		{"malformed JSON", "POST", "/api/v1/users", "application/json", `{"email":`, 400, "invalid", ""},
		{"empty body", "POST", "/api/v1/users", "application/json", ``, 400, "invalid", ""},
		{"array body", "POST", "/api/v1/users", "application/json", `[]`, 400, "invalid", ""},
		{"missing email", "POST", "/api/v1/users", "application/json", `{"name":"x"}`, 400, "invalid", ""},
		{"email wrong type", "POST", "/api/v1/users", "application/json", `{"email":5}`, 400, "invalid", "/email"},
		{"email not an address", "POST", "/api/v1/users", "application/json", `{"email":"not-an-email"}`, 400, "invalid", "/email"},
		{"email too long", "POST", "/api/v1/users", "application/json", `{"email":"` + strings.Repeat("a", 250) + `@example.com"}`, 400, "invalid", "/email"},
		{"name too long", "POST", "/api/v1/users", "application/json", `{"email":"a@example.com","name":"` + strings.Repeat("n", 201) + `"}`, 400, "invalid", "/name"},
		{"bad currency", "POST", "/api/v1/users", "application/json", `{"email":"a@example.com","currency":"JPY"}`, 400, "invalid", "/currency"},
		{"bad locale", "POST", "/api/v1/users", "application/json", `{"email":"a@example.com","locale":"<script>"}`, 400, "invalid", "/locale"},
		{"meta not an object", "POST", "/api/v1/users", "application/json", `{"email":"a@example.com","meta":[1]}`, 400, "invalid", "/meta"},
		{"meta over 16 KiB", "POST", "/api/v1/users", "application/json", `{"email":"a@example.com","meta":{"x":"` + big + `"}}`, 400, "invalid", "/meta"},
		{"server-owned id", "POST", "/api/v1/users", "application/json", `{"email":"a@example.com","id":"usr_x"}`, 400, "invalid", "/id"},
		{"server-owned created_at", "POST", "/api/v1/users", "application/json", `{"email":"a@example.com","created_at":"2020-01-01T00:00:00Z"}`, 400, "invalid", "/created_at"},
		{"server-owned updated_at", "POST", "/api/v1/users", "application/json", `{"email":"a@example.com","updated_at":"2020-01-01T00:00:00Z"}`, 400, "invalid", "/updated_at"},
		{"unknown field", "POST", "/api/v1/users", "application/json", `{"email":"a@example.com","role":"admin"}`, 400, "invalid", "/role"},
		{"deep JSON", "POST", "/api/v1/users", "application/json", `{"email":"a@example.com","meta":{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`, 400, "invalid", ""},
		{"oversized body", "POST", "/api/v1/users", "application/json", `{"email":"a@example.com","meta":{"x":"` + strings.Repeat("y", 70<<10) + `"}}`, 413, "too_large", ""},
		{"wrong content type", "POST", "/api/v1/users", "text/plain", `{"email":"a@example.com"}`, 415, "unsupported_media_type", ""},
		{"form content type", "POST", "/api/v1/users", "application/x-www-form-urlencoded", `email=a@example.com`, 415, "unsupported_media_type", ""},
		{"no content type", "POST", "/api/v1/users", "", `{"email":"a@example.com"}`, 415, "unsupported_media_type", ""},
		{"NUL in email", "POST", "/api/v1/users", "application/json", `{"email":"a\u0000@example.com"}`, 400, "invalid", "/email"},
		{"bad id pattern", "GET", "/api/v1/users/USR-<b>", "", ``, 400, "invalid", "path.id"},
		{"path traversal", "GET", "/api/v1/users/..%2f..%2fetc", "", ``, 404, "not_found", ""},
		{"id too long", "GET", "/api/v1/users/usr_" + strings.Repeat("a", 70), "", ``, 400, "invalid", "path.id"},
		{"unknown id", "GET", "/api/v1/users/usr_0nobody", "", ``, 404, "not_found", ""},
		{"lookup without email", "GET", "/api/v1/users", "", ``, 400, "invalid", "query.email"},
		{"lookup with bad email", "GET", "/api/v1/users?email=%3Cscript%3E", "", ``, 400, "invalid", "/email"},
		{"empty patch", "PATCH", "/api/v1/users/" + u.Id, "application/merge-patch+json", `{}`, 400, "invalid", ""},
		{"patch server-owned email", "PATCH", "/api/v1/users/" + u.Id, "application/merge-patch+json", `{"email":"x@example.com"}`, 400, "invalid", "/email"},
		{"patch null name", "PATCH", "/api/v1/users/" + u.Id, "application/merge-patch+json", `{"name":null}`, 400, "invalid", "/name"},
		{"patch wrong type", "PATCH", "/api/v1/users/" + u.Id, "application/merge-patch+json", `{"plan":7}`, 400, "invalid", "/plan"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := b.do(t, tc.method, tc.path, hdr(adminKey, tc.contentType), strings.NewReader(tc.body))
			p := problemOf(t, resp, body)
			if resp.StatusCode != tc.status || string(p.Code) != tc.code {
				t.Fatalf("status %d code %q, want %d %q; body %.300s", resp.StatusCode, p.Code, tc.status, tc.code, body)
			}
			if tc.pointer == "" {
				return
			}
			var pointers []string
			if p.Errors != nil {
				for _, e := range *p.Errors {
					pointers = append(pointers, e.Pointer)
				}
			}
			found := false
			for _, ptr := range pointers {
				found = found || ptr == tc.pointer
			}
			if !found {
				t.Errorf("errors point at %q, want %q; body %.300s", pointers, tc.pointer, body)
			}
		})
	}
}

// TestConcurrentUpsertCreatesOneUser: 50 concurrent upserts of one new email make
// exactly one user (one 201, the rest 200, one id).
func TestConcurrentUpsertCreatesOneUser(t *testing.T) {
	b := setup(t, withAdmin)
	const n = 50
	var wg sync.WaitGroup
	statuses, ids := make([]int, n), make([]string, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest("POST", b.URL+"/api/v1/users", strings.NewReader(`{"email":"race@example.com","name":"R"}`))
			req.Header = hdr(adminKey, "application/json")
			resp, err := b.HTTP.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var u client.User
			_ = json.NewDecoder(resp.Body).Decode(&u)
			statuses[i], ids[i] = resp.StatusCode, u.Id
		}()
	}
	close(start)
	wg.Wait()
	created := 0
	for i := range n {
		if statuses[i] == http.StatusCreated {
			created++
		} else if statuses[i] != http.StatusOK {
			t.Errorf("request %d: status %d", i, statuses[i])
		}
		if ids[i] != ids[0] || ids[i] == "" {
			t.Errorf("request %d: id %q, request 0: %q", i, ids[i], ids[0])
		}
	}
	if created != 1 {
		t.Errorf("%d requests created the user, want exactly 1", created)
	}
}

// TestPlanIsServerOwned: a user's own key may change its name but not its plan
// (403, pointer /plan, nothing stored); an admin key may set the plan.
func TestPlanIsServerOwned(t *testing.T) {
	b := setup(t, withAdmin)
	u := b.createUser(t, "plan@example.com")
	own := b.createKey(t, u.Id, "users:read", "users:write").Key
	for _, tc := range []struct{ method, path, contentType, body string }{
		{"PATCH", "/api/v1/users/" + u.Id, "application/merge-patch+json", `{"plan":"enterprise"}`},
		{"PATCH", "/api/v1/users/" + u.Id, "application/json", `{"name":"Me","plan":"free"}`},
		{"POST", "/api/v1/users", "application/json", `{"email":"plan@example.com","plan":"enterprise"}`},
	} {
		resp, body := b.do(t, tc.method, tc.path, hdr(own, tc.contentType), strings.NewReader(tc.body))
		p := problemOf(t, resp, body)
		if resp.StatusCode != http.StatusForbidden || p.Code != "forbidden" || p.Errors == nil || len(*p.Errors) != 1 || (*p.Errors)[0].Pointer != "/plan" {
			t.Errorf("%s %s %s: %d %s, want 403 pointing at /plan", tc.method, tc.path, tc.body, resp.StatusCode, body)
		}
	}
	resp, body := b.do(t, "GET", "/api/v1/users/"+u.Id, hdr(own, ""), nil)
	if got := decode[client.User](t, resp, body, http.StatusOK); got.Plan != "free" || got.Name != "" {
		t.Errorf("after refused requests: plan %q name %q, want free and unchanged", got.Plan, got.Name)
	}
	resp, body = b.do(t, "PATCH", "/api/v1/users/"+u.Id, hdr(own, "application/merge-patch+json"), strings.NewReader(`{"name":"Me"}`))
	if got := decode[client.User](t, resp, body, http.StatusOK); got.Name != "Me" {
		t.Errorf("own key changing its name: %+v", got)
	}
	resp, body = b.do(t, "PATCH", "/api/v1/users/"+u.Id, hdr(adminKey, "application/merge-patch+json"), strings.NewReader(`{"plan":"pro"}`))
	if got := decode[client.User](t, resp, body, http.StatusOK); got.Plan != "pro" {
		t.Errorf("admin setting the plan: %+v", got)
	}
}
