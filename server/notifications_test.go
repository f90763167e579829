package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/levqor/levqor/gen/client"
)

func TestNotificationSettings(t *testing.T) {
	b := setup(t, withAdmin, func(o *testOptions) { o.MaxBodyBytes = 64 << 10 })
	u := b.createUser(t, "notify@example.com")
	rw := b.createKey(t, u.Id, "users:read", "users:write").Key
	ro := b.createKey(t, u.Id, "users:read").Key
	other := b.createKey(t, b.createUser(t, "other@example.com").Id, "users:read", "users:write").Key

	resp, body := b.do(t, "GET", "/api/v1/notifications", hdr(rw, ""), nil)
	if got := decode[client.Notifications](t, resp, body, http.StatusOK); got.JobFailed || deref(got.Email) != "notify@example.com" {
		t.Errorf("default settings = %+v, want job_failed false to notify@example.com", got)
	}
	resp, body = b.do(t, "PUT", "/api/v1/notifications", hdr(rw, "application/json"), strings.NewReader(`{"job_failed": true}`))
	if got := decode[client.Notifications](t, resp, body, http.StatusOK); !got.JobFailed || deref(got.Email) != "notify@example.com" {
		t.Errorf("after PUT = %+v", got)
	}
	resp, body = b.do(t, "GET", "/api/v1/notifications", hdr(ro, ""), nil)
	if got := decode[client.Notifications](t, resp, body, http.StatusOK); !got.JobFailed {
		t.Errorf("read back = %+v, want job_failed true", got)
	}
	// Another owner's settings are its own.
	resp, body = b.do(t, "GET", "/api/v1/notifications", hdr(other, ""), nil)
	if got := decode[client.Notifications](t, resp, body, http.StatusOK); got.JobFailed || deref(got.Email) != "other@example.com" {
		t.Errorf("other owner = %+v", got)
	}
	cases := []struct {
		name, method, key, contentType, body string
		status                               int
		code                                 string
	}{
		{"no key", "GET", "", "", ``, 401, "unauthorized"},
		{"read-only key writes", "PUT", ro, "application/json", `{"job_failed": false}`, 403, "forbidden"},
		{"bootstrap admin has no owner", "GET", adminKey, "", ``, 403, "forbidden"},
		{"bootstrap admin writes", "PUT", adminKey, "application/json", `{"job_failed": true}`, 403, "forbidden"},
		{"malformed JSON", "PUT", rw, "application/json", `{"job_failed":`, 400, "invalid"},
		{"empty body", "PUT", rw, "application/json", ``, 400, "invalid"},
		{"missing field", "PUT", rw, "application/json", `{}`, 400, "invalid"},
		{"wrong type", "PUT", rw, "application/json", `{"job_failed": "yes"}`, 400, "invalid"},
		{"null", "PUT", rw, "application/json", `{"job_failed": null}`, 400, "invalid"},
		{"unknown field", "PUT", rw, "application/json", `{"job_failed": true, "to": "attacker@example.com"}`, 400, "invalid"},
		{"array body", "PUT", rw, "application/json", `[true]`, 400, "invalid"},
		{"oversized", "PUT", rw, "application/json", `{"job_failed": true, "x": "` + strings.Repeat("y", 70<<10) + `"}`, 413, "too_large"},
		{"wrong content type", "PUT", rw, "text/plain", `{"job_failed": true}`, 415, "unsupported_media_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := b.do(t, tc.method, "/api/v1/notifications", hdr(tc.key, tc.contentType), strings.NewReader(tc.body))
			if p := problemOf(t, resp, body); resp.StatusCode != tc.status || string(p.Code) != tc.code {
				t.Fatalf("status %d code %q, want %d %q; body %.300s", resp.StatusCode, p.Code, tc.status, tc.code, body)
			}
		})
	}
	// None of the refused writes changed anything.
	resp, body = b.do(t, "GET", "/api/v1/notifications", hdr(rw, ""), nil)
	if got := decode[client.Notifications](t, resp, body, http.StatusOK); !got.JobFailed {
		t.Errorf("after the refused writes = %+v, want job_failed still true", got)
	}
}
