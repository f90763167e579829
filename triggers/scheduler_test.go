package triggers_test

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/store/postgres"
	"github.com/levqor/levqor/store/storetest"
	"github.com/levqor/levqor/triggers"
)

// t0 is a Monday, 10:02 UTC: the test schedules start here.
var t0 = time.Date(2026, 1, 5, 10, 2, 0, 0, time.UTC)

func putSchedule(t *testing.T, b *bundle, id string, in triggers.ScheduleInput) triggers.Schedule {
	t.Helper()
	s, err := b.Triggers.PutSchedule(t.Context(), b.Owner, "sync", id, in)
	if err != nil {
		t.Fatalf("PutSchedule %s: %v", id, err)
	}
	return s
}

func tick(t *testing.T, s *triggers.Scheduler) int {
	t.Helper()
	n, err := s.Tick(t.Context())
	if err != nil {
		t.Fatalf("Tick: %v", err)
	}
	return n
}

// A schedule fires once per slot, at the slot (not before), with its payload, and
// a second tick in the same slot adds nothing.
func TestSchedulerFiresEachSlotOnce(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, e.open(t), t0)
			putSchedule(t, b, "five", triggers.ScheduleInput{Cron: "*/5 * * * *", Enabled: true, Payload: json.RawMessage(`{"msg":"hi"}`)})
			sch := b.scheduler("a")
			steps := []struct {
				at   time.Time
				want int
			}{
				{t0.Add(2*time.Minute + 59*time.Second), 0}, // 10:04:59, before the 10:05 slot
				{t0.Add(3 * time.Minute), 1},                // 10:05:00
				{t0.Add(3*time.Minute + 30*time.Second), 0}, // same slot again
				{t0.Add(8*time.Minute + 10*time.Second), 1}, // 10:10:10
			}
			for _, s := range steps {
				b.Clock.Set(s.at)
				if got := tick(t, sch); got != s.want {
					t.Fatalf("tick at %s created %d jobs, want %d", s.at.Format(time.TimeOnly), got, s.want)
				}
			}
			list := b.jobs(t)
			if len(list) != 2 {
				t.Fatalf("%d jobs, want 2", len(list))
			}
			var payload map[string]string
			if err := json.Unmarshal(list[0].Payload, &payload); err != nil || payload["msg"] != "hi" {
				t.Errorf("job payload %s, want the schedule's", list[0].Payload)
			}
			if list[0].OwnerID != "usr_ann" || list[0].Workflow != "sync" || len(list[0].Steps) != 1 {
				t.Errorf("job %+v, want usr_ann's sync with its step", list[0])
			}
		})
	}
}

// Disabled schedules do not fire, and re-enabling does not fire the slots missed
// while disabled.
func TestSchedulerSkipsDisabled(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, e.open(t), t0)
			in := triggers.ScheduleInput{Cron: "* * * * *", Enabled: false, MisfirePolicy: triggers.MisfireRunOnce}
			putSchedule(t, b, "off", in)
			sch := b.scheduler("a")
			for m := 1; m <= 3; m++ {
				b.Clock.Set(t0.Add(time.Duration(m) * time.Minute))
				if got := tick(t, sch); got != 0 {
					t.Fatalf("disabled schedule created %d jobs at +%dm", got, m)
				}
			}
			in.Enabled = true
			putSchedule(t, b, "off", in) // at +3m: slots before it never run
			b.Clock.Set(t0.Add(3*time.Minute + 30*time.Second))
			if got := tick(t, sch); got != 0 {
				t.Fatalf("re-enabled schedule fired %d missed slots", got)
			}
			b.Clock.Set(t0.Add(4 * time.Minute))
			if got := tick(t, sch); got != 1 {
				t.Fatalf("re-enabled schedule created %d jobs at its next slot, want 1", got)
			}
		})
	}
}

