// Package triggers starts jobs of saved workflows without a client asking each
// time: cron schedules, fired once per cluster by the Scheduler, and inbound
// webhooks (POST /hooks/{trigger_id}) verified by an HMAC signature. Every job goes
// through jobs.Service.Submit with an idempotency key, like any other intake.
package triggers

import (
	"context"
	"encoding/json"
	"time"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
)

// Misfire policies: what a schedule does with slots it missed (the scheduler was
// down, or the database slow) by more than MisfireThreshold.
const (
	MisfireSkip    = "skip"     // missed slots never run
	MisfireRunOnce = "run_once" // the latest missed slot runs once, if within the schedule's grace
)

// Schedule is a cron schedule of a saved workflow.
type Schedule struct {
	OwnerID, Workflow, ID string
	Cron                  string // five fields, or a descriptor such as @daily
	TimeZone              string // IANA name the cron fields are read in
	Payload               json.RawMessage
	Enabled               bool
	MisfirePolicy         string
	MisfireGrace          time.Duration
	// NextAt is the next slot not yet handled; nil when the expression never fires again.
	NextAt               *time.Time
	CreatedAt, UpdatedAt time.Time
}

// Trigger is an inbound webhook of a saved workflow. Its secret is kept only
// sealed (Sealed), bound to the owner and the trigger id.
type Trigger struct {
	ID, OwnerID, Workflow string
	Sealed                []byte
	CreatedAt, RolledAt   time.Time
}

// SlotClaimer claims a slot of periodic work once per cluster: the first caller for
// (key, slot) gets true, every later one false, on every instance sharing the
// database. store.Store implements it; daily backups use it too.
type SlotClaimer interface {
	ClaimSlot(ctx context.Context, key string, slot time.Time, by string) (bool, error)
}

// Store keeps schedules, triggers and claimed slots.
type Store interface {
	SlotClaimer
	// ReleaseSlot undoes by's claim of (key, slot), so that the slot can be claimed again.
	ReleaseSlot(ctx context.Context, key string, slot time.Time, by string) (bool, error)
	// DeleteSlotsBefore forgets claims of slots before t (they can no longer be due).
	DeleteSlotsBefore(ctx context.Context, t time.Time) (int64, error)

	PutSchedule(ctx context.Context, s Schedule) (Schedule, error)
	GetSchedule(ctx context.Context, ownerID, workflow, id string) (Schedule, error) // levqor.ENotFound
	ListSchedules(ctx context.Context, ownerID, workflow string, limit int) ([]Schedule, error)
	DeleteSchedule(ctx context.Context, ownerID, workflow, id string) error // levqor.ENotFound
	// DueSchedules lists enabled schedules whose NextAt is at or before now, soonest first.
	DueSchedules(ctx context.Context, now time.Time, limit int) ([]Schedule, error)
	// AdvanceSchedule moves s.NextAt to next, only if it still is s.NextAt; it reports whether it did.
	AdvanceSchedule(ctx context.Context, s Schedule, next *time.Time) (bool, error)

	InsertTrigger(ctx context.Context, t Trigger) error
	GetTrigger(ctx context.Context, id string) (Trigger, error) // levqor.ENotFound
	ListTriggers(ctx context.Context, ownerID, workflow string, limit int) ([]Trigger, error)
	RollTrigger(ctx context.Context, t Trigger) (Trigger, error)           // levqor.ENotFound; sets Sealed and RolledAt
	DeleteTrigger(ctx context.Context, ownerID, workflow, id string) error // levqor.ENotFound
}

// Sealer seals trigger secrets at rest; credentials.Service implements it.
type Sealer interface {
	SealTriggerSecret(ownerID, triggerID, secret string) ([]byte, error)
	OpenTriggerSecret(ownerID, triggerID string, sealed []byte) (string, error)
}

// Intake is the one way jobs are created: jobs.Service.
type Intake interface {
	Submit(ctx context.Context, p keys.Principal, in jobs.Intake) (jobs.Job, bool, error)
	GetWorkflow(ctx context.Context, p keys.Principal, name string) (jobs.Workflow, error)
}

var _ Intake = (*jobs.Service)(nil)

// Service manages schedules and triggers and accepts inbound webhooks.
type Service struct {
	store  Store
	intake Intake
	sealer Sealer
	now    func() time.Time
}

// NewService returns a Service over store, creating jobs through intake.
func NewService(store Store, intake Intake, sealer Sealer) *Service {
	return &Service{store: store, intake: intake, sealer: sealer, now: time.Now}
}

// principal is who a triggered job is submitted as: the workflow's owner, with an
// idempotency scope of its own (KeyID) so a trigger's keys never meet an API key's.
func principal(ownerID, scope string) keys.Principal {
	return keys.Principal{OwnerID: ownerID, KeyID: scope}
}

// WithClock makes the service read time from now (tests use a fake clock).
func (s *Service) WithClock(now func() time.Time) *Service {
	s.now = now
	return s
}
