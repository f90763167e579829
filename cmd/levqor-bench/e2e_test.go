package main

import (
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestPostgresSchema checks that the URL postgresSchema returns puts a new,
// empty schema first on the search path, and that drop removes it.
func TestPostgresSchema(t *testing.T) {
	base := os.Getenv("LEVQOR_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("set LEVQOR_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	url, drop, err := postgresSchema(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	dropped := false
	defer func() {
		if !dropped {
			_ = drop()
		}
	}()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	var schema string
	err = conn.QueryRow(t.Context(), "SELECT current_schema()").Scan(&schema)
	conn.Close(t.Context())
	if err != nil || !strings.HasPrefix(schema, "levqor_bench_") {
		t.Fatalf("current_schema() = %q, %v; want a levqor_bench_ schema", schema, err)
	}
	dropped = true
	if err := drop(); err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n); err != nil || n != 0 {
		t.Errorf("schema %s still there after drop (%d, %v)", schema, n, err)
	}
}
