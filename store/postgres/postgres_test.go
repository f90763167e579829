package postgres_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/store/migrate"
	"github.com/levqor/levqor/store/postgres"
	"github.com/levqor/levqor/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.OpenPostgres)
}

// open connects to url and closes the pool when the test ends.
func open(t *testing.T, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestReadyBeforeMigrate(t *testing.T) {
	db := open(t, storetest.PostgresURL(t))
	err := db.Ready(t.Context())
	if code := levqor.ErrorCode(err); code != levqor.EUnavailable {
		t.Fatalf("Ready before Migrate: code %q (err %v), want %q", code, err, levqor.EUnavailable)
	}
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if err := db.Ready(t.Context()); err != nil {
		t.Fatalf("Ready after Migrate: %v", err)
	}
}

// TestMigrateConcurrently starts several instances on one fresh schema at once, as a
// rolling deploy does: the advisory lock must let each migration run exactly once.
func TestMigrateConcurrently(t *testing.T) {
	url := storetest.PostgresURL(t)
	ctx := t.Context()
	const instances = 4 // more than two, so that an unlocked Migrate collides reliably
	dbs := make([]*postgres.DB, instances)
	for i := range dbs {
		dbs[i] = open(t, url)
	}

	errs := make([]error, instances)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() {
			<-start
			errs[i] = db.Migrate(ctx)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: Migrate: %v", i, err)
		}
	}

	want, err := migrate.Migrations("postgres")
	if err != nil {
		t.Fatalf("Migrations: %v", err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT version, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	type applied struct {
		Version int
		Name    string
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[applied])
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("schema_migrations has %d rows %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].Version != want[i].Version || got[i].Name != want[i].Name {
			t.Errorf("schema_migrations row %d = %d %s, want %d %s", i, got[i].Version, got[i].Name, want[i].Version, want[i].Name)
		}
	}
	for i, db := range dbs {
		if err := db.Ready(ctx); err != nil {
			t.Errorf("instance %d: Ready: %v", i, err)
		}
	}
}

// TestOpenKeepsThePasswordOutOfErrors: Open's errors reach logs and the terminal,
// so a bad URL must not print the password it carries.
func TestOpenKeepsThePasswordOutOfErrors(t *testing.T) {
	const password = "Sup3rS3cretPw"
	for _, tc := range []struct{ name, url string }{
		{"BadPort", "postgres://levqor:" + password + "@localhost:notaport/levqor"},
		{"BadEscape", "postgres://levqor:" + password + "%zz@localhost/levqor"},
		{"SpaceInHost", "postgres://levqor:" + password + "@local host/levqor"},
		{"BadSSLMode", "postgres://levqor:" + password + "@localhost/levqor?sslmode=sometimes"},
		{"BadKeywordForm", "host=localhost password=" + password + " port=notaport"},
		// pgx's own redaction misses these two: its message would show the password.
		{"SpacedKeyword", "host=localhost password = " + password + " port=notaport"},
		{"UnescapedAtInPassword", "postgres://levqor:p@" + password + "@localhost:notaport/levqor"},
		{"Unreachable", "postgres://levqor:" + password + "@127.0.0.1:1/levqor?connect_timeout=2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := postgres.Open(t.Context(), tc.url)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%s): no error", tc.name)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("Open error shows the password: %v", err)
			}
		})
	}
}
