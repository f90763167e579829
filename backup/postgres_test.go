package backup_test

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/levqor/levqor/backup"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
)

// dumpTables lists the tables of a pg_dump archive as schema → names, from
// pg_restore --list.
func dumpTables(t *testing.T, path string) map[string][]string {
	t.Helper()
	out, err := exec.Command("pg_restore", "--list", path).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_restore --list: %v\n%s", err, out)
	}
	tables := map[string][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		// "215; 1259 16390 TABLE schema name owner", not "… TABLE DATA schema name owner"
		if f := strings.Fields(line); len(f) >= 7 && f[3] == "TABLE" && f[4] != "DATA" {
			tables[f[4]] = append(tables[f[4]], f[5])
		}
	}
	return tables
}

func needPgDump(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install postgresql-client): the PostgreSQL backup cannot run here", tool)
		}
	}
}

// TestPostgresBackupOfSearchPathSchema: a LEVQOR_DATABASE_URL with pgx-only
// parameters (search_path, as storetest.PostgresURL adds for a schema per test, and a
// pool setting) is one pg_dump refuses as given ("invalid URI query parameter"); the
// backup passes it what it accepts and dumps exactly Levqor's schema of the shared
// database.
func TestPostgresBackupOfSearchPathSchema(t *testing.T) {
	needPgDump(t)
	dbURL := storetest.PostgresURL(t) + "&pool_max_conns=4"
	st, err := store.Open(t.Context(), store.Options{Engine: "postgres", PostgresURL: dbURL})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	schema := searchPath(t, dbURL)

	res, err := backup.Postgres(t.Context(), dbURL, t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tables := dumpTables(t, res.Path)
	if len(tables) != 1 || !slices.Contains(tables[schema], "jobs") || !slices.Contains(tables[schema], "schema_migrations") || !slices.Contains(tables[schema], "budget_ledger") {
		t.Errorf("the archive's tables %v; want Levqor's, in schema %s only", tables, schema)
	}
}

// TestPostgresBackupQuotedSchema: a schema whose name has capitals, a quote and a
// pattern character is dumped exactly, and the schema its name would match as a
// pattern is not.
func TestPostgresBackupQuotedSchema(t *testing.T) {
	needPgDump(t)
	base := storetest.PostgresURL(t) // skips without PostgreSQL; its schema is a bystander here
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) }) // after the schemas' drops, registered below
	suffix := strings.TrimPrefix(searchPath(t, base), "t_")
	name, decoy := `Lev"Qor*`+suffix, `Lev"QorX`+suffix
	for _, s := range []string{name, decoy} {
		ident := pgx.Identifier{s}.Sanitize()
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+ident+"; CREATE TABLE "+ident+".t (x int)"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+ident+" CASCADE"); err != nil {
				t.Errorf("drop schema %s: %v", s, err)
			}
		})
	}
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", pgx.Identifier{name}.Sanitize())
	u.RawQuery = q.Encode()

	res, err := backup.Postgres(t.Context(), u.String(), t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if tables := dumpTables(t, res.Path); len(tables) != 1 || len(tables[name]) != 1 {
		t.Errorf("the archive's tables %v; want only %s.t", tables, name)
	}
	if fi, err := os.Stat(res.Path); err != nil || fi.Mode().Perm() != backup.FileMode || filepath.Ext(res.Path) != backup.PostgresExt {
		t.Errorf("archive %s: %v", res.Path, err)
	}
}

// searchPath returns the search_path parameter of a URL.
func searchPath(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil || u.Query().Get("search_path") == "" {
		t.Fatalf("no search_path in the test URL: %v", err)
	}
	return u.Query().Get("search_path")
}
