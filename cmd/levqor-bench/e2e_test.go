package main

import (
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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

// TestPostgresSchemaWithPoolSettings: a URL with pool settings, which levqor and
// the River peer read, is accepted (they are not sent to the server), and the
// backend probe finds the backends that name the schema as their application.
func TestPostgresSchemaWithPoolSettings(t *testing.T) {
	base := os.Getenv("LEVQOR_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("set LEVQOR_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	base += sep + "pool_max_conns=3"
	_, err := onFreshSchema(t.Context(), base, func(dbURL, schema string, dbCPU cpuProbe) (e2eResult, error) {
		if !strings.Contains(dbURL, "application_name="+schema) {
			t.Errorf("URL %q does not name the schema %s as its application", dbURL, schema)
		}
		if d, err := dbCPU.read(t.Context()); err != nil || d != 0 {
			t.Errorf("probe with no backend = %v, %v; want 0, nil", d, err)
		}
		cfg, err := pgxpool.ParseConfig(dbURL)
		if err != nil {
			return e2eResult{}, err
		}
		conn, err := pgx.ConnectConfig(t.Context(), cfg.ConnConfig)
		if err != nil {
			return e2eResult{}, err
		}
		defer conn.Close(t.Context())
		// Spend some backend CPU, so that the probe has something to see.
		if _, err := conn.Exec(t.Context(), "SELECT count(*) FROM generate_series(1, 3000000)"); err != nil {
			return e2eResult{}, err
		}
		if d, err := dbCPU.read(t.Context()); err != nil || d <= 0 {
			t.Errorf("probe with a busy backend = %v, %v; want more than 0", d, err)
		}
		return e2eResult{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
