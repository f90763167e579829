package triggers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
)

// Limits of schedules.
const (
	// MaxSchedulesPerWorkflow bounds the schedules of one workflow (and a list's length).
	MaxSchedulesPerWorkflow = 20
	// DefaultMisfireGrace is how late a missed slot may still run under run_once.
	DefaultMisfireGrace = time.Hour
	// MaxMisfireGrace bounds misfire_grace_s (7 days): slots older than this are never run.
	MaxMisfireGrace = 7 * 24 * time.Hour
	// NextRuns is how many upcoming run times a schedule shows.
	NextRuns = 5
)

// ScheduleInput is a schedule as PUT asks for it.
type ScheduleInput struct {
	Cron          string
	TimeZone      string // "" is UTC
	Payload       json.RawMessage
	Enabled       bool
	MisfirePolicy string        // "" is skip
	MisfireGrace  time.Duration // 0 is DefaultMisfireGrace
}

// parser reads the five standard fields (minute hour day-of-month month day-of-week)
// and the descriptors (@hourly, @daily, …). Seconds are not offered: a minute is
// the finest slot, which keeps the slot table and the scheduler's work bounded.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func unprocessable(pointer, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &levqor.Error{Code: levqor.EUnprocessable, Message: msg, Fields: []levqor.FieldError{{Pointer: pointer, Detail: msg}}}
}

// compile parses a schedule's expression in its time zone.
func compile(expr, zone string) (cron.Schedule, *time.Location, error) {
	if zone == "" {
		zone = "UTC"
	}
	// time.LoadLocation also accepts "Local" and file paths relative to the zoneinfo
	// root; only IANA names are meant.
	if zone == "Local" || strings.ContainsAny(zone, `.\`) || strings.HasPrefix(zone, "/") {
		return nil, nil, unprocessable("/time_zone", "time_zone %q is not an IANA time zone name.", zone)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, nil, unprocessable("/time_zone", "time_zone %q is not an IANA time zone name.", zone)
	}
	trimmed := strings.TrimSpace(expr)
	// The time zone has its own field; "@every" is an interval, not a calendar slot.
	if strings.HasPrefix(trimmed, "TZ=") || strings.HasPrefix(trimmed, "CRON_TZ=") || strings.HasPrefix(trimmed, "@every") {
		return nil, nil, unprocessable("/cron", "cron must be five fields or a descriptor such as @daily; set the zone in time_zone.")
	}
	sched, err := parser.Parse(trimmed)
	if err != nil {
		return nil, nil, unprocessable("/cron", "cron is not a valid expression: %s.", err.Error())
	}
	return sched, loc, nil
}

// nextAfter is the first slot of sched strictly after t, in UTC; nil when there is none.
func nextAfter(sched cron.Schedule, loc *time.Location, t time.Time) *time.Time {
	n := sched.Next(t.In(loc))
	if n.IsZero() {
		return nil
	}
	n = n.UTC()
	return &n
}

// Upcoming returns up to n run times of s after now.
func Upcoming(s Schedule, now time.Time, n int) []time.Time {
	sched, loc, err := compile(s.Cron, s.TimeZone)
	if err != nil {
		return nil
	}
	var out []time.Time
	for t := now; len(out) < n; {
		next := nextAfter(sched, loc, t)
		if next == nil {
			break
		}
		out = append(out, *next)
		t = *next
	}
	return out
}

// PutSchedule creates or replaces a schedule of the principal's workflow. Slots
// before now never fire: a new, changed or re-enabled schedule starts from now.
func (s *Service) PutSchedule(ctx context.Context, p keys.Principal, workflow, id string, in ScheduleInput) (Schedule, error) {
	sched, loc, err := compile(in.Cron, in.TimeZone)
	if err != nil {
		return Schedule{}, err
	}
	policy := in.MisfirePolicy
	if policy == "" {
		policy = MisfireSkip
	}
	if policy != MisfireSkip && policy != MisfireRunOnce {
		return Schedule{}, unprocessable("/misfire_policy", "misfire_policy must be skip or run_once.")
	}
	grace := in.MisfireGrace
	if grace == 0 {
		grace = DefaultMisfireGrace
	}
	if grace < 0 || grace > MaxMisfireGrace {
		return Schedule{}, unprocessable("/misfire_grace_s", "misfire_grace_s must be between 1 and %d.", int(MaxMisfireGrace/time.Second))
	}
	payload := in.Payload
	if len(payload) == 0 {
		payload = json.RawMessage("{}")
	}
	if len(payload) > jobs.MaxPayloadBytes {
		return Schedule{}, unprocessable("/payload", "payload is larger than %d bytes serialised.", jobs.MaxPayloadBytes)
	}
	if _, err := s.intake.GetWorkflow(ctx, p, workflow); err != nil {
		return Schedule{}, err
	}
	if _, err := s.store.GetSchedule(ctx, p.OwnerID, workflow, id); levqor.ErrorCode(err) == levqor.ENotFound {
		list, err := s.store.ListSchedules(ctx, p.OwnerID, workflow, MaxSchedulesPerWorkflow)
		if err != nil {
			return Schedule{}, err
		}
		if len(list) >= MaxSchedulesPerWorkflow {
			return Schedule{}, levqor.Errorf(levqor.EConflict, "Workflow %q already has %d schedules, the most it may have.", workflow, MaxSchedulesPerWorkflow)
		}
	} else if err != nil {
		return Schedule{}, err
	}
	now := s.now().UTC()
	return s.store.PutSchedule(ctx, Schedule{
		OwnerID: p.OwnerID, Workflow: workflow, ID: id, Cron: strings.TrimSpace(in.Cron), TimeZone: loc.String(),
		Payload: payload, Enabled: in.Enabled, MisfirePolicy: policy, MisfireGrace: grace,
		NextAt: nextAfter(sched, loc, now), CreatedAt: now, UpdatedAt: now,
	})
}

// GetSchedule returns one schedule of the principal's workflow.
func (s *Service) GetSchedule(ctx context.Context, p keys.Principal, workflow, id string) (Schedule, error) {
	return s.store.GetSchedule(ctx, p.OwnerID, workflow, id)
}

// ListSchedules returns the schedules of the principal's workflow, by id.
func (s *Service) ListSchedules(ctx context.Context, p keys.Principal, workflow string) ([]Schedule, error) {
	if _, err := s.intake.GetWorkflow(ctx, p, workflow); err != nil {
		return nil, err
	}
	return s.store.ListSchedules(ctx, p.OwnerID, workflow, MaxSchedulesPerWorkflow)
}

// DeleteSchedule deletes one schedule; slots it already fired keep their jobs.
func (s *Service) DeleteSchedule(ctx context.Context, p keys.Principal, workflow, id string) error {
	return s.store.DeleteSchedule(ctx, p.OwnerID, workflow, id)
}

// Now is the service's clock (the scheduler and the API share it).
func (s *Service) Now() time.Time { return s.now() }
