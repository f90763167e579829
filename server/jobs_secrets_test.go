package server_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/gen/client"
	"github.com/levqor/levqor/store/sqlite"
)

// Secrets of the http tests: distinctive, so that a search for them cannot match by chance.
const (
	httpAuthSecret  = "hs-SECRET-91c4e7a2d05b3f68-AUTH"
	httpQuerySecret = "hq-SECRET-3b7f0e9c2a614d58-QUERY"
	inlineSecret    = "hi-SECRET-c8e25a0f7d1b9346-INLINE"
)

// TestHTTPSecretsNeverInJobRecords: an http.request step that takes its
// Authorization header and api_key parameter from the owner's http connection sends
// them, yet they are in none of the job's stored row (the database files), the GET
// response, the completion webhook's body and the log; a step carrying them inline
// is refused with 422 pointing at the header or the URL, and stored nowhere.
func TestHTTPSecretsNeverInJobRecords(t *testing.T) {
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
	ten := b.newTenant(t, "http-secrets@example.com")

	var mu sync.Mutex
	var sawAuth, sawKey, sawPage string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sawAuth, sawKey, sawPage = r.Header.Get("Authorization"), r.URL.Query().Get("api_key"), r.URL.Query().Get("page")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"items": [1, 2]}`))
	}))
	t.Cleanup(upstream.Close)
	rcv := newHookReceiver(t, http.StatusNoContent)

	resp, body := b.putConn(t, ten.key, "http", map[string]any{"name": "api",
		"secrets": map[string]string{"Authorization": "Bearer " + httpAuthSecret, "?api_key": httpQuerySecret}})
	conn := decode[client.Connection](t, resp, body, http.StatusOK)
	if len(conn.Fields) != 2 {
		t.Fatalf("PUT http connection = %+v", conn)
	}

	acc := b.submit(t, ten.key, map[string]any{"workflow": "fetch", "payload": map[string]any{}, "callback_url": rcv.URL,
		"steps": []any{step("get", "http", "request", map[string]any{"url": upstream.URL + "/v1/items?page=1", "connection": "api"})}})
	job := b.waitJob(t, ten.key, acc.JobId, 10*time.Second, "succeeded and called back", func(j client.Job) bool {
		return j.Status == client.JobStatusSucceeded && len(j.Callbacks) >= 1
	})
	mu.Lock()
	if sawAuth != "Bearer "+httpAuthSecret || sawKey != httpQuerySecret || sawPage != "1" {
		t.Errorf("upstream saw Authorization %q, api_key %q, page %q; want the connection's secrets sent", sawAuth, sawKey, sawPage)
	}
	mu.Unlock()
	if !strings.Contains(string(mustJSON(t, job)), `"connection":"api"`) {
		t.Errorf("the job record does not show the connection it named: %s", mustJSON(t, job))
	}

	// Inline secrets are refused before anything is stored.
	for _, tc := range []struct {
		name    string
		input   map[string]any
		pointer string
	}{
		{"Authorization header", map[string]any{"url": upstream.URL, "headers": map[string]string{"authorization": "Bearer " + inlineSecret}}, "/steps/0/input/headers/authorization"},
		{"X-Api-Key header", map[string]any{"url": upstream.URL, "headers": map[string]string{"X-API-Key": inlineSecret}}, "/steps/0/input/headers/X-API-Key"},
		{"Cookie from a reference", map[string]any{"url": upstream.URL, "headers": map[string]string{"Cookie": "{{payload.c}}"}}, "/steps/0/input/headers/Cookie"},
		{"api_key in the URL", map[string]any{"url": upstream.URL + "/x?api_key=" + inlineSecret}, "/steps/0/input/url"},
	} {
		resp, body := b.intake(t, ten.key, map[string]any{"workflow": "inline", "payload": map[string]any{"c": inlineSecret},
			"steps": []any{step("get", "http", "request", tc.input)}}, "")
		p := problemOf(t, resp, body)
		if resp.StatusCode != http.StatusUnprocessableEntity || p.Errors == nil || len(*p.Errors) != 1 || (*p.Errors)[0].Pointer != tc.pointer ||
			!strings.Contains(deref(p.Detail), "/api/v1/connections/http") {
			t.Errorf("%s: %d %s; want 422 pointing at %s and telling to use a connection", tc.name, resp.StatusCode, body, tc.pointer)
		}
		noSecretIn(t, tc.name+": the problem", body, inlineSecret)
	}
	resp, body = b.do(t, "PUT", "/api/v1/workflows/inline", hdr(ten.key, "application/json"), jsonBody(t, map[string]any{
		"steps": []any{step("get", "http", "request", map[string]any{"url": upstream.URL, "headers": map[string]string{"Proxy-Authorization": inlineSecret}})}}))
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusUnprocessableEntity || p.Errors == nil || (*p.Errors)[0].Pointer != "/steps/0/input/headers/Proxy-Authorization" {
		t.Errorf("PUT workflow with an inline secret: %d %s; want 422", resp.StatusCode, body)
	}

	// Nowhere: the GET response, the webhook body, the log, the database files.
	resp, body = b.do(t, "GET", "/api/v1/jobs/"+acc.JobId, hdr(ten.key, ""), nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"items":[1,2]`) {
		t.Fatalf("GET job: %d %s", resp.StatusCode, body)
	}
	secrets := []string{httpAuthSecret, httpQuerySecret, inlineSecret}
	noSecretIn(t, "GET /api/v1/jobs/{id}", body, secrets...)
	resp, body = b.do(t, "GET", "/api/v1/jobs?limit=200", hdr(ten.key, ""), nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), acc.JobId) {
		t.Fatalf("GET jobs: %d %.300s", resp.StatusCode, body)
	}
	noSecretIn(t, "GET /api/v1/jobs", body, secrets...)
	ds := rcv.deliveries()
	if len(ds) == 0 || !bytes.Contains(ds[0].body, []byte(acc.JobId)) || !bytes.Contains(ds[0].body, []byte(`"items":[1,2]`)) {
		t.Fatalf("webhook deliveries: %d; want the job's record", len(ds))
	}
	for _, d := range ds {
		noSecretIn(t, "the webhook body", d.body, secrets...)
		noSecretIn(t, "the webhook URI", []byte(d.uri), secrets...)
	}
	logs := b.Logs()
	if !strings.Contains(logs, acc.JobId) && !strings.Contains(logs, "/api/v1/jobs") {
		t.Fatalf("the log does not show the job's requests: is this the server's log?")
	}
	noSecretIn(t, "the log", []byte(logs), secrets...)

	files, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatal(err)
	}
	foundJob := false
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		foundJob = foundJob || bytes.Contains(data, []byte(upstream.URL+"/v1/items?page=1"))
		noSecretIn(t, filepath.Base(f), data, secrets...)
	}
	if !foundJob {
		t.Fatal("the job's stored step is not in the database files: the search above proves nothing")
	}
}

// noSecretIn fails the test if data holds any of secrets.
func noSecretIn(t *testing.T, where string, data []byte, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(data, []byte(s)) {
			t.Errorf("%s holds a secret (%s…)", where, s[:6])
		}
	}
}
