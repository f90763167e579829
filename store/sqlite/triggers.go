package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/sqlitedb"
	"github.com/levqor/levqor/store/internal/dbrow"
	"github.com/levqor/levqor/triggers"
)

// ClaimSlot implements triggers.SlotClaimer: the single writer serialises the
// INSERT … ON CONFLICT DO NOTHING, so exactly one caller inserts (key, slot).
func (db *DB) ClaimSlot(ctx context.Context, key string, slot time.Time, by string) (bool, error) {
	n, err := db.wq.ClaimScheduleSlot(ctx, sqlitedb.ClaimScheduleSlotParams{
		Key: key, Slot: slot.UTC(), ClaimedBy: by, ClaimedAt: time.Now().UTC(),
	})
	if err != nil {
		return false, fmt.Errorf("claim slot %s: %w", key, err)
	}
	return n == 1, nil
}

// ReleaseSlot implements triggers.Store.
func (db *DB) ReleaseSlot(ctx context.Context, key string, slot time.Time, by string) (bool, error) {
	n, err := db.wq.ReleaseScheduleSlot(ctx, sqlitedb.ReleaseScheduleSlotParams{Key: key, Slot: slot.UTC(), ClaimedBy: by})
	if err != nil {
		return false, fmt.Errorf("release slot %s: %w", key, err)
	}
	return n == 1, nil
}

// DeleteSlotsBefore implements triggers.Store.
func (db *DB) DeleteSlotsBefore(ctx context.Context, t time.Time) (int64, error) {
	n, err := db.wq.DeleteScheduleSlotsBefore(ctx, t.UTC())
	if err != nil {
		return 0, fmt.Errorf("delete schedule slots: %w", err)
	}
	return n, nil
}

// PutSchedule implements triggers.Store.
func (db *DB) PutSchedule(ctx context.Context, s triggers.Schedule) (triggers.Schedule, error) {
	row, err := db.wq.PutSchedule(ctx, dbrow.PutSchedule(s))
	if err != nil {
		return triggers.Schedule{}, fmt.Errorf("put schedule: %w", err)
	}
	return dbrow.ToSchedule(row), nil
}

// GetSchedule implements triggers.Store.
func (db *DB) GetSchedule(ctx context.Context, ownerID, workflow, id string) (triggers.Schedule, error) {
	row, err := db.rq.GetSchedule(ctx, sqlitedb.GetScheduleParams{OwnerID: ownerID, Workflow: workflow, ID: id})
	if err != nil {
		return triggers.Schedule{}, notFound(err, "Schedule")
	}
	return dbrow.ToSchedule(row), nil
}

// ListSchedules implements triggers.Store.
func (db *DB) ListSchedules(ctx context.Context, ownerID, workflow string, limit int) ([]triggers.Schedule, error) {
	rows, err := db.rq.ListSchedules(ctx, sqlitedb.ListSchedulesParams{OwnerID: ownerID, Workflow: workflow, MaxRows: int64(limit)})
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	return dbrow.ToSchedules(rows), nil
}

// DeleteSchedule implements triggers.Store.
func (db *DB) DeleteSchedule(ctx context.Context, ownerID, workflow, id string) error {
	n, err := db.wq.DeleteSchedule(ctx, sqlitedb.DeleteScheduleParams{OwnerID: ownerID, Workflow: workflow, ID: id})
	if err != nil {
		return fmt.Errorf("delete schedule: %w", err)
	}
	if n == 0 {
		return levqor.Errorf(levqor.ENotFound, "Schedule not found.")
	}
	return nil
}

// DueSchedules implements triggers.Store.
func (db *DB) DueSchedules(ctx context.Context, now time.Time, limit int) ([]triggers.Schedule, error) {
	rows, err := db.rq.DueSchedules(ctx, sqlitedb.DueSchedulesParams{Now: dbrow.NullTimeOf(now), MaxRows: int64(limit)})
	if err != nil {
		return nil, fmt.Errorf("due schedules: %w", err)
	}
	return dbrow.ToSchedules(rows), nil
}

// AdvanceSchedule implements triggers.Store.
func (db *DB) AdvanceSchedule(ctx context.Context, s triggers.Schedule, next *time.Time) (bool, error) {
	n, err := db.wq.AdvanceSchedule(ctx, sqlitedb.AdvanceScheduleParams{
		NextAt: dbrow.NullTime(next), OwnerID: s.OwnerID, Workflow: s.Workflow, ID: s.ID, FromNextAt: dbrow.NullTime(s.NextAt),
	})
	if err != nil {
		return false, fmt.Errorf("advance schedule: %w", err)
	}
	return n == 1, nil
}

// InsertTrigger implements triggers.Store.
func (db *DB) InsertTrigger(ctx context.Context, t triggers.Trigger) error {
	err := db.wq.InsertTrigger(ctx, sqlitedb.InsertTriggerParams{
		ID: t.ID, OwnerID: t.OwnerID, Workflow: t.Workflow, Sealed: t.Sealed, CreatedAt: t.CreatedAt.UTC(),
	})
	if err != nil {
		return fmt.Errorf("insert trigger: %w", err)
	}
	return nil
}

// GetTrigger implements triggers.Store.
func (db *DB) GetTrigger(ctx context.Context, id string) (triggers.Trigger, error) {
	row, err := db.rq.GetTrigger(ctx, id)
	if err != nil {
		return triggers.Trigger{}, notFound(err, "Trigger")
	}
	return dbrow.ToTrigger(row), nil
}

// ListTriggers implements triggers.Store.
func (db *DB) ListTriggers(ctx context.Context, ownerID, workflow string, limit int) ([]triggers.Trigger, error) {
	rows, err := db.rq.ListTriggers(ctx, sqlitedb.ListTriggersParams{OwnerID: ownerID, Workflow: workflow, MaxRows: int64(limit)})
	if err != nil {
		return nil, fmt.Errorf("list triggers: %w", err)
	}
	return dbrow.ToTriggers(rows), nil
}

// RollTrigger implements triggers.Store.
func (db *DB) RollTrigger(ctx context.Context, t triggers.Trigger) (triggers.Trigger, error) {
	row, err := db.wq.RollTrigger(ctx, sqlitedb.RollTriggerParams{
		Sealed: t.Sealed, RolledAt: t.RolledAt.UTC(), ID: t.ID, OwnerID: t.OwnerID, Workflow: t.Workflow,
	})
	if err != nil {
		return triggers.Trigger{}, notFound(err, "Trigger")
	}
	return dbrow.ToTrigger(row), nil
}

// DeleteTrigger implements triggers.Store.
func (db *DB) DeleteTrigger(ctx context.Context, ownerID, workflow, id string) error {
	n, err := db.wq.DeleteTrigger(ctx, sqlitedb.DeleteTriggerParams{ID: id, OwnerID: ownerID, Workflow: workflow})
	if err != nil {
		return fmt.Errorf("delete trigger: %w", err)
	}
	if n == 0 {
		return levqor.Errorf(levqor.ENotFound, "Trigger not found.")
	}
	return nil
}
