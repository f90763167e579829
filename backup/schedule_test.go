package backup_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/backup"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestDue: the next-slot computation and the misfire decision at start-up.
func TestDue(t *testing.T) {
	cases := []struct {
		name      string
		spec      string
		grace     time.Duration
		now, last string // last "" means no backup yet
		wantAt    string
		wantSlot  string
	}{
		{"before the slot", "0 0 * * *", 15 * time.Minute, "2025-01-01T23:59:00Z", "", "2025-01-02T00:00:00Z", "2025-01-02T00:00:00Z"},
		{"missed inside the grace runs now", "0 0 * * *", 15 * time.Minute, "2025-01-02T00:10:00Z", "", "2025-01-02T00:10:00Z", "2025-01-02T00:00:00Z"},
		{"missed exactly at the grace runs now", "0 0 * * *", 15 * time.Minute, "2025-01-02T00:15:00Z", "", "2025-01-02T00:15:00Z", "2025-01-02T00:00:00Z"},
		{"missed beyond the grace waits", "0 0 * * *", 15 * time.Minute, "2025-01-02T00:16:00Z", "", "2025-01-03T00:00:00Z", "2025-01-03T00:00:00Z"},
		{"started hours later waits", "0 0 * * *", 15 * time.Minute, "2025-01-02T09:00:00Z", "", "2025-01-03T00:00:00Z", "2025-01-03T00:00:00Z"},
		{"slot already covered", "0 0 * * *", 15 * time.Minute, "2025-01-02T00:10:00Z", "2025-01-02T00:00:03Z", "2025-01-03T00:00:00Z", "2025-01-03T00:00:00Z"},
		{"covered only by an older backup", "0 0 * * *", 15 * time.Minute, "2025-01-02T00:10:00Z", "2025-01-01T00:00:03Z", "2025-01-02T00:10:00Z", "2025-01-02T00:00:00Z"},
		{"no grace", "0 0 * * *", 0, "2025-01-02T00:00:30Z", "", "2025-01-03T00:00:00Z", "2025-01-03T00:00:00Z"},
		{"exactly on the slot", "0 0 * * *", 15 * time.Minute, "2025-01-02T00:00:00Z", "", "2025-01-02T00:00:00Z", "2025-01-02T00:00:00Z"},
		{"latest of several missed slots", "*/5 * * * *", 15 * time.Minute, "2025-01-02T10:12:00Z", "", "2025-01-02T10:12:00Z", "2025-01-02T10:10:00Z"},
		{"hourly, next", "0 * * * *", 15 * time.Minute, "2025-01-02T10:30:00Z", "", "2025-01-02T11:00:00Z", "2025-01-02T11:00:00Z"},
		{"weekly (Sunday 03:30)", "30 3 * * 0", time.Hour, "2025-01-01T12:00:00Z", "", "2025-01-05T03:30:00Z", "2025-01-05T03:30:00Z"},
		{"UTC whatever the caller's zone", "0 0 * * *", 15 * time.Minute, "2025-01-02T01:05:00+01:00", "", "2025-01-02T00:05:00Z", "2025-01-02T00:00:00Z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := backup.NewScheduler(c.spec, c.grace, nil)
			if err != nil {
				t.Fatal(err)
			}
			var last time.Time
			if c.last != "" {
				last = at(c.last)
			}
			gotAt, gotSlot := s.Due(at(c.now), last)
			if !gotAt.Equal(at(c.wantAt)) || !gotSlot.Equal(at(c.wantSlot)) {
				t.Errorf("Due(%s) = at %v slot %v; want at %s slot %s", c.now, gotAt, gotSlot, c.wantAt, c.wantSlot)
			}
			if gotAt.Location() != time.UTC {
				t.Errorf("due time in %v, want UTC", gotAt.Location())
			}
		})
	}
}

