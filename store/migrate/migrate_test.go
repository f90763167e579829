package migrate_test

import (
	"strings"
	"testing"

	"github.com/levqor/levqor/store/migrate"
)

// TestMigrationsMatchAcrossEngines: both engines must reach the same schema version
// through the same steps, so that /ready, backups and the conformance suite mean
// the same thing on either.
func TestMigrationsMatchAcrossEngines(t *testing.T) {
	lite, err := migrate.Migrations("sqlite")
	if err != nil {
		t.Fatalf(`Migrations("sqlite"): %v`, err)
	}
	pg, err := migrate.Migrations("postgres")
	if err != nil {
		t.Fatalf(`Migrations("postgres"): %v`, err)
	}
	if len(lite) == 0 {
		t.Fatal("no SQLite migrations embedded")
	}
	if len(lite) != len(pg) {
		t.Errorf("%d SQLite migrations, %d PostgreSQL migrations, want the same number", len(lite), len(pg))
	}
	for i := range max(len(lite), len(pg)) {
		for _, e := range []struct {
			engine string
			ms     []migrate.Migration
		}{{"sqlite", lite}, {"postgres", pg}} {
			if i >= len(e.ms) {
				continue
			}
			m := e.ms[i]
			if m.Version != i+1 {
				t.Errorf("%s migration %d is %s (version %d), want version %d: versions start at 1 without gaps", e.engine, i, m.Name, m.Version, i+1)
			}
			if strings.TrimSpace(m.SQL) == "" {
				t.Errorf("%s migration %s is empty", e.engine, m.Name)
			}
		}
		if i < len(lite) && i < len(pg) && lite[i].Name != pg[i].Name {
			t.Errorf("migration %d: SQLite has %s, PostgreSQL has %s", i+1, lite[i].Name, pg[i].Name)
		}
	}
}

// An unknown engine must be an error, not an empty list that Migrate would take
// as "nothing to do" and Ready as "fully migrated".
func TestMigrationsUnknownEngine(t *testing.T) {
	for _, engine := range []string{"mysql", "", "../sql"} {
		if ms, err := migrate.Migrations(engine); err == nil {
			t.Errorf("Migrations(%q) = %d migrations, no error; want an error", engine, len(ms))
		}
	}
}
