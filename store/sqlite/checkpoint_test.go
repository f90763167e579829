package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/budget"
)

// openMigrated opens and migrates a fresh database, closed when the test ends, and
// opens its -shm file for walFrames.
func openMigrated(tb testing.TB) (*DB, *os.File) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "levqor.db")
	db, err := Open(tb.Context(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Migrate(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	shm, err := os.Open(path + "-shm")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { shm.Close() })
	return db, shm
}

func frames(t *testing.T, shm *os.File) uint32 {
	t.Helper()
	n, err := walFrames(shm)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// step reserves and settles one AI call's owner budget, as a step does.
func step(t *testing.T, db *DB, owner string) {
	t.Helper()
	ctx, now := t.Context(), time.Now()
	r := budget.OwnerReservation{ID: levqor.NewID("rsv"), OwnerID: owner, JobID: "job_1", StepID: "ask", Model: "gpt-4o-mini",
		Reserved: 400_000, ExpiresAt: now.Add(time.Minute), CreatedAt: now}
	if err := db.ReserveOwnerBudget(ctx, r, budget.Limits{Daily: 1e15, Monthly: 1e15}); err != nil {
		t.Fatal(err)
	}
	if err := db.SettleOwnerBudget(ctx, owner, r.ID, 300_000, now); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointerRestartsTheWAL writes without pause for several WAL cycles: with the
// automatic checkpoint off, only the checkpointer keeps the WAL short, and it must
// restart it, not just copy it (a checkpoint alone leaves the WAL growing forever while
// writes never pause).
func TestCheckpointerRestartsTheWAL(t *testing.T) {
	db, shm := openMigrated(t)
	var most, restarts uint32
	prev := frames(t, shm)
	for range 2000 { // about 9,000 frames
		step(t, db, "usr_1")
		n := frames(t, shm)
		most = max(most, n)
		if n < prev {
			restarts++
		}
		prev = n
	}
	if restarts < 3 {
		t.Errorf("the WAL restarted %d times over about nine checkpoint cycles, want at least 3", restarts)
	}
	// A poll interval's worth of writes may come on top of checkpointFrames.
	if most > 3*checkpointFrames {
		t.Errorf("the WAL reached %d frames, want at most %d", most, 3*checkpointFrames)
	}
}

// TestCheckpointWaitsForReaders: a reader on an old snapshot keeps the WAL from
// restarting; the checkpointer then tries again only as the WAL grows, and restarts it
// once the reader is done.
func TestCheckpointWaitsForReaders(t *testing.T) {
	db, shm := openMigrated(t)
	ctx := t.Context()
	tx, err := db.read.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM budget_open").Scan(&n); err != nil { // takes the snapshot
		t.Fatal(err)
	}
	for range 300 { // past checkpointFrames
		step(t, db, "usr_1")
	}
	held := frames(t, shm)
	if held < checkpointFrames {
		t.Fatalf("WAL at %d frames, want the test to pass %d", held, checkpointFrames)
	}
	time.Sleep(10 * checkpointPoll)
	if got := frames(t, shm); got < held {
		t.Errorf("the WAL restarted (%d → %d frames) under a reader's snapshot", held, got)
	}
	tx.Rollback()
	for range 150 { // half a threshold more: the checkpointer tries again
		step(t, db, "usr_1")
	}
	deadline := time.Now().Add(5 * time.Second)
	for frames(t, shm) >= held && time.Now().Before(deadline) {
		time.Sleep(checkpointPoll)
	}
	if got := frames(t, shm); got >= held {
		t.Errorf("the WAL holds %d frames 5 s after the reader ended, want it restarted", got)
	}
}

// TestOwnerBudgetPagesPerStep guards what makes the guardrail cheap on SQLite: a
// reservation and its settlement write about four pages to the WAL (budget_open twice,
// budget_closed, budget_spent; migration 0009), so checkpoints come rarely. A new index
// on those tables would show here.
func TestOwnerBudgetPagesPerStep(t *testing.T) {
	db, shm := openMigrated(t)
	if _, err := db.checkpoint(context.Background(), shm); err != nil {
		t.Fatal(err)
	}
	const steps = 150 // fewer frames than checkpointFrames: no checkpoint in between
	before := frames(t, shm)
	for range steps {
		step(t, db, "usr_1")
	}
	perStep := float64(frames(t, shm)-before) / steps
	t.Logf("%.2f WAL frames per reserve + settle", perStep)
	if perStep > 5 {
		t.Errorf("%.2f WAL frames per reserve + settle, want at most 5", perStep)
	}
}

// TestJobWritesBuildNoTemporaryTables: an update of every column the jobs table's
// partial indexes test runs without building a temporary table (OpenEphemeral), which
// SQLite does on every run of a statement for each IN list of more than two constants
// in a partial index's condition (migration 0020).
func TestJobWritesBuildNoTemporaryTables(t *testing.T) {
	db, _ := openMigrated(t)
	rows, err := db.write.QueryContext(t.Context(), `EXPLAIN UPDATE jobs SET status = ?1, priority = ?2, run_at = ?3,
		lease_expires_at = ?4, finished_at = ?5, callback_state = ?6, callback_next_at = ?7, idem_key = ?8, replay_of = ?9
		WHERE id = ?10`, make([]any, 10)...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	ops := 0
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		ops++
		if op, _ := vals[1].(string); op == "OpenEphemeral" {
			t.Errorf("the update builds a temporary table: %v", vals)
		}
	}
	if err := rows.Err(); err != nil || ops < 10 {
		t.Fatalf("EXPLAIN gave %d opcodes: %v", ops, err)
	}
}