// After downtime, skip drops the missed slots; run_once runs the latest one once if
// it is within the grace, and nothing if it is not.
func TestSchedulerMisfire(t *testing.T) {
	cases := []struct {
		name   string
		policy string
		grace  time.Duration
		want   int
	}{
		{"skip", triggers.MisfireSkip, 0, 0},
		{"run_once within grace", triggers.MisfireRunOnce, time.Hour, 1},
		{"run_once outside grace", triggers.MisfireRunOnce, 10 * time.Minute, 0},
	}
	for _, e := range engines {
		for _, c := range cases {
			t.Run(e.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, e.open(t), t0) // 10:02
				putSchedule(t, b, "hourly", triggers.ScheduleInput{Cron: "0 * * * *", Enabled: true, MisfirePolicy: c.policy, MisfireGrace: c.grace})
				// Down from 10:02 to 15:30: slots 11:00 … 15:00 missed, the latest by 30 minutes.
				b.Clock.Set(t0.Add(5*time.Hour + 28*time.Minute))
				sch := b.scheduler("a")
				if got := tick(t, sch); got != c.want {
					t.Fatalf("tick after downtime created %d jobs, want %d", got, c.want)
				}
				// Nothing more until the next slot, which runs whatever the policy.
				b.Clock.Set(t0.Add(5*time.Hour + 50*time.Minute))
				if got := tick(t, sch); got != 0 {
					t.Fatalf("second tick created %d jobs, want 0", got)
				}
				b.Clock.Set(t0.Add(5*time.Hour + 58*time.Minute + 20*time.Second)) // 16:00:20
				if got := tick(t, sch); got != 1 {
					t.Fatalf("on-time slot created %d jobs, want 1", got)
				}
				if n := len(b.jobs(t)); n != c.want+1 {
					t.Fatalf("%d jobs stored, want %d", n, c.want+1)
				}
			})
		}
	}
}

// Slots are read in the schedule's time zone.
func TestScheduleTimeZone(t *testing.T) {
	b := setup(t, storetest.OpenSQLite(t), t0)
	s := putSchedule(t, b, "kathmandu", triggers.ScheduleInput{Cron: "0 9 * * *", TimeZone: "Asia/Kathmandu", Enabled: true})
	next := triggers.Upcoming(s, t0, 2)
	want := []time.Time{time.Date(2026, 1, 6, 3, 15, 0, 0, time.UTC), time.Date(2026, 1, 7, 3, 15, 0, 0, time.UTC)}
	if len(next) != 2 || !next[0].Equal(want[0]) || !next[1].Equal(want[1]) {
		t.Fatalf("Upcoming = %v, want %v (09:00 at +05:45)", next, want)
	}
}

func TestPutScheduleRefuses(t *testing.T) {
	b := setup(t, storetest.OpenSQLite(t), t0)
	cases := []struct {
		name    string
		in      triggers.ScheduleInput
		pointer string
	}{
		{"bad cron", triggers.ScheduleInput{Cron: "61 * * * *"}, "/cron"},
		{"six fields", triggers.ScheduleInput{Cron: "0 0 * * * *"}, "/cron"},
		{"every", triggers.ScheduleInput{Cron: "@every 1s"}, "/cron"},
		{"tz prefix", triggers.ScheduleInput{Cron: "TZ=UTC 0 * * * *"}, "/cron"},
		{"unknown zone", triggers.ScheduleInput{Cron: "0 * * * *", TimeZone: "Mars/Olympus"}, "/time_zone"},
		{"local", triggers.ScheduleInput{Cron: "0 * * * *", TimeZone: "Local"}, "/time_zone"},
		{"path", triggers.ScheduleInput{Cron: "0 * * * *", TimeZone: "../../etc/passwd"}, "/time_zone"},
		{"policy", triggers.ScheduleInput{Cron: "0 * * * *", MisfirePolicy: "always"}, "/misfire_policy"},
		{"grace", triggers.ScheduleInput{Cron: "0 * * * *", MisfireGrace: 8 * 24 * time.Hour}, "/misfire_grace_s"},
	}
	for _, c := range cases {
		_, err := b.Triggers.PutSchedule(t.Context(), b.Owner, "sync", "x", c.in)
		var le *levqor.Error
		if !errors.As(err, &le) || le.Code != levqor.EUnprocessable || len(le.Fields) != 1 || le.Fields[0].Pointer != c.pointer {
			t.Errorf("%s: err %v, want unprocessable at %s", c.name, err, c.pointer)
		}
	}
	if _, err := b.Triggers.PutSchedule(t.Context(), b.Owner, "nope", "x", triggers.ScheduleInput{Cron: "0 * * * *"}); levqor.ErrorCode(err) != levqor.ENotFound {
		t.Errorf("schedule of a missing workflow: %v, want not_found", err)
	}
	for i := range triggers.MaxSchedulesPerWorkflow {
		putSchedule(t, b, "s"+string(rune('a'+i)), triggers.ScheduleInput{Cron: "0 * * * *", Enabled: true})
	}
	if _, err := b.Triggers.PutSchedule(t.Context(), b.Owner, "sync", "one-more", triggers.ScheduleInput{Cron: "0 * * * *"}); levqor.ErrorCode(err) != levqor.EConflict {
		t.Errorf("schedule %d: %v, want conflict", triggers.MaxSchedulesPerWorkflow+1, err)
	}
	// Replacing an existing one is still allowed at the limit.
	putSchedule(t, b, "sa", triggers.ScheduleInput{Cron: "5 * * * *", Enabled: true})
}

