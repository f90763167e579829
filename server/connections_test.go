package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/gen/client"
	"github.com/levqor/levqor/store/sqlite"
)

// Secrets of the tests: distinctive, so that a search for them cannot match by chance.
const (
	vaultToken   = "vt-SECRET-7f3a9c1e5b2d4f6a8c0e-TOKEN"
	vaultSigning = "vs-SECRET-0d2b4f6a8c1e3a5c7e9b-SIGN"
)

// vault is a test connector that takes credentials as a real one does: it resolves
// the owner's connection (or the one its input names) for the step, and reports a
// fingerprint of the token — never the token.
type vault struct{ creds connectors.Credentials }

func (vault) Name() string               { return "vault" }
func (vault) CredentialFields() []string { return []string{"token", "signing_secret"} }
func (vault) Actions() []connectors.Action {
	return []connectors.Action{{Name: "fingerprint", Description: "Fingerprints the connection's token.",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"connection":{"type":"string"}},"additionalProperties":false}`)}}
}

func (v vault) Run(ctx context.Context, _ string, input json.RawMessage) (json.RawMessage, error) {
	var in struct{ Connection string }
	if err := json.Unmarshal(input, &in); err != nil {
		return nil, connectors.Errorf(connectors.CodeInvalidInput, "bad input")
	}
	st, _ := connectors.StepFrom(ctx)
	secrets, err := v.creds.Resolve(ctx, st.OwnerID, "vault", in.Connection)
	if errors.Is(err, connectors.ErrNoCredentials) {
		return nil, connectors.Errorf(connectors.CodeNoCredentials, "no vault connection")
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]string{"fingerprint": fingerprint(secrets["token"])})
}

func fingerprint(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// testSecretKey seals the connections of test servers.
var testSecretKey = func() credentials.Key {
	k, err := credentials.NewKey(bytes.Repeat([]byte{0x5a}, credentials.KeySize))
	if err != nil {
		panic(err)
	}
	return k
}()

// withCredentials gives the server a credentials.Service over its store and a job
// engine whose catalogue has the vault connector, which resolves through it. It
// must come after any option that replaces the store.
func withCredentials(t *testing.T) func(*testOptions) {
	return func(o *testOptions) {
		creds := credentials.NewService(o.Store, testSecretKey, nil)
		e := newEngineWith(t, o.Store, o.Logger, []string{"127.0.0.0/8"}, vault{creds: creds})
		o.Credentials, o.Jobs, o.Hub = creds, e.Service, e.Hub
	}
}

// vaultSecrets is a valid PUT body's secrets.
func vaultSecrets() map[string]string {
	return map[string]string{"token": vaultToken, "signing_secret": vaultSigning}
}

// putConn PUTs a connection and returns the response.
func (b *bundle) putConn(t *testing.T, key, connector string, body any) (*http.Response, []byte) {
	t.Helper()
	return b.do(t, "PUT", "/api/v1/connections/"+connector, hdr(key, "application/json"), jsonBody(t, body))
}

// noSecrets fails the test if any of the bodies holds a test secret.
func noSecrets(t *testing.T, where string, bodies ...[]byte) {
	t.Helper()
	for _, body := range bodies {
		for _, s := range []string{vaultToken, vaultSigning, "SECRET"} {
			if bytes.Contains(body, []byte(s)) {
				t.Errorf("%s holds a secret (%s…): %.300s", where, s[:6], body)
			}
		}
	}
}

func TestConnectionsLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin, withCredentials(t))
	ten := b.newTenant(t, "conn@example.com")
	var bodies [][]byte

	resp, body := b.putConn(t, ten.key, "vault", map[string]any{"secrets": vaultSecrets()})
	bodies = append(bodies, body)
	created := decode[client.Connection](t, resp, body, http.StatusOK)
	wantFields := []client.ConnectionField{{Name: "signing_secret", Last4: "SIGN"}, {Name: "token", Last4: "OKEN"}}
	if created.Connector != "vault" || created.Name != "default" || fmt.Sprint(created.Fields) != fmt.Sprint(wantFields) {
		t.Fatalf("PUT = %+v, want vault/default with fields %+v", created, wantFields)
	}

	got, err := b.Client.GetConnectionWithResponse(t.Context(), "vault", nil, apiKey(ten.key))
	if err != nil || got.JSON200 == nil {
		t.Fatalf("GET: %v %+v", err, got)
	}
	bodies = append(bodies, got.Body)
	if !got.JSON200.CreatedAt.Equal(created.CreatedAt) || fmt.Sprint(got.JSON200.Fields) != fmt.Sprint(wantFields) {
		t.Errorf("GET = %+v, want %+v", *got.JSON200, created)
	}

	resp, body = b.do(t, "GET", "/api/v1/connections/vault?name=work", hdr(ten.key, ""), nil)
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusNotFound || p.Code != "not_found" {
		t.Errorf("GET a missing name: %d %+v", resp.StatusCode, p)
	}

	time.Sleep(5 * time.Millisecond) // so that updated_at moves
	work := map[string]string{"token": "work-token-value-WXYZ", "signing_secret": "work-signing-value-ABCD"}
	resp, body = b.putConn(t, ten.key, "vault", map[string]any{"name": "work", "secrets": work})
	bodies = append(bodies, body)
	decode[client.Connection](t, resp, body, http.StatusOK)

	// Replacing keeps created_at and moves updated_at.
	resp, body = b.putConn(t, ten.key, "vault", map[string]any{"name": "default", "secrets": vaultSecrets()})
	bodies = append(bodies, body)
	replaced := decode[client.Connection](t, resp, body, http.StatusOK)
	if !replaced.CreatedAt.Equal(created.CreatedAt) || !replaced.UpdatedAt.After(created.UpdatedAt) {
		t.Errorf("replace: created_at %v→%v, updated_at %v→%v", created.CreatedAt, replaced.CreatedAt, created.UpdatedAt, replaced.UpdatedAt)
	}

	list, err := b.Client.ListConnectionsWithResponse(t.Context(), apiKey(ten.key))
	if err != nil || list.JSON200 == nil {
		t.Fatalf("LIST: %v %+v", err, list)
	}
	bodies = append(bodies, list.Body)
	if d := list.JSON200.Data; len(d) != 2 || d[0].Name != "default" || d[1].Name != "work" || d[1].Fields[1].Last4 != "WXYZ" {
		t.Fatalf("LIST = %+v, want default and work", d)
	}
	noSecrets(t, "a response", bodies...)
	for _, body := range bodies {
		if bytes.Contains(body, []byte("work-token-value")) || bytes.Contains(body, []byte("work-signing-value")) {
			t.Errorf("a response holds the work connection's secret: %s", body)
		}
	}

	del, err := b.Client.DeleteConnectionWithResponse(t.Context(), "vault", &client.DeleteConnectionParams{Name: ptr("work")}, apiKey(ten.key))
	if err != nil || del.StatusCode() != http.StatusNoContent {
		t.Fatalf("DELETE work: %v %+v", err, del)
	}
	resp, body = b.do(t, "DELETE", "/api/v1/connections/vault?name=work", hdr(ten.key, ""), nil)
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusNotFound || p.Code != "not_found" {
		t.Errorf("DELETE twice: %d %+v", resp.StatusCode, p)
	}
	resp, body = b.do(t, "DELETE", "/api/v1/connections/vault", hdr(ten.key, ""), nil) // name defaults to "default"
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE default: %d %s", resp.StatusCode, body)
	}
	list, err = b.Client.ListConnectionsWithResponse(t.Context(), apiKey(ten.key))
	if err != nil || list.JSON200 == nil || len(list.JSON200.Data) != 0 || !bytes.Contains(list.Body, []byte(`"data":[]`)) {
		t.Errorf("LIST after deleting both: %v %s", err, list.Body)
	}
	noSecrets(t, "the log", []byte(b.Logs()))
}

func TestConnectionsIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin, withCredentials(t))
	a := b.newTenant(t, "a@example.com")
	other := b.newTenant(t, "b@example.com")
	resp, body := b.putConn(t, a.key, "vault", map[string]any{"secrets": vaultSecrets()})
	decode[client.Connection](t, resp, body, http.StatusOK)

	// Neither another tenant nor the bootstrap admin (whose owner is "") sees or
	// deletes it.
	for who, key := range map[string]string{"other tenant": other.key, "bootstrap admin": adminKey} {
		resp, body = b.do(t, "GET", "/api/v1/connections/vault", hdr(key, ""), nil)
		if p := problemOf(t, resp, body); p.Code != "not_found" {
			t.Errorf("%s GET: %+v", who, p)
		}
		resp, body = b.do(t, "DELETE", "/api/v1/connections/vault", hdr(key, ""), nil)
		if p := problemOf(t, resp, body); p.Code != "not_found" {
			t.Errorf("%s DELETE: %+v", who, p)
		}
		resp, body = b.do(t, "GET", "/api/v1/connections", hdr(key, ""), nil)
		if l := decode[client.ConnectionList](t, resp, body, http.StatusOK); len(l.Data) != 0 {
			t.Errorf("%s LIST = %+v", who, l.Data)
		}
	}
	// The other tenant's own connection of the same connector and name is its own.
	resp, body = b.putConn(t, other.key, "vault", map[string]any{"secrets": map[string]string{"token": "other-token-1234", "signing_secret": "other-sign-5678"}})
	decode[client.Connection](t, resp, body, http.StatusOK)
	resp, body = b.do(t, "GET", "/api/v1/connections/vault", hdr(a.key, ""), nil)
	if c := decode[client.Connection](t, resp, body, http.StatusOK); c.Fields[1].Last4 != "OKEN" {
		t.Errorf("a's connection after b stored one: %+v", c)
	}
}

func TestPutConnectionRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin, withCredentials(t))
	ten := b.newTenant(t, "refuse@example.com")
	long := "SECRET" + strings.Repeat("L", 8192)
	many := map[string]string{}
	for i := range 17 {
		many[fmt.Sprintf("f%02d", i)] = "x"
	}
	cases := []struct {
		name, path, contentType, body string
		status                        int
		code, pointer, detail         string
	}{
		{"unknown connector", "nope", "", `{"secrets":{"token":"` + vaultToken + `"}}`, 404, "not_found", "", "nope"},
		{"connector without credentials", "core", "", `{"secrets":{"token":"` + vaultToken + `"}}`, 404, "not_found", "", "core"},
		{"unknown field", "vault", "", `{"secrets":{"token":"` + vaultToken + `","signing_secret":"` + vaultSigning + `","tokne":"SECRET-x"}}`,
			400, "invalid", "/secrets/tokne", "tokne"},
		{"missing field", "vault", "", `{"secrets":{"token":"` + vaultToken + `"}}`, 400, "invalid", "/secrets/signing_secret", "signing_secret"},
		{"empty secrets", "vault", "", `{"secrets":{}}`, 400, "invalid", "/secrets", ""},
		{"no secrets", "vault", "", `{"name":"x"}`, 400, "invalid", "", ""},
		{"empty value", "vault", "", `{"secrets":{"token":"","signing_secret":"` + vaultSigning + `"}}`, 400, "invalid", "/secrets/token", ""},
		{"value a number", "vault", "", `{"secrets":{"token":12345678,"signing_secret":"` + vaultSigning + `"}}`, 400, "invalid", "/secrets/token", ""},
		{"value an object", "vault", "", `{"secrets":{"token":{"v":"` + vaultToken + `"},"signing_secret":"` + vaultSigning + `"}}`, 400, "invalid", "/secrets/token", ""},
		{"secrets an array", "vault", "", `{"secrets":["` + vaultToken + `"]}`, 400, "invalid", "/secrets", ""},
		{"secrets a string", "vault", "", `{"secrets":"` + vaultToken + `"}`, 400, "invalid", "/secrets", ""},
		{"too long a value", "vault", "", `{"secrets":{"token":"` + long + `","signing_secret":"` + vaultSigning + `"}}`, 400, "invalid", "/secrets/token", ""},
		{"too many fields", "vault", "", string(mustJSONBytes(t, map[string]any{"secrets": many})), 400, "invalid", "/secrets", ""},
		{"additional property", "vault", "", `{"secrets":{"token":"` + vaultToken + `","signing_secret":"` + vaultSigning + `"},"owner_id":"usr_x"}`, 400, "invalid", "/owner_id", ""},
		{"bad name", "vault", "", `{"name":"a b","secrets":{"token":"` + vaultToken + `","signing_secret":"` + vaultSigning + `"}}`, 400, "invalid", "/name", ""},
		{"name too long", "vault", "", `{"name":"` + strings.Repeat("n", 65) + `","secrets":{"token":"` + vaultToken + `","signing_secret":"` + vaultSigning + `"}}`, 400, "invalid", "/name", ""},
		{"bad connector name", "Vault-X", "", `{"secrets":{"token":"` + vaultToken + `"}}`, 400, "invalid", "", ""},
		{"not JSON", "vault", "", `{"secrets":{"token":"` + vaultToken, 400, "invalid", "", ""},
		{"empty body", "vault", "", ``, 400, "invalid", "", ""},
		{"JSON null", "vault", "", `null`, 400, "invalid", "", ""},
		{"wrong content type", "vault", "text/plain", `{"secrets":{"token":"` + vaultToken + `","signing_secret":"` + vaultSigning + `"}}`, 415, "unsupported_media_type", "", ""},
		{"form encoded", "vault", "application/x-www-form-urlencoded", `secrets[token]=` + vaultToken, 415, "unsupported_media_type", "", ""},
		{"oversized", "vault", "", `{"secrets":{"token":"` + strings.Repeat("SECRET", 100_000) + `","signing_secret":"x"}}`, 413, "too_large", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			resp, body := b.do(t, "PUT", "/api/v1/connections/"+tc.path, hdr(ten.key, ct), strings.NewReader(tc.body))
			p := problemOf(t, resp, body)
			if resp.StatusCode != tc.status || string(p.Code) != tc.code {
				t.Fatalf("status %d code %s, want %d %s; body %.400s", resp.StatusCode, p.Code, tc.status, tc.code, body)
			}
			if tc.pointer != "" {
				found := false
				if p.Errors != nil {
					for _, e := range *p.Errors {
						found = found || e.Pointer == tc.pointer
					}
				}
				if !found {
					t.Errorf("no error at %s: %.400s", tc.pointer, body)
				}
			}
			if tc.detail != "" && !strings.Contains(deref(p.Detail), tc.detail) {
				t.Errorf("detail %q does not name %q", deref(p.Detail), tc.detail)
			}
			noSecrets(t, "the problem", body)
		})
	}
	resp, body := b.do(t, "GET", "/api/v1/connections", hdr(ten.key, ""), nil)
	if l := decode[client.ConnectionList](t, resp, body, http.StatusOK); len(l.Data) != 0 {
		t.Errorf("refused PUTs stored %+v", l.Data)
	}
	noSecrets(t, "the log", []byte(b.Logs()))
}

