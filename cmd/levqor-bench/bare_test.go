package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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