// Two servers on one PostgreSQL database, each with its own pool and scheduler,
// ticking at the same instants: every slot fires exactly once. Then, with the
// claims purged (as if claimed twice), the slot's idempotency key still makes no
// second job.
func TestSchedulerOncePerClusterOnPostgres(t *testing.T) {
	url := storetest.PostgresURL(t)
	open := func() *bundle {
		db, err := postgres.Open(t.Context(), url)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		return &bundle{Store: db}
	}
	first := open()
	a := setup(t, first.Store, t0)
	second := open()
	b := setup(t, second.Store, t0) // saves the same workflow again: harmless
	b.Clock = a.Clock
	putSchedule(t, a, "minutely", triggers.ScheduleInput{Cron: "* * * * *", Enabled: true})
	sa := triggers.NewScheduler(triggers.SchedulerConfig{Store: a.Store, Intake: a.Jobs, Instance: "server-a", Now: a.Clock.Now})
	sb := triggers.NewScheduler(triggers.SchedulerConfig{Store: b.Store, Intake: b.Jobs, Instance: "server-b", Now: a.Clock.Now})
	const slots = 20
	var mu sync.Mutex
	fired := 0 // jobs the schedulers say they submitted after winning a claim
	for m := 1; m <= slots; m++ {
		a.Clock.Set(t0.Add(time.Duration(m)*time.Minute - 2*time.Minute)) // 10:00+m
		var wg sync.WaitGroup
		for _, s := range []*triggers.Scheduler{sa, sb} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := s.Tick(t.Context())
				if err != nil {
					t.Errorf("tick: %v", err)
				}
				mu.Lock()
				fired += n
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	list := a.jobs(t)
	// Slots 10:03 … 10:20 (the schedule was saved at 10:02).
	if len(list) != slots-2 {
		t.Fatalf("%d jobs for %d slots with two schedulers, want exactly one each", len(list), slots-2)
	}
	if fired != slots-2 {
		t.Fatalf("the schedulers won %d claims for %d slots, want exactly one each", fired, slots-2)
	}

	// A double claim: forget every claim and move next_at back one slot.
	if _, err := a.Store.DeleteSlotsBefore(t.Context(), t0.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	s, err := a.Store.GetSchedule(t.Context(), "usr_ann", "sync", "minutely")
	if err != nil {
		t.Fatal(err)
	}
	back := s.NextAt.Add(-time.Minute)
	if ok, err := a.Store.AdvanceSchedule(t.Context(), s, &back); err != nil || !ok {
		t.Fatalf("move next_at back: %v %v", ok, err)
	}
	if _, err := sa.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(a.jobs(t)); n != slots-2 {
		t.Fatalf("%d jobs after a slot was claimed twice, want still %d", n, slots-2)
	}
}
