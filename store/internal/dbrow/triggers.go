package dbrow

import (
	"database/sql"
	"encoding/json"
	"time"

	"github.com/levqor/levqor/gen/sqlitedb"
	"github.com/levqor/levqor/triggers"
)

// The rows and parameters of the trigger queries.
type (
	Schedule          = sqlitedb.WorkflowSchedule
	PutScheduleParams = sqlitedb.PutScheduleParams
	Trigger           = sqlitedb.WorkflowTrigger
)

// ToSchedule converts a workflow_schedules row.
func ToSchedule(r Schedule) triggers.Schedule {
	return triggers.Schedule{
		OwnerID: r.OwnerID, Workflow: r.Workflow, ID: r.ID, Cron: r.Cron, TimeZone: r.TimeZone,
		Payload: json.RawMessage(r.Payload), Enabled: r.Enabled, MisfirePolicy: r.MisfirePolicy,
		MisfireGrace: time.Duration(r.MisfireGraceS) * time.Second, NextAt: TimePtr(r.NextAt),
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// ToSchedules converts workflow_schedules rows.
func ToSchedules(rows []Schedule) []triggers.Schedule {
	out := make([]triggers.Schedule, len(rows))
	for i, r := range rows {
		out[i] = ToSchedule(r)
	}
	return out
}

// PutSchedule is the parameters that store s (created or replaced at s.UpdatedAt).
func PutSchedule(s triggers.Schedule) PutScheduleParams {
	return PutScheduleParams{
		OwnerID: s.OwnerID, Workflow: s.Workflow, ID: s.ID, Cron: s.Cron, TimeZone: s.TimeZone,
		Payload: string(s.Payload), Enabled: s.Enabled, MisfirePolicy: s.MisfirePolicy,
		MisfireGraceS: int64(s.MisfireGrace / time.Second), NextAt: NullTime(s.NextAt), Now: s.UpdatedAt.UTC(),
	}
}

// ToTrigger converts a workflow_triggers row.
func ToTrigger(r Trigger) triggers.Trigger {
	return triggers.Trigger{ID: r.ID, OwnerID: r.OwnerID, Workflow: r.Workflow, Sealed: r.Sealed,
		CreatedAt: r.CreatedAt.UTC(), RolledAt: r.RolledAt.UTC()}
}

// ToTriggers converts workflow_triggers rows.
func ToTriggers(rows []Trigger) []triggers.Trigger {
	out := make([]triggers.Trigger, len(rows))
	for i, r := range rows {
		out[i] = ToTrigger(r)
	}
	return out
}

// NullTimeOf is NullTime for a time that is always set.
func NullTimeOf(t time.Time) sql.NullTime { return NullTime(&t) }