// TestNewSchedulerRejects: malformed specs, and @every, whose times count from
// whenever a process asks, so instances could not share a slot.
func TestNewSchedulerRejects(t *testing.T) {
	for _, spec := range []string{"", "every day", "0 0 * *", "61 0 * * *", "0 0 0 * * *", "@every 1m", "CRON_TZ=Europe/Paris @every 1h"} {
		if _, err := backup.NewScheduler(spec, time.Minute, nil); err == nil {
			t.Errorf("spec %q accepted", spec)
		}
	}
	for _, spec := range []string{"@daily", "@hourly", "CRON_TZ=Europe/Paris 0 3 * * *", "*/10 * * * *"} {
		if _, err := backup.NewScheduler(spec, time.Minute, nil); err != nil {
			t.Errorf("spec %q: %v", spec, err)
		}
	}
	if _, err := backup.NewScheduler("0 0 * * *", -time.Second, nil); err == nil {
		t.Error("negative grace accepted")
	}
}

// fakeClock advances only when the test fires the timer a Loop waits on.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan wait
}

type wait struct {
	d    time.Duration
	fire chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, waits: make(chan wait, 1)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	w := wait{d: d, fire: make(chan time.Time, 1)}
	c.waits <- w
	return w.fire
}

// next waits for the loop to ask for a timer, and returns how long it asked for.
func (c *fakeClock) next(t *testing.T) wait {
	t.Helper()
	select {
	case w := <-c.waits:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("the loop never waited")
		return wait{}
	}
}

// advance moves the clock on by w's duration and fires it.
func (c *fakeClock) advance(w wait) {
	c.mu.Lock()
	c.now = c.now.Add(w.d)
	now := c.now
	c.mu.Unlock()
	w.fire <- now
}

// TestLoopMisfire drives Loop with a fake clock: a start inside the grace runs the
// missed slot at once, then waits for the next; a start outside the grace waits.
func TestLoopMisfire(t *testing.T) {
	cases := []struct {
		name      string
		start     string
		wantFirst string // the slot of the first run
		wantWait  time.Duration
	}{
		{"inside the grace", "2025-01-02T00:10:00Z", "2025-01-02T00:00:00Z", 0},
		{"outside the grace", "2025-01-02T00:20:00Z", "2025-01-03T00:00:00Z", 23*time.Hour + 40*time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := newFakeClock(at(c.start))
			s, err := backup.NewScheduler(backup.DefaultSchedule, backup.DefaultMisfireGrace, clock)
			if err != nil {
				t.Fatal(err)
			}
			type run struct{ slot, now time.Time }
			runs := make(chan run, 10)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() {
				defer close(done)
				s.Loop(ctx, time.Time{}, func(ctx context.Context, slot time.Time) time.Time {
					runs <- run{slot, clock.Now()}
					return clock.Now()
				})
			}()
			if c.wantWait > 0 {
				w := clock.next(t)
				if w.d != c.wantWait {
					t.Fatalf("first wait %v, want %v", w.d, c.wantWait)
				}
				select {
				case r := <-runs:
					t.Fatalf("ran %v before the wait ended", r.slot)
				default:
				}
				clock.advance(w)
			}
			r := <-runs
			if !r.slot.Equal(at(c.wantFirst)) {
				t.Errorf("first run for slot %v, want %s", r.slot, c.wantFirst)
			}
			// Then the following slots, a day apart, each exactly once.
			for i := range 2 {
				w := clock.next(t)
				want := at(c.wantFirst).Add(time.Duration(i+1) * 24 * time.Hour)
				if got := clock.Now().Add(w.d); !got.Equal(want) {
					t.Fatalf("wait until %v, want the next slot %v", got, want)
				}
				clock.advance(w)
				if r := <-runs; !r.slot.Equal(want) || !r.now.Equal(want) {
					t.Errorf("run %+v, want slot %v", r, want)
				}
			}
			clock.next(t) // waiting for the fourth slot
			cancel()
			<-done
		})
	}
}

