package triggers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/jobs"
)

// Limits of the scheduler.
const (
	// MisfireThreshold is how late a slot may be handled and still count as on time
	// (it fires whatever the policy): a slow tick or a busy database is not a misfire.
	MisfireThreshold = time.Minute
	// DefaultTickInterval is how often the scheduler looks for due schedules.
	DefaultTickInterval = time.Second
	// dueBatch bounds the schedules one tick reads; the rest wait for the next tick.
	dueBatch = 100
	// slotRetention is how long claimed slots are kept: longer than any slot can
	// still be due (MaxMisfireGrace), so a forgotten claim can never fire twice.
	slotRetention = MaxMisfireGrace + 24*time.Hour
	// purgeEvery is how often a scheduler forgets claims older than slotRetention.
	purgeEvery = time.Hour
)

// SchedulerConfig builds a Scheduler.
type SchedulerConfig struct {
	Store    Store
	Intake   Intake
	Instance string // names this process in claimed slots (claimed_by)
	Logger   *slog.Logger
	Interval time.Duration    // 0: DefaultTickInterval
	Now      func() time.Time // nil: time.Now (tests pass a fake clock)
}

// Scheduler fires due schedule slots. Any number of instances may run against one
// database: each slot is claimed once per cluster (SlotClaimer), and the job it
// creates carries an idempotency key derived from the slot, so even a slot
// claimed twice (say, after its claim was purged) cannot make two jobs.
type Scheduler struct {
	cfg       SchedulerConfig
	lastPurge time.Time
}

// NewScheduler returns a Scheduler; Run starts it.
func NewScheduler(cfg SchedulerConfig) *Scheduler {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultTickInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{cfg: cfg}
}

// Run ticks until ctx ends. A failed tick is logged and the next one retries.
func (s *Scheduler) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Error("schedule tick failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick handles every schedule due at the scheduler's now and returns how many jobs
// this instance created.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	now := s.cfg.Now().UTC()
	if now.Sub(s.lastPurge) >= purgeEvery {
		if _, err := s.cfg.Store.DeleteSlotsBefore(ctx, now.Add(-slotRetention)); err != nil {
			return 0, fmt.Errorf("purge schedule slots: %w", err)
		}
		s.lastPurge = now
	}
	due, err := s.cfg.Store.DueSchedules(ctx, now, dueBatch)
	if err != nil {
		return 0, fmt.Errorf("due schedules: %w", err)
	}
	created := 0
	var errs []error
	for _, sch := range due {
		n, err := s.handle(ctx, sch, now)
		created += n
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule %s/%s: %w", sch.Workflow, sch.ID, err))
		}
	}
	return created, errors.Join(errs...)
}

// slotsToFire decides which slots from next up to now run: every on-time slot; or,
// when none is on time and the policy is run_once, the latest missed slot within
// the grace (the missed ones coalesce into it).
func slotsToFire(sch Schedule, next time.Time, now time.Time, after func(time.Time) *time.Time) []time.Time {
	window := MisfireThreshold
	if sch.MisfirePolicy == MisfireRunOnce && sch.MisfireGrace > window {
		window = sch.MisfireGrace
	}
	// Slots older than the window can never run: start at the first one inside it,
	// so a schedule idle for months costs no more than one window of slots.
	start := &next
	if now.Sub(next) > window {
		start = after(now.Add(-window - time.Second))
	}
	var onTime []time.Time
	var lastLate *time.Time
	for t := start; t != nil && !t.After(now); t = after(*t) {
		if now.Sub(*t) <= MisfireThreshold {
			onTime = append(onTime, *t)
		} else {
			late := *t
			lastLate = &late
		}
	}
	if len(onTime) == 0 && sch.MisfirePolicy == MisfireRunOnce && lastLate != nil && now.Sub(*lastLate) <= sch.MisfireGrace {
		return []time.Time{*lastLate}
	}
	return onTime
}

// handle fires the due slots of one schedule, then moves its NextAt past now. A slot
// whose job could not be stored for an internal reason leaves NextAt where it was,
// so the next tick tries it again.
func (s *Scheduler) handle(ctx context.Context, sch Schedule, now time.Time) (int, error) {
	cs, loc, err := compile(sch.Cron, sch.TimeZone)
	if err != nil { // validated at PUT; a zone database without the zone stops the schedule
		s.cfg.Logger.Error("schedule cannot be read; it is stopped", "workflow", sch.Workflow, "schedule", sch.ID, "err", err)
		_, err := s.cfg.Store.AdvanceSchedule(ctx, sch, nil)
		return 0, err
	}
	after := func(t time.Time) *time.Time { return nextAfter(cs, loc, t) }
	created := 0
	for _, slot := range slotsToFire(sch, *sch.NextAt, now, after) {
		ok, err := s.fire(ctx, sch, slot)
		if err != nil {
			return created, err
		}
		if ok {
			created++
		}
	}
	if _, err := s.cfg.Store.AdvanceSchedule(ctx, sch, after(now)); err != nil {
		return created, fmt.Errorf("advance: %w", err)
	}
	return created, nil
}

// SlotKey is the schedule_slots key of a schedule.
func SlotKey(ownerID, workflow, id string) string {
	return "schedule:" + ownerID + "/" + workflow + "/" + id
}

// fire claims one slot and, if this instance won it, submits the job.
func (s *Scheduler) fire(ctx context.Context, sch Schedule, slot time.Time) (bool, error) {
	key := SlotKey(sch.OwnerID, sch.Workflow, sch.ID)
	won, err := s.cfg.Store.ClaimSlot(ctx, key, slot, s.cfg.Instance)
	if err != nil || !won {
		return false, err
	}
	idem := key + "@" + slot.UTC().Format(time.RFC3339)
	j, _, err := s.cfg.Intake.Submit(ctx, principal(sch.OwnerID, "schedule"), jobs.Intake{
		Workflow: sch.Workflow, Payload: sch.Payload, IdempotencyKey: idem, BodyHash: jobs.HashBody([]byte(idem)),
	})
	log := s.cfg.Logger.With("workflow", sch.Workflow, "schedule", sch.ID, "slot", slot)
	switch code := levqor.ErrorCode(err); {
	case err == nil:
		log.Info("schedule fired", "job_id", j.ID)
		return true, nil
	case code == levqor.EInternal || code == levqor.EUnavailable:
		// Not the request's fault: give the slot back so the next tick tries again.
		if _, rerr := s.cfg.Store.ReleaseSlot(ctx, key, slot, s.cfg.Instance); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return false, fmt.Errorf("submit: %w", err)
	default:
		// The workflow is gone, the budget has no room, …: this slot cannot run, and
		// trying again would not help. The owner sees it in the log.
		log.Warn("schedule slot not run", "code", code, "err", err)
		return false, nil
	}
}
