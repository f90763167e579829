package storetest

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/postgres"
	"github.com/levqor/levqor/store/sqlite"
)

// OpenSQLite returns a migrated SQLite store in a fresh file under t.TempDir(),
// closed when the test ends.
func OpenSQLite(t testing.TB) store.Store {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "levqor.db"))
	if err != nil {
		t.Fatalf("open SQLite: %v", err)
	}
	return migrated(t, db)
}

// OpenPostgres returns a migrated PostgreSQL store in a fresh schema (see PostgresURL),
// closed when the test ends. Without LEVQOR_TEST_POSTGRES_URL the test is skipped.
func OpenPostgres(t testing.TB) store.Store {
	t.Helper()
	db, err := postgres.Open(t.Context(), PostgresURL(t))
	if err != nil {
		t.Fatalf("open PostgreSQL: %v", err)
	}
	return migrated(t, db)
}

func migrated(t testing.TB, s store.Store) store.Store {
	t.Helper()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close %s store: %v", s.Engine(), err)
		}
	})
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate %s: %v", s.Engine(), err)
	}
	return s
}

// Run is the conformance suite every storage engine passes. open returns a fresh,
// migrated store for each subtest (OpenSQLite, OpenPostgres).
func Run(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("Migrate", func(t *testing.T) {
		t.Parallel()
		RunMigrate(t, open)
	})
	t.Run("Users", func(t *testing.T) {
		t.Parallel()
		RunUsers(t, open)
	})
	t.Run("Keys", func(t *testing.T) {
		t.Parallel()
		RunKeys(t, open)
	})
	t.Run("Jobs", func(t *testing.T) {
		t.Parallel()
		RunJobs(t, open)
	})
	t.Run("JobCounts", func(t *testing.T) {
		t.Parallel()
		RunJobCounts(t, open)
	})
	t.Run("Retention", func(t *testing.T) {
		t.Parallel()
		RunRetention(t, open)
	})
	t.Run("JobLimits", func(t *testing.T) {
		t.Parallel()
		RunJobLimits(t, open)
	})
	t.Run("Budgets", func(t *testing.T) {
		t.Parallel()
		RunBudgets(t, open)
	})
	t.Run("Credentials", func(t *testing.T) {
		t.Parallel()
		RunCredentials(t, open)
	})
	t.Run("Analytics", func(t *testing.T) {
		t.Parallel()
		RunAnalytics(t, open)
	})
	t.Run("NotificationSettings", func(t *testing.T) {
		t.Parallel()
		RunNotificationSettings(t, open)
	})
	t.Run("Triggers", func(t *testing.T) {
		t.Parallel()
		RunTriggers(t, open)
	})
	t.Run("Billing", func(t *testing.T) {
		t.Parallel()
		RunBilling(t, open)
	})
	t.Run("WebhookSecrets", func(t *testing.T) {
		RunWebhookSecrets(t, open)
	})
	t.Run("Newsletter", func(t *testing.T) {
		t.Parallel()
		RunNewsletter(t, open)
	})
}

// RunMigrate checks the migration and readiness contract of store.Store.
func RunMigrate(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("AgainIsANoOp", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		for i := range 2 {
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate call %d after the first: %v", i+1, err)
			}
		}
		if err := s.Ready(ctx); err != nil {
			t.Fatalf("Ready after repeated Migrate: %v", err)
		}
		// The schema still works: a re-applied migration would have failed above or
		// dropped data here.
		u := newUser("again@example.com")
		if _, created, err := s.CreateUserIfAbsent(ctx, u); err != nil || !created {
			t.Fatalf("CreateUserIfAbsent after repeated Migrate: created=%v err=%v", created, err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate with data present: %v", err)
		}
		if _, err := s.GetUser(ctx, u.ID); err != nil {
			t.Fatalf("GetUser after Migrate with data present: %v", err)
		}
	})

	t.Run("Ready", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		if err := s.Ready(t.Context()); err != nil {
			t.Fatalf("Ready after Migrate: %v", err)
		}
	})

}

// SQLiteJobIDs reads the ids of the jobs in the SQLite file at path, opened read-only
// (a backup, a restored or a crashed database).
func SQLiteJobIDs(t testing.TB, path string) map[string]bool {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id FROM jobs`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}
