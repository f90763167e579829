package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/store/sqlite"
	"github.com/levqor/levqor/users"
)

// TestBareUserSendsLevqorsBytes reads a user that levqor's own store wrote, through
// the bare handler, and expects the bytes levqor's API would send for it: the
// same fields, names, order and formats.
func TestBareUserSendsLevqorsBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "levqor.db")
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	name := "Ada Lovelace"
	u, _, err := users.NewService(st).Upsert(t.Context(), keys.Principal{Scopes: []string{keys.ScopeAdmin}}, "ada@example.com",
		users.Fields{Name: &name, Meta: map[string]any{"tier": "gold", "seats": 3.0}})
	if err != nil {
		t.Fatal(err)
	}

	db, err := openReadPool(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv := httptest.NewServer(bareUserHandler(db))
	defer srv.Close()

	var want bytes.Buffer
	if err := json.NewEncoder(&want).Encode(api.User{
		Id: u.ID, Email: openapi_types.Email(u.Email), Name: u.Name, Locale: u.Locale, Currency: u.Currency, Plan: u.Plan,
		Meta: u.Meta, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}); err != nil {
		t.Fatal(err)
	}
	status, body := get(t, srv.URL+"/api/v1/users/"+u.ID)
	if status != http.StatusOK || !bytes.Equal(body, want.Bytes()) {
		t.Errorf("got %d %s\nwant 200 %s", status, body, want.Bytes())
	}
	if status, _ := get(t, srv.URL+"/api/v1/users/usr_missing"); status != http.StatusNotFound {
		t.Errorf("unknown id: got %d, want 404", status)
	}
}

func TestOpenReadPoolRefusesMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "typo.db")
	if db, err := openReadPool(path); err == nil {
		db.Close()
		t.Fatal("openReadPool opened a file that does not exist")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("openReadPool left %s behind (stat: %v)", path, err)
	}
}

// TestBareIntakeStoresEachRequest posts jobs to the bare intake handler and
// expects one row per request in its SQLite file, holding the body as text,
// opened with levqor's writer settings.
func TestBareIntakeStoresEachRequest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bare.db")
	db, err := createIntakeDB(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	insert, err := db.Prepare(insertBareJob)
	if err != nil {
		t.Fatal(err)
	}
	defer insert.Close()
	srv := httptest.NewServer(bareIntakeHandler(insert))
	defer srv.Close()

	lr := intakeRequest()
	ids := map[string]bool{}
	for range 3 {
		body, err := fetchOnce(t.Context(), strings.TrimPrefix(srv.URL, "http://"), lr)
		if err != nil {
			t.Fatal(err)
		}
		var accepted struct {
			JobID  string `json:"job_id"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(body, &accepted); err != nil || !strings.HasPrefix(accepted.JobID, "job_") || accepted.Status != "queued" {
			t.Fatalf("body %q: want a job_ id and status queued (%v)", body, err)
		}
		ids[accepted.JobID] = true
	}
	if len(ids) != 3 {
		t.Errorf("3 requests got %d distinct ids", len(ids))
	}
	rows, err := db.Query(`SELECT id, payload, typeof(payload), status FROM jobs`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id, payload, typ, status string
		if err := rows.Scan(&id, &payload, &typ, &status); err != nil {
			t.Fatal(err)
		}
		if !ids[id] || payload != intakeBody || typ != "text" || status != "queued" {
			t.Errorf("row %s: payload %q (%s), status %q; want a returned id, the body as text, queued", id, payload, typ, status)
		}
		n++
	}
	if err := rows.Err(); err != nil || n != 3 {
		t.Errorf("%d rows (%v), want 3", n, err)
	}
	for pragma, want := range map[string]string{"journal_mode": "wal", "synchronous": "1", "busy_timeout": "5000", "foreign_keys": "1"} {
		var got string
		if err := db.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil || got != want {
			t.Errorf("PRAGMA %s = %q (%v), want %q as levqor's writer", pragma, got, err, want)
		}
	}
	if st := db.Stats(); st.MaxOpenConnections != 1 {
		t.Errorf("MaxOpenConnections = %d, want 1 as levqor's writer", st.MaxOpenConnections)
	}
}

func TestCreateIntakeDBRefusesExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "levqor.db")
	if err := os.WriteFile(path, []byte("not yours"), 0o600); err != nil {
		t.Fatal(err)
	}
	if db, err := createIntakeDB(t.Context(), path); err == nil {
		db.Close()
		t.Fatal("createIntakeDB opened an existing file")
	}
	if b, _ := os.ReadFile(path); string(b) != "not yours" {
		t.Errorf("the existing file was changed: %q", b)
	}
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}
