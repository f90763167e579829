package server_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/levqor/levqor/gen/client"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
)

// TestNULInText: U+0000 in any text field — a user's name, a key's name, a
// workflow's description, a map key or value the spec types, a query parameter —
// is a 400 problem pointing at the field on both engines (PostgreSQL's text
// cannot hold it: it used to be a 500 there), and nothing is stored. In free-form
// JSON (payloads, step inputs, meta) it is still accepted and stored as U+FFFD.
func TestNULInText(t *testing.T) {
	for engine, open := range map[string]func(testing.TB) store.Store{"sqlite": storetest.OpenSQLite, "postgres": storetest.OpenPostgres} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(o *testOptions) { o.Store = open(t) }, withAdmin)
			ten := b.newTenant(t, "nul@example.com")
			steps := `[{"id":"a","connector":"core","action":"echo","input":{"x":"in\u0000put"}}]`
			cases := []struct {
				name, method, path, contentType, body string
				pointers                              []string
			}{
				{"user name on upsert", "POST", "/api/v1/users", "application/json", `{"email":"n@example.com","name":"a\u0000b"}`, []string{"/name"}},
				{"user email", "POST", "/api/v1/users", "application/json", `{"email":"n\u0000@example.com"}`, []string{"/email"}},
				{"user name on patch, beside free-form meta", "PATCH", "/api/v1/users/" + ten.owner, "application/merge-patch+json", `{"name":"\u0000","meta":{"a":"\u0000"}}`, []string{"/name"}},
				{"key name", "POST", "/api/v1/keys", "application/json", `{"owner_id":"` + ten.owner + `","scopes":["jobs:read"],"name":"ci\u0000"}`, []string{"/name"}},
				{"workflow description", "PUT", "/api/v1/workflows/nul", "application/json", `{"description":"a\u0000b","steps":` + steps + `}`, []string{"/description"}},
				{"map value", "PUT", "/api/v1/connections/http", "application/json", `{"secrets":{"token":"t\u0000"}}`, []string{"/secrets/token"}},
				{"map key", "PUT", "/api/v1/connections/http", "application/json", `{"secrets":{"to\u0000ken":"t"}}`, []string{"/secrets/to\x00ken"}},
				{"query parameter", "GET", "/api/v1/users?email=n%00@example.com", "", ``, []string{"query.email"}},
			}
			for _, tc := range cases {
				resp, body := b.do(t, tc.method, tc.path, hdr(adminKey, tc.contentType), strings.NewReader(tc.body))
				p := problemOf(t, resp, body)
				var pointers []string
				if p.Errors != nil {
					for _, e := range *p.Errors {
						pointers = append(pointers, e.Pointer)
					}
				}
				if resp.StatusCode != http.StatusBadRequest || p.Code != "invalid" || !slices.Equal(pointers, tc.pointers) {
					t.Errorf("%s: %d %s, want 400 invalid pointing at %q", tc.name, resp.StatusCode, body, tc.pointers)
				}
			}
			// Nothing was stored.
			resp, body := b.do(t, "GET", "/api/v1/users?email=n@example.com", hdr(adminKey, ""), nil)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("user after refused upserts: %d %s", resp.StatusCode, body)
			}
			resp, body = b.do(t, "GET", "/api/v1/workflows/nul", hdr(adminKey, ""), nil)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("workflow after a refused put: %d %s", resp.StatusCode, body)
			}

			// Free-form JSON keeps its rule: stored, with U+FFFD for U+0000.
			resp, body = b.do(t, "POST", "/api/v1/users", hdr(adminKey, "application/json"), strings.NewReader(`{"email":"m@example.com","meta":{"k\u0000":"v\u0000"}}`))
			if u := decode[client.User](t, resp, body, http.StatusCreated); u.Meta["k\uFFFD"] != "v\uFFFD" {
				t.Errorf("meta with NUL stored as %v, want U+FFFD in key and value", u.Meta)
			}
			resp, body = b.do(t, "PUT", "/api/v1/workflows/free", hdr(ten.key, "application/json"), strings.NewReader(`{"description":"ok","steps":`+steps+`}`))
			if resp.StatusCode != http.StatusOK {
				t.Errorf("NUL in a step input: %d %s, want 200", resp.StatusCode, body)
			}
			acc := b.submit(t, ten.key, `{"workflow":"w","payload":{"s":"a\u0000b"},"steps":`+steps+`}`)
			if j := b.getJob(t, ten.key, acc.JobId); !strings.Contains(string(j.Payload), `a\ufffdb`) && !strings.Contains(string(j.Payload), "a\uFFFDb") {
				t.Errorf("payload with NUL stored as %s, want U+FFFD", j.Payload)
			}
		})
	}
}