func mustJSONBytes(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConnectionsScopes(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin, withCredentials(t))
	u := b.createUser(t, "scopes@example.com")
	readOnly := b.createKey(t, u.Id, "jobs:read").Key
	writeOnly := b.createKey(t, u.Id, "jobs:write").Key
	users := b.createKey(t, u.Id, "users:read", "users:write").Key
	put := `{"secrets":{"token":"` + vaultToken + `","signing_secret":"` + vaultSigning + `"}}`
	cases := []struct {
		name, key, method, path, body string
		status                        int
	}{
		{"no key lists", "", "GET", "/api/v1/connections", "", 401},
		{"no key puts", "", "PUT", "/api/v1/connections/vault", put, 401},
		{"read key puts", readOnly, "PUT", "/api/v1/connections/vault", put, 403},
		{"read key deletes", readOnly, "DELETE", "/api/v1/connections/vault", "", 403},
		{"write key lists", writeOnly, "GET", "/api/v1/connections", "", 403},
		{"write key gets", writeOnly, "GET", "/api/v1/connections/vault", "", 403},
		{"users key lists", users, "GET", "/api/v1/connections", "", 403},
		{"users key puts", users, "PUT", "/api/v1/connections/vault", put, 403},
		{"write key puts", writeOnly, "PUT", "/api/v1/connections/vault", put, 200},
		{"read key lists", readOnly, "GET", "/api/v1/connections", "", 200},
		{"read key gets", readOnly, "GET", "/api/v1/connections/vault", "", 200},
		{"write key deletes", writeOnly, "DELETE", "/api/v1/connections/vault", "", 204},
	}
	for _, tc := range cases { // in order: the allowed PUT comes before the reads and the delete
		ct := ""
		if tc.body != "" {
			ct = "application/json"
		}
		resp, body := b.do(t, tc.method, tc.path, hdr(tc.key, ct), strings.NewReader(tc.body))
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d; body %.300s", tc.name, resp.StatusCode, tc.status, body)
		}
		if tc.status >= 400 {
			problemOf(t, resp, body)
		}
	}
}

