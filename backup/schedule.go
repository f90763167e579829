package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/robfig/cron/v3"
)

// Clock is the time source of a Scheduler; tests inject a fake one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real time.
type SystemClock struct{}

func (SystemClock) Now() time.Time                         { return time.Now() }
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// maxSlotsInGrace bounds the walk over the slots inside the misfire grace (a schedule of
// every minute with a day's grace would otherwise walk 1,440 slots; the walk is cheap,
// the bound only keeps a silly setting from spinning).
const maxSlotsInGrace = 10_000

// Scheduler decides when backups run: at each slot of a cron schedule (UTC), and at
// start-up for a slot missed less than the misfire grace ago. It never runs a slot
// twice: a backup taken at or after a slot covers it.
type Scheduler struct {
	spec  cron.Schedule
	grace time.Duration
	clock Clock
}

// NewScheduler parses spec (standard 5-field cron, or a descriptor such as @daily; times
// are UTC unless the spec starts with CRON_TZ=) with the given misfire grace (0: a
// missed slot never runs late). clock nil means the system clock.
func NewScheduler(spec string, grace time.Duration, clock Clock) (*Scheduler, error) {
	s, err := ParseSchedule(spec)
	if err != nil {
		return nil, err
	}
	if grace < 0 {
		return nil, fmt.Errorf("backup misfire grace must not be negative, got %v", grace)
	}
	if clock == nil {
		clock = SystemClock{}
	}
	return &Scheduler{spec: s, grace: grace, clock: clock}, nil
}

// ParseSchedule parses a backup schedule: a standard 5-field cron spec or a descriptor
// such as @daily, in UTC unless it starts with CRON_TZ=. It refuses @every: its times
// count from whenever each process asks, not from the clock, so instances would not
// agree on a slot (each would claim and run its own) and every restart would find a
// "missed" one.
func ParseSchedule(spec string) (cron.Schedule, error) {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("backup schedule %q: %w", spec, err)
	}
	if _, every := s.(cron.ConstantDelaySchedule); every {
		return nil, fmt.Errorf("backup schedule %q: @every has no fixed slots; use a cron spec such as \"*/10 * * * *\"", spec)
	}
	return s, nil
}

// Due returns when the next backup should run, given now and the time of the newest
// backup (zero if none), and the slot it runs for: now itself when the latest slot at
// or before now lies within the grace and no backup covers it (a misfire), otherwise
// the next slot after now.
func (s *Scheduler) Due(now, last time.Time) (at, slot time.Time) {
	now = now.UTC()
	// The earliest slot inside the grace, then the latest one not after now.
	missed := s.spec.Next(now.Add(-s.grace - time.Second))
	if !missed.After(now) {
		for range maxSlotsInGrace {
			n := s.spec.Next(missed)
			if n.After(now) || n.IsZero() {
				break
			}
			missed = n
		}
		if last.Before(missed) {
			return now, missed
		}
	}
	next := s.spec.Next(now)
	return next, next
}

// Loop runs job at every due time until ctx ends. last is the time of the newest
// backup when it starts (zero: none). job returns the time its backup recorded (a
// failed job returns the zero time, and the next slot runs as usual).
func (s *Scheduler) Loop(ctx context.Context, last time.Time, job func(ctx context.Context, slot time.Time) time.Time) {
	for {
		at, slot := s.Due(s.clock.Now(), last)
		if at.IsZero() {
			return // a schedule that never fires again (cron finds none within five years)
		}
		if wait := at.Sub(s.clock.Now()); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.clock.After(wait):
			}
		}
		if ctx.Err() != nil {
			return
		}
		// A failed job counts as having covered its slot: it is not retried in a loop,
		// the next slot runs as usual.
		t := job(ctx, slot)
		if t.IsZero() {
			t = slot
		}
		last = t
	}
}

