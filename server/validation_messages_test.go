package server_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestValidationMessagesArePlain: hostile and malformed inputs get field details
// that say what was expected in plain words — never the validator's wording (Go
// types, regexes, schema jargon) (issue #13).
func TestValidationMessagesArePlain(t *testing.T) {
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "plain@example.com")
	intake := func(field string) string {
		return `{"workflow":"w","payload":{},"steps":[{"id":"a","connector":"core","action":"echo"}],` + field + `}`
	}
	cases := []struct {
		name, method, path, key, body, pointer, want string
	}{
		{"number beyond float64", "POST", "/api/v1/intake", ten.key, intake(`"max_attempts":1e400`), "/max_attempts", "Must be an integer."},
		{"fraction for an integer", "POST", "/api/v1/intake", ten.key, intake(`"max_attempts":2.5`), "/max_attempts", "Must be an integer."},
		{"string for an integer", "POST", "/api/v1/intake", ten.key, intake(`"max_attempts":"3"`), "/max_attempts", "Must be an integer."},
		{"over the maximum", "POST", "/api/v1/intake", ten.key, intake(`"max_attempts":1000000`), "/max_attempts", "Must be at most 25."},
		{"not a date-time", "POST", "/api/v1/intake", ten.key, intake(`"run_at":"'; DROP TABLE jobs; --"`), "/run_at", "Must be a date-time as in RFC 3339, such as 2025-01-31T09:30:00Z."},
		{"markup in a name", "POST", "/api/v1/intake", ten.key, `{"workflow":"<script>alert(1)</script>","payload":{}}`, "/workflow", "May contain only letters, digits and the characters . _ -."},
		{"not one of the enum", "POST", "/api/v1/intake", ten.key, intake(`"priority":"${jndi:ldap://x}"`), "/priority", "Must be one of: low, normal, high."},
		{"null where not nullable", "POST", "/api/v1/intake", ten.key, intake(`"guardrails":null`), "/guardrails", "Must not be null."},
		{"unknown field", "POST", "/api/v1/intake", ten.key, intake(`"__proto__":{}`), "/__proto__", "This field is unsupported here."},
		{"number beyond float64 for a number", "PUT", "/api/v1/budgets/" + ten.owner, adminKey, `{"daily_usd":1e400,"monthly_usd":1}`, "/daily_usd", "Must be a number."},
		{"negative money", "PUT", "/api/v1/budgets/" + ten.owner, adminKey, `{"daily_usd":-1,"monthly_usd":1}`, "/daily_usd", "Must be at least 0."},
		{"name too long", "POST", "/api/v1/users", adminKey, `{"email":"a@example.com","name":"` + strings.Repeat("n", 201) + `"}`, "/name", "Must be at most 200 characters long."},
		{"bad locale", "POST", "/api/v1/users", adminKey, `{"email":"a@example.com","locale":"../../etc/passwd"}`, "/locale", "Must be a BCP 47 language tag, such as `en-GB`."},
		{"array for a string", "POST", "/api/v1/users", adminKey, `{"email":["a@example.com"]}`, "/email", "Must be a string."},
		{"repeated scopes", "POST", "/api/v1/keys", adminKey, `{"owner_id":"` + ten.owner + `","scopes":["jobs:read","jobs:read"]}`, "/scopes", "Must not list the same item twice."},
		{"no scopes", "POST", "/api/v1/keys", adminKey, `{"owner_id":"` + ten.owner + `","scopes":[]}`, "/scopes", "Must have at least 1 item."},
		{"bad id in the path", "GET", "/api/v1/users/USR%27--", adminKey, ``, "path.id", "Must be an object id, such as `usr_…` or `key_…`."},
		{"bad cursor", "GET", "/api/v1/jobs?cursor=a%20b", ten.key, ``, "query.cursor", "May contain only letters, digits and the characters _ -."},
		{"limit over the maximum", "GET", "/api/v1/jobs?limit=100000", ten.key, ``, "query.limit", "Must be at most 200."},
		{"bad time zone", "GET", "/api/v1/metrics/summary?tz=..%5C..", adminKey, ``, "query.tz", "May contain only letters, digits and the characters _ + / -."},
		{"bad date", "GET", "/api/v1/metrics/summary?from=yesterday", adminKey, ``, "query.from", "Must be a date such as 2025-01-31."},
	}
	leaks := []string{"json.Number", "float64", "regular expression", "^[", "\\x", "Error at", "doesn't match", "property \"",
		"unhandled value", "schema", "kin-openapi", "openapi3", "string length", "number of items", "nullable", "cannot convert", "allowed values"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := hdr(tc.key, "")
			if tc.body != "" {
				h.Set("Content-Type", "application/json")
			}
			resp, body := b.do(t, tc.method, tc.path, h, strings.NewReader(tc.body))
			p := problemOf(t, resp, body)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", resp.StatusCode, body)
			}
			for _, leak := range leaks {
				if strings.Contains(string(body), leak) {
					t.Errorf("the problem leaks %q: %s", leak, body)
				}
			}
			found := false
			if p.Errors != nil {
				for _, e := range *p.Errors {
					found = found || (e.Pointer == tc.pointer && e.Detail == tc.want)
				}
			}
			if !found {
				t.Errorf("want %s: %q; got %s", tc.pointer, tc.want, body)
			}
		})
	}
}
