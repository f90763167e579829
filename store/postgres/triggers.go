package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/pgdb"
	"github.com/levqor/levqor/store/internal/dbrow"
	"github.com/levqor/levqor/triggers"
)

// ClaimSlot implements triggers.SlotClaimer: the primary key makes concurrent
// INSERT … ON CONFLICT DO NOTHING statements from any number of servers insert
// (key, slot) exactly once: the losers wait for the winner's commit and do nothing.
func (db *DB) ClaimSlot(ctx context.Context, key string, slot time.Time, by string) (bool, error) {
	n, err := db.q.ClaimScheduleSlot(ctx, pgdb.ClaimScheduleSlotParams{
		Key: key, Slot: slot.UTC(), ClaimedBy: by, ClaimedAt: time.Now().UTC(),
	})
	if err != nil {
		return false, fmt.Errorf("claim slot %s: %w", key, err)
	}
	return n == 1, nil
}

// ReleaseSlot implements triggers.Store.
func (db *DB) ReleaseSlot(ctx context.Context, key string, slot time.Time, by string) (bool, error) {
	n, err := db.q.ReleaseScheduleSlot(ctx, pgdb.ReleaseScheduleSlotParams{Key: key, Slot: slot.UTC(), ClaimedBy: by})
	if err != nil {
		return false, fmt.Errorf("release slot %s: %w", key, err)
	}
	return n == 1, nil
}

// DeleteSlotsBefore implements triggers.Store.
func (db *DB) DeleteSlotsBefore(ctx context.Context, t time.Time) (int64, error) {
	n, err := db.q.DeleteScheduleSlotsBefore(ctx, t.UTC())
	if err != nil {
		return 0, fmt.Errorf("delete schedule slots: %w", err)
	}
	return n, nil
}

// PutSchedule implements triggers.Store.
func (db *DB) PutSchedule(ctx context.Context, s triggers.Schedule) (triggers.Schedule, error) {
	row, err := db.q.PutSchedule(ctx, pgdb.PutScheduleParams(dbrow.PutSchedule(s)))
	if err != nil {
		return triggers.Schedule{}, fmt.Errorf("put schedule: %w", err)
	}
	return dbrow.ToSchedule(dbrow.Schedule(row)), nil
}

// GetSchedule implements triggers.Store.
func (db *DB) GetSchedule(ctx context.Context, ownerID, workflow, id string) (triggers.Schedule, error) {
	row, err := db.q.GetSchedule(ctx, pgdb.GetScheduleParams{OwnerID: ownerID, Workflow: workflow, ID: id})
	if err != nil {
		return triggers.Schedule{}, notFound(err, "Schedule")
	}
	return dbrow.ToSchedule(dbrow.Schedule(row)), nil
}

// ListSchedules implements triggers.Store.
func (db *DB) ListSchedules(ctx context.Context, ownerID, workflow string, limit int) ([]triggers.Schedule, error) {
	rows, err := db.q.ListSchedules(ctx, pgdb.ListSchedulesParams{OwnerID: ownerID, Workflow: workflow, MaxRows: int64(limit)})
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	return toSchedules(rows), nil
}

// DeleteSchedule implements triggers.Store.
func (db *DB) DeleteSchedule(ctx context.Context, ownerID, workflow, id string) error {
	n, err := db.q.DeleteSchedule(ctx, pgdb.DeleteScheduleParams{OwnerID: ownerID, Workflow: workflow, ID: id})
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
	rows, err := db.q.DueSchedules(ctx, pgdb.DueSchedulesParams{Now: dbrow.NullTimeOf(now), MaxRows: int64(limit)})
	if err != nil {
		return nil, fmt.Errorf("due schedules: %w", err)
	}
	return toSchedules(rows), nil
}

// AdvanceSchedule implements triggers.Store.
func (db *DB) AdvanceSchedule(ctx context.Context, s triggers.Schedule, next *time.Time) (bool, error) {
	n, err := db.q.AdvanceSchedule(ctx, pgdb.AdvanceScheduleParams{
		NextAt: dbrow.NullTime(next), OwnerID: s.OwnerID, Workflow: s.Workflow, ID: s.ID, FromNextAt: dbrow.NullTime(s.NextAt),
	})
	if err != nil {
		return false, fmt.Errorf("advance schedule: %w", err)
	}
	return n == 1, nil
}

// InsertTrigger implements triggers.Store.
func (db *DB) InsertTrigger(ctx context.Context, t triggers.Trigger) error {
	err := db.q.InsertTrigger(ctx, pgdb.InsertTriggerParams{
		ID: t.ID, OwnerID: t.OwnerID, Workflow: t.Workflow, Sealed: t.Sealed, CreatedAt: t.CreatedAt.UTC(),
	})
	if err != nil {
		return fmt.Errorf("insert trigger: %w", err)
	}
	return nil
}

// GetTrigger implements triggers.Store.
func (db *DB) GetTrigger(ctx context.Context, id string) (triggers.Trigger, error) {
	row, err := db.q.GetTrigger(ctx, id)
	if err != nil {
		return triggers.Trigger{}, notFound(err, "Trigger")
	}
	return dbrow.ToTrigger(dbrow.Trigger(row)), nil
}

// ListTriggers implements triggers.Store.
func (db *DB) ListTriggers(ctx context.Context, ownerID, workflow string, limit int) ([]triggers.Trigger, error) {
	rows, err := db.q.ListTriggers(ctx, pgdb.ListTriggersParams{OwnerID: ownerID, Workflow: workflow, MaxRows: int64(limit)})
	if err != nil {
		return nil, fmt.Errorf("list triggers: %w", err)
	}
	return toTriggers(rows), nil
}

// RollTrigger implements triggers.Store.
func (db *DB) RollTrigger(ctx context.Context, t triggers.Trigger) (triggers.Trigger, error) {
	row, err := db.q.RollTrigger(ctx, pgdb.RollTriggerParams{
		Sealed: t.Sealed, RolledAt: t.RolledAt.UTC(), ID: t.ID, OwnerID: t.OwnerID, Workflow: t.Workflow,
	})
	if err != nil {
		return triggers.Trigger{}, notFound(err, "Trigger")
	}
	return dbrow.ToTrigger(dbrow.Trigger(row)), nil
}

// DeleteTrigger implements triggers.Store.
func (db *DB) DeleteTrigger(ctx context.Context, ownerID, workflow, id string) error {
	n, err := db.q.DeleteTrigger(ctx, pgdb.DeleteTriggerParams{ID: id, OwnerID: ownerID, Workflow: workflow})
	if err != nil {
		return fmt.Errorf("delete trigger: %w", err)
	}
	if n == 0 {
		return levqor.Errorf(levqor.ENotFound, "Trigger not found.")
	}
	return nil
}

func toSchedules(rows []pgdb.WorkflowSchedule) []triggers.Schedule {
	out := make([]triggers.Schedule, len(rows))
	for i, r := range rows {
		out[i] = dbrow.ToSchedule(dbrow.Schedule(r))
	}
	return out
}

func toTriggers(rows []pgdb.WorkflowTrigger) []triggers.Trigger {
	out := make([]triggers.Trigger, len(rows))
	for i, r := range rows {
		out[i] = dbrow.ToTrigger(dbrow.Trigger(r))
	}
	return out
}
