package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/triggers"
)

// RunTriggers checks the once-per-cluster slot claim, workflow schedules (due
// listing and the conditional advance) and inbound triggers.
func RunTriggers(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("ClaimSlotOnce", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		slot := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
		// Concurrent claimers (the PostgreSQL pool runs them on separate connections):
		// exactly one wins.
		const claimers = 16
		var wins sync.WaitGroup
		won := make(chan string, claimers)
		for i := range claimers {
			wins.Add(1)
			go func() {
				defer wins.Done()
				ok, err := s.ClaimSlot(ctx, "backup:daily", slot, fmt.Sprintf("instance-%d", i))
				if err != nil {
					t.Errorf("ClaimSlot %d: %v", i, err)
				}
				if ok {
					won <- fmt.Sprint(i)
				}
			}()
		}
		wins.Wait()
		close(won)
		if n := len(won); n != 1 {
			t.Fatalf("%d of %d concurrent claimers won the slot, want exactly 1", n, claimers)
		}
		// Another slot of the key, and the same slot of another key, are free; in
		// another zone the same instant is the same slot.
		for _, c := range []struct {
			key  string
			slot time.Time
			want bool
		}{
			{"backup:daily", slot.Add(24 * time.Hour), true},
			{"schedule:usr_ann/sync/nightly", slot, true},
			{"backup:daily", slot.In(zoneNPT), false},
		} {
			ok, err := s.ClaimSlot(ctx, c.key, c.slot, "later")
			if err != nil || ok != c.want {
				t.Errorf("ClaimSlot(%s, %s) = %v, %v; want %v", c.key, c.slot, ok, err, c.want)
			}
		}
		// Only the claimer releases; a released slot can be claimed again.
		if ok, err := s.ReleaseSlot(ctx, "backup:daily", slot.Add(24*time.Hour), "someone-else"); err != nil || ok {
			t.Errorf("ReleaseSlot by another instance = %v, %v; want false", ok, err)
		}
		if ok, err := s.ReleaseSlot(ctx, "backup:daily", slot.Add(24*time.Hour), "later"); err != nil || !ok {
			t.Errorf("ReleaseSlot by the claimer = %v, %v; want true", ok, err)
		}
		if ok, err := s.ClaimSlot(ctx, "backup:daily", slot.Add(24*time.Hour), "again"); err != nil || !ok {
			t.Errorf("ClaimSlot after release = %v, %v; want true", ok, err)
		}
		// Purged claims are forgotten.
		if n, err := s.DeleteSlotsBefore(ctx, slot.Add(time.Hour)); err != nil || n != 2 {
			t.Errorf("DeleteSlotsBefore = %d, %v; want 2 (the first slot of both keys)", n, err)
		}
		if ok, err := s.ClaimSlot(ctx, "backup:daily", slot, "after-purge"); err != nil || !ok {
			t.Errorf("ClaimSlot after purge = %v, %v; want true", ok, err)
		}
	})

	t.Run("Schedules", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		wf := jobs.Workflow{OwnerID: "usr_ann", Name: "sync", Steps: []jobs.Step{{ID: "a", Connector: "core", Action: "echo"}}, CreatedAt: jobAt, UpdatedAt: jobAt}
		if _, err := s.PutWorkflow(ctx, wf); err != nil {
			t.Fatalf("PutWorkflow: %v", err)
		}
		next := jobAt.Add(time.Hour).Truncate(time.Second)
		sch := triggers.Schedule{OwnerID: "usr_ann", Workflow: "sync", ID: "nightly", Cron: "0 3 * * *", TimeZone: "Asia/Kathmandu",
			Payload: json.RawMessage(`{"a": 1}`), Enabled: true, MisfirePolicy: triggers.MisfireRunOnce, MisfireGrace: 90 * time.Second,
			NextAt: &next, CreatedAt: jobAt, UpdatedAt: jobAt}
		got, err := s.PutSchedule(ctx, sch)
		if err != nil {
			t.Fatalf("PutSchedule: %v", err)
		}
		if got.Cron != sch.Cron || got.TimeZone != sch.TimeZone || !got.Enabled || got.MisfirePolicy != sch.MisfirePolicy ||
			got.MisfireGrace != sch.MisfireGrace || got.NextAt == nil || !got.NextAt.Equal(next) || !got.CreatedAt.Equal(jobAt) {
			t.Errorf("PutSchedule returned %+v, want %+v", got, sch)
		}
		var payload map[string]int
		if err := json.Unmarshal(got.Payload, &payload); err != nil || payload["a"] != 1 {
			t.Errorf("payload %s, want {\"a\": 1}", got.Payload)
		}
		disabled := sch
		disabled.ID, disabled.Enabled = "off", false
		if _, err := s.PutSchedule(ctx, disabled); err != nil {
			t.Fatalf("PutSchedule disabled: %v", err)
		}
		list, err := s.ListSchedules(ctx, "usr_ann", "sync", 10)
		if err != nil || len(list) != 2 || list[0].ID != "nightly" || list[1].ID != "off" {
			t.Fatalf("ListSchedules = %+v, %v; want nightly, off", list, err)
		}
		if list, _ := s.ListSchedules(ctx, "usr_bob", "sync", 10); len(list) != 0 {
			t.Errorf("another owner lists %d schedules", len(list))
		}

		// Due: enabled, next_at at or before now.
		due, err := s.DueSchedules(ctx, next.Add(-time.Second), 10)
		if err != nil || len(due) != 0 {
			t.Errorf("DueSchedules before next_at = %d, %v; want none", len(due), err)
		}
		due, err = s.DueSchedules(ctx, next, 10)
		if err != nil || len(due) != 1 || due[0].ID != "nightly" {
			t.Fatalf("DueSchedules at next_at = %+v, %v; want only the enabled one", due, err)
		}
		// The advance is conditional on the next_at read: a second advance from the
		// same read does nothing.
		later := next.Add(24 * time.Hour)
		if ok, err := s.AdvanceSchedule(ctx, due[0], &later); err != nil || !ok {
			t.Fatalf("AdvanceSchedule = %v, %v; want true", ok, err)
		}
		if ok, err := s.AdvanceSchedule(ctx, due[0], &later); err != nil || ok {
			t.Errorf("AdvanceSchedule again from a stale read = %v, %v; want false", ok, err)
		}
		if due, _ := s.DueSchedules(ctx, next.Add(time.Minute), 10); len(due) != 0 {
			t.Errorf("DueSchedules after the advance = %d, want none", len(due))
		}
		got, err = s.GetSchedule(ctx, "usr_ann", "sync", "nightly")
		if err != nil || got.NextAt == nil || !got.NextAt.Equal(later) {
			t.Errorf("GetSchedule after the advance: %+v, %v; next_at want %s", got.NextAt, err, later)
		}
		if _, err := s.GetSchedule(ctx, "usr_bob", "sync", "nightly"); levqor.ErrorCode(err) != levqor.ENotFound {
			t.Errorf("GetSchedule of another owner: %v, want not_found", err)
		}
		if err := s.DeleteSchedule(ctx, "usr_ann", "sync", "off"); err != nil {
			t.Errorf("DeleteSchedule: %v", err)
		}
		if err := s.DeleteSchedule(ctx, "usr_ann", "sync", "off"); levqor.ErrorCode(err) != levqor.ENotFound {
			t.Errorf("DeleteSchedule again: %v, want not_found", err)
		}
		// Deleting the workflow deletes its schedules.
		if err := s.DeleteWorkflow(ctx, "usr_ann", "sync"); err != nil {
			t.Fatalf("DeleteWorkflow: %v", err)
		}
		if _, err := s.GetSchedule(ctx, "usr_ann", "sync", "nightly"); levqor.ErrorCode(err) != levqor.ENotFound {
			t.Errorf("GetSchedule after the workflow is deleted: %v, want not_found", err)
		}
	})

	t.Run("Triggers", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		wf := jobs.Workflow{OwnerID: "usr_ann", Name: "sync", Steps: []jobs.Step{{ID: "a", Connector: "core", Action: "echo"}}, CreatedAt: jobAt, UpdatedAt: jobAt}
		if _, err := s.PutWorkflow(ctx, wf); err != nil {
			t.Fatalf("PutWorkflow: %v", err)
		}
		tr := triggers.Trigger{ID: "trg_1", OwnerID: "usr_ann", Workflow: "sync", Sealed: []byte{0, 1, 2, 0xff}, CreatedAt: jobAt, RolledAt: jobAt}
		if err := s.InsertTrigger(ctx, tr); err != nil {
			t.Fatalf("InsertTrigger: %v", err)
		}
		got, err := s.GetTrigger(ctx, "trg_1")
		if err != nil || got.OwnerID != "usr_ann" || got.Workflow != "sync" || string(got.Sealed) != string(tr.Sealed) || !got.CreatedAt.Equal(jobAt) {
			t.Fatalf("GetTrigger = %+v, %v", got, err)
		}
		rolled := tr
		rolled.Sealed, rolled.RolledAt = []byte("new"), jobAt.Add(time.Hour)
		if _, err := s.RollTrigger(ctx, triggers.Trigger{ID: "trg_1", OwnerID: "usr_bob", Workflow: "sync", Sealed: []byte("x"), RolledAt: jobAt}); levqor.ErrorCode(err) != levqor.ENotFound {
			t.Errorf("RollTrigger by another owner: %v, want not_found", err)
		}
		got, err = s.RollTrigger(ctx, rolled)
		if err != nil || string(got.Sealed) != "new" || !got.RolledAt.Equal(rolled.RolledAt) || !got.CreatedAt.Equal(jobAt) {
			t.Errorf("RollTrigger = %+v, %v", got, err)
		}
		list, err := s.ListTriggers(ctx, "usr_ann", "sync", 10)
		if err != nil || len(list) != 1 || string(list[0].Sealed) != "new" {
			t.Errorf("ListTriggers = %+v, %v", list, err)
		}
		if err := s.DeleteTrigger(ctx, "usr_bob", "sync", "trg_1"); levqor.ErrorCode(err) != levqor.ENotFound {
			t.Errorf("DeleteTrigger by another owner: %v, want not_found", err)
		}
		if err := s.DeleteWorkflow(ctx, "usr_ann", "sync"); err != nil {
			t.Fatalf("DeleteWorkflow: %v", err)
		}
		if _, err := s.GetTrigger(ctx, "trg_1"); levqor.ErrorCode(err) != levqor.ENotFound {
			t.Errorf("GetTrigger after the workflow is deleted: %v, want not_found", err)
		}
	})
}