// Options configure Run.
type Options struct {
	DBPath   string        // the SQLite database
	Dir      string        // where backups go (the data dir's backups/)
	Keep     int           // retention count (DefaultKeep when 0)
	MaxAge   time.Duration // retention age (0: none); see Prune
	Schedule string        // cron spec (DefaultSchedule when "")
	Grace    time.Duration // misfire grace (DefaultMisfireGrace when 0; negative: none)
	Clock    Clock         // nil: the system clock
	Logger   *slog.Logger  // nil: slog.Default()
	// OnResult, when set, sees every scheduled backup's outcome (for metrics).
	OnResult func(Result, error)
	// Claim, when set, is asked before each slot runs: false means another instance
	// took the slot (on PostgreSQL the slot runs once per cluster), and this one skips
	// it. nil: every slot runs here.
	Claim func(ctx context.Context, slot time.Time) (bool, error)
	// Take, when set, takes a backup into dir instead of the SQLite copy of DBPath
	// (PostgreSQL: pg_dump); the start-up verification of the newest copy is then skipped.
	Take func(ctx context.Context, dir string, now time.Time) (Result, error)
}

// Run verifies the newest backup (logging the result), then takes a backup of the
// SQLite database at every slot of the schedule and applies retention, until ctx ends.
// It returns an error only for invalid options.
func Run(ctx context.Context, o Options) error {
	if o.Keep == 0 {
		o.Keep = DefaultKeep
	}
	if o.Schedule == "" {
		o.Schedule = DefaultSchedule
	}
	switch {
	case o.Grace == 0:
		o.Grace = DefaultMisfireGrace
	case o.Grace < 0:
		o.Grace = 0
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Keep < 1 {
		return fmt.Errorf("backup: keep must be at least 1, got %d", o.Keep)
	}
	s, err := NewScheduler(o.Schedule, o.Grace, o.Clock)
	if err != nil {
		return err
	}
	log := o.Logger.With("component", "backup")

	take := o.Take
	if take == nil {
		take = func(ctx context.Context, dir string, now time.Time) (Result, error) {
			return SQLite(ctx, o.DBPath, dir, now)
		}
	}
	latest, err := VerifyLatest(ctx, o.Dir, s.clock.Now())
	switch {
	case o.Take != nil:
	case errors.Is(err, ErrNoBackup):
		log.Info("no backup yet", "dir", o.Dir)
	case err != nil:
		log.Error("newest backup failed verification", "file", latest.Backup.Path, "error", err.Error())
	default:
		log.Info("newest backup verified", "file", latest.Backup.Path, "age", latest.Age.Round(time.Second).String(),
			"schema_version", latest.Info.SchemaVersion, "bytes", latest.Info.Size, "took_ms", latest.Took.Milliseconds())
	}
	var last time.Time
	if all, err := List(o.Dir); err == nil && len(all) > 0 {
		last = all[0].Time
	}

	s.Loop(ctx, last, func(ctx context.Context, slot time.Time) time.Time {
		if o.Claim != nil {
			mine, err := o.Claim(ctx, slot)
			if err != nil {
				log.Error("claim backup slot", "slot", slot.Format(time.RFC3339), "error", err.Error())
				return time.Time{}
			}
			if !mine {
				log.Info("backup slot taken by another instance", "slot", slot.Format(time.RFC3339))
				return slot
			}
		}
		now := s.clock.Now()
		res, err := take(ctx, o.Dir, now)
		if o.OnResult != nil {
			o.OnResult(res, err)
		}
		if err != nil {
			log.Error("backup failed", "slot", slot.Format(time.RFC3339), "error", err.Error())
			return time.Time{}
		}
		log.Info("backup taken", "slot", slot.Format(time.RFC3339), "file", filepath.Base(res.Path),
			"bytes", res.Size, "took_ms", res.Took.Milliseconds())
		removed, err := Prune(o.Dir, o.Keep, o.MaxAge, now)
		if err != nil {
			log.Error("backup retention", "error", err.Error())
		}
		if len(removed) > 0 {
			log.Info("old backups removed", "count", len(removed))
		}
		return now
	})
	return nil
}