// TestRunTakesMissedBackup: Run with a fake clock started inside the grace logs the
// start-up verification, takes the missed backup into the directory and prunes.
func TestRunTakesMissedBackup(t *testing.T) {
	db, path := openStore(t)
	insertJobs(t, db, 0, 5)
	defer db.Close()
	dir := filepath.Join(filepath.Dir(path), "backups")
	// An older backup: retention (keep 1) must remove it once the new one exists.
	if _, err := backup.SQLite(t.Context(), path, dir, at("2025-01-01T00:00:00Z")); err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(at("2025-01-02T00:05:00Z"))
	var logs bytes.Buffer
	var mu sync.Mutex
	results := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- backup.Run(ctx, backup.Options{
			DBPath: path, Dir: dir, Keep: 1, Clock: clock,
			Logger:   slog.New(slog.NewJSONHandler(&lockedBuffer{mu: &mu, b: &logs}, nil)),
			OnResult: func(_ backup.Result, err error) { results <- err },
		})
	}()
	if err := <-results; err != nil {
		t.Fatal(err)
	}
	clock.next(t) // waiting for the next slot
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	all, err := backup.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || !all[0].Time.Equal(at("2025-01-02T00:05:00Z")) {
		t.Errorf("backups after the run: %+v, want only the one of 00:05", all)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	for _, want := range []string{`"msg":"newest backup verified"`, `"msg":"backup taken"`, `"msg":"old backups removed"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

// TestRunClaimOncePerCluster: two instances share one claim (as the schedule-slot row
// on PostgreSQL): the missed slot is backed up by exactly one of them, and a claim
// error skips the slot without a backup.
func TestRunClaimOncePerCluster(t *testing.T) {
	db, path := openStore(t)
	insertJobs(t, db, 0, 3)
	defer db.Close()
	var mu sync.Mutex
	claimed := map[time.Time]int{}
	claim := func(instance int) func(context.Context, time.Time) (bool, error) {
		return func(_ context.Context, slot time.Time) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			if _, ok := claimed[slot]; ok {
				return false, nil
			}
			claimed[slot] = instance
			return true, nil
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var dirs []string
	var clocks []*fakeClock
	done := make(chan error, 3)
	for i := range 3 {
		dir := filepath.Join(t.TempDir(), "backups")
		clock := newFakeClock(at("2025-01-02T00:05:00Z"))
		dirs, clocks = append(dirs, dir), append(clocks, clock)
		c := claim(i)
		if i == 2 {
			c = func(context.Context, time.Time) (bool, error) { return false, errors.New("database down") }
		}
		go func() {
			done <- backup.Run(ctx, backup.Options{DBPath: path, Dir: dir, Clock: clock, Claim: c,
				Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
		}()
	}
	for _, c := range clocks {
		c.next(t) // each has dealt with the missed slot and waits for the next
	}
	cancel()
	for range clocks {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for i, dir := range dirs {
		all, _ := backup.List(dir)
		total += len(all)
		if len(all) == 1 && claimed[at("2025-01-02T00:00:00Z")] != i {
			t.Errorf("instance %d backed up without holding the claim", i)
		}
	}
	if total != 1 || len(claimed) != 1 {
		t.Errorf("%d backups for %d claimed slots; want exactly 1 (once per cluster)", total, len(claimed))
	}
}

// TestVerifyLatest: none, a good newest backup, and a damaged newest backup.
func TestVerifyLatest(t *testing.T) {
	dir := t.TempDir()
	now := at("2025-01-02T12:00:00Z")
	if _, err := backup.VerifyLatest(t.Context(), dir, now); err != backup.ErrNoBackup {
		t.Errorf("empty dir: %v, want ErrNoBackup", err)
	}
	db, path := openStore(t)
	insertJobs(t, db, 0, 5)
	db.Close()
	if _, err := backup.SQLite(t.Context(), path, dir, at("2025-01-02T00:00:00Z")); err != nil {
		t.Fatal(err)
	}
	r, err := backup.VerifyLatest(t.Context(), dir, now)
	if err != nil || r.Age != 12*time.Hour || r.Info.SchemaVersion < 1 {
		t.Errorf("good backup: %+v, %v", r, err)
	}
	// A newer, damaged one is what gets checked, and fails.
	if err := writeFile(filepath.Join(dir, backup.Name(at("2025-01-02T06:00:00Z"), backup.SQLiteExt)), "not a database, garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage"); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.VerifyLatest(t.Context(), dir, now); err == nil {
		t.Error("a damaged newest backup passed")
	}
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
