package sqlite

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/levqor/levqor/budget"
)

// TestMigration0009KeepsBudgets fills the budget tables of migration 0008's schema —
// one ledger with open, settled and expired rows, and its running totals — and checks
// that after 0009 every amount, reservation and late settle is where it was.
func TestMigration0009KeepsBudgets(t *testing.T) {
	ctx := t.Context()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "levqor.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.migrateTo(ctx, 8); err != nil {
		t.Fatal(err)
	}
	const cent = 10_000_000
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	if _, err := db.write.ExecContext(ctx, `
INSERT INTO budget_ledger (id, owner_id, job_id, step_id, model, period_day, period_month, reserved_nanos, spent_nanos, state, expires_at, created_at, settled_at) VALUES
 ('rsv_open',    'usr_a', 'job_1', 'ask', 'gpt-4o',      '2026-11-20', '2026-11', 5*?1, 0,    'open',    ?2, ?3, NULL),
 ('rsv_settled', 'usr_a', 'job_1', 'ask', 'gpt-4o',      '2026-11-20', '2026-11', 4*?1, 3*?1, 'settled', ?2, ?3, ?3),
 ('rsv_old',     'usr_a', 'job_0', 'ask', 'gpt-4o-mini', '2026-11-02', '2026-11', 2*?1, 2*?1, 'settled', ?2, ?3, ?3),
 ('rsv_expired', 'usr_a', 'job_2', 'ask', 'gpt-4o',      '2026-11-20', '2026-11', 2*?1, 0,    'expired', ?2, ?3, NULL);
INSERT INTO budget_totals (owner_id, period, spent_nanos, reserved_nanos) VALUES
 ('usr_a', 'D2026-11-20', 3*?1, 5*?1), ('usr_a', 'D2026-11-02', 2*?1, 0), ('usr_a', 'M2026-11', 5*?1, 5*?1);`,
		cent, at.Add(time.Minute), at); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}

	day, month, err := db.OwnerUsage(ctx, "usr_a", at)
	if err != nil {
		t.Fatal(err)
	}
	if day.Spent != 3*cent || day.Reserved != 5*cent || day.ByModel["gpt-4o"] != 3*cent {
		t.Errorf("day after 0009: %+v, want spent 3¢ (gpt-4o) and 5¢ reserved", day)
	}
	if month.Spent != 5*cent || month.Reserved != 5*cent || month.ByModel["gpt-4o-mini"] != 2*cent {
		t.Errorf("month after 0009: %+v, want spent 5¢ (2¢ gpt-4o-mini) and 5¢ reserved", month)
	}
	// The open reservation settles; the expired one settles late; the settled one no more.
	if err := db.SettleOwnerBudget(ctx, "usr_a", "rsv_open", 4*cent, at); err != nil {
		t.Errorf("settle the open reservation: %v", err)
	}
	if err := db.SettleOwnerBudget(ctx, "usr_a", "rsv_expired", 1*cent, at); err != nil {
		t.Errorf("settle the expired reservation: %v", err)
	}
	if err := db.SettleOwnerBudget(ctx, "usr_a", "rsv_settled", 1*cent, at); !errors.Is(err, budget.ErrUnknownReservation) {
		t.Errorf("settle the settled reservation again: %v, want ErrUnknownReservation", err)
	}
	day, _, err = db.OwnerTotals(ctx, "usr_a", at)
	if err != nil {
		t.Fatal(err)
	}
	if day.Spent != 8*cent || day.Reserved != 0 {
		t.Errorf("day after the settles: %+v, want spent 8¢, nothing reserved", day)
	}
}