func TestConnectionsUnavailable(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin) // no credentials.Service
	ten := b.newTenant(t, "nocreds@example.com")
	put := `{"secrets":{"token":"` + vaultToken + `"}}`
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/api/v1/connections", ""},
		{"PUT", "/api/v1/connections/vault", put},
		{"GET", "/api/v1/connections/vault", ""},
		{"DELETE", "/api/v1/connections/vault?name=x", ""},
	} {
		ct := ""
		if r.body != "" {
			ct = "application/json"
		}
		resp, body := b.do(t, r.method, r.path, hdr(ten.key, ct), strings.NewReader(r.body))
		if p := problemOf(t, resp, body); resp.StatusCode != http.StatusServiceUnavailable || p.Code != "unavailable" {
			t.Errorf("%s %s: %d %+v, want 503 unavailable", r.method, r.path, resp.StatusCode, p)
		}
	}
}

// TestConnectionSecretsAtRest: after a PUT the secrets are nowhere in the SQLite
// files (database and write-ahead log) nor in the log, yet a step resolves them.
func TestConnectionSecretsAtRest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "levqor.db")
	withFileStore := func(o *testOptions) {
		db, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		o.Store = db
	}
	b := setup(t, withFileStore, withAdmin, withCredentials(t))
	ten := b.newTenant(t, "rest@example.com")
	resp, body := b.putConn(t, ten.key, "vault", map[string]any{"secrets": vaultSecrets()})
	decode[client.Connection](t, resp, body, http.StatusOK)

	files, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatal(err)
	}
	var sawWAL bool
	var total int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		total += len(data)
		sawWAL = sawWAL || (strings.HasSuffix(f, "-wal") && len(data) > 0)
		for _, s := range []string{vaultToken, vaultSigning, vaultToken[:len(vaultToken)-4], vaultSigning[:len(vaultSigning)-4]} {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s holds a secret in clear", filepath.Base(f))
			}
		}
	}
	if !sawWAL || total == 0 {
		t.Fatalf("found %v (%d bytes): the write should be in the WAL; is this the server's database?", files, total)
	}
	// The connection is really there: the last four characters, which are kept in
	// clear by design, are in the files.
	found := false
	for _, f := range files {
		data, _ := os.ReadFile(f)
		found = found || bytes.Contains(data, []byte(`"last4":"OKEN"`))
	}
	if !found {
		t.Error("the connection's metadata is not in the database files: the search above proves nothing")
	}
	noSecrets(t, "the log", []byte(b.Logs()))
}

// TestConnectionUsedByStep: a step of the owner's job resolves the owner's
// connection (the default, or one it names) without the secret reaching the job.
func TestConnectionUsedByStep(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin, withCredentials(t))
	ten := b.newTenant(t, "steps@example.com")
	other := b.newTenant(t, "nosecrets@example.com")
	resp, body := b.putConn(t, ten.key, "vault", map[string]any{"secrets": vaultSecrets()})
	decode[client.Connection](t, resp, body, http.StatusOK)
	resp, body = b.putConn(t, ten.key, "vault", map[string]any{"name": "work", "secrets": map[string]string{"token": "work-SECRET-token", "signing_secret": "work-SECRET-sign"}})
	decode[client.Connection](t, resp, body, http.StatusOK)

	acc := b.submit(t, ten.key, map[string]any{"workflow": "vault.check", "payload": map[string]any{}, "steps": []any{
		step("implicit", "vault", "fingerprint", map[string]any{}),
		step("named", "vault", "fingerprint", map[string]any{"connection": "work"}),
	}})
	j := b.waitStatus(t, ten.key, acc.JobId, "succeeded", 10*time.Second)
	for i, want := range []string{fingerprint(vaultToken), fingerprint("work-SECRET-token")} {
		var out struct{ Fingerprint string }
		if j.Steps[i].Output == nil || json.Unmarshal(*j.Steps[i].Output, &out) != nil || out.Fingerprint != want {
			t.Errorf("step %s output %s, want fingerprint %s", j.Steps[i].Id, mustJSON(t, j.Steps[i].Output), want)
		}
	}

	// Another owner has no vault connection, and a missing named one does not fall back.
	for key, input := range map[string]map[string]any{other.key: {}, ten.key: {"connection": "personal"}} {
		acc := b.submit(t, key, map[string]any{"workflow": "vault.check", "payload": map[string]any{}, "steps": []any{step("s", "vault", "fingerprint", input)}})
		j := b.waitStatus(t, key, acc.JobId, "failed", 10*time.Second)
		if j.Steps[0].Error == nil || j.Steps[0].Error.Code != connectors.CodeNoCredentials {
			t.Errorf("step without credentials: %s", mustJSON(t, j.Steps[0]))
		}
	}
	resp, body = b.do(t, "GET", "/api/v1/jobs?limit=50", hdr(ten.key, ""), nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "vault.check") {
		t.Fatalf("job list: %d %.300s; want 200 with the vault jobs, or the secret check below proves nothing", resp.StatusCode, body)
	}
	noSecrets(t, "the job list", body)
	noSecrets(t, "the log", []byte(b.Logs()))
}
