package triggers_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/store/storetest"
	"github.com/levqor/levqor/triggers"
)

// A trigger's secret is stored only sealed, bound to its owner and id: the row's
// bytes do not hold it, and they do not open as another trigger's.
func TestTriggerSecretSealed(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, e.open(t), time.Now())
			tr, err := b.Triggers.CreateTrigger(t.Context(), b.Owner, "sync")
			if err != nil {
				t.Fatalf("CreateTrigger: %v", err)
			}
			if !strings.HasPrefix(tr.Secret, "trsec_") || len(tr.Secret) < 40 {
				t.Fatalf("secret %q", tr.Secret)
			}
			row, err := b.Store.GetTrigger(t.Context(), tr.ID)
			if err != nil {
				t.Fatal(err)
			}
			secretPart := strings.TrimPrefix(tr.Secret, "trsec_")
			if len(row.Sealed) == 0 || strings.Contains(string(row.Sealed), secretPart) {
				t.Fatalf("stored row holds the secret in clear (%d bytes)", len(row.Sealed))
			}
			creds := credentials.NewService(b.Store, testKey, nil)
			if got, err := creds.OpenTriggerSecret(b.Owner.OwnerID, tr.ID, row.Sealed); err != nil || got != tr.Secret {
				t.Fatalf("OpenTriggerSecret: %v", err)
			}
			if _, err := creds.OpenTriggerSecret(b.Owner.OwnerID, "trg_other", row.Sealed); !errors.Is(err, credentials.ErrUndecryptable) {
				t.Errorf("sealed secret opened as another trigger's: %v", err)
			}
			if _, err := creds.OpenTriggerSecret("usr_bob", tr.ID, row.Sealed); !errors.Is(err, credentials.ErrUndecryptable) {
				t.Errorf("sealed secret opened as another owner's: %v", err)
			}
		})
	}
}

// flakyIntake fails the first fail submissions as a database outage would.
type flakyIntake struct {
	triggers.Intake
	fail int
}

func (f *flakyIntake) Submit(ctx context.Context, p keys.Principal, in jobs.Intake) (jobs.Job, bool, error) {
	if f.fail > 0 {
		f.fail--
		return jobs.Job{}, false, errors.New("database is locked")
	}
	return f.Intake.Submit(ctx, p, in)
}

// A slot whose job could not be stored for an internal reason is released and
// tried again at the next tick; one that can never run (its workflow is gone) is
// skipped without error.
func TestSchedulerRetriesFailedSubmit(t *testing.T) {
	b := setup(t, storetest.OpenSQLite(t), t0)
	putSchedule(t, b, "minutely", triggers.ScheduleInput{Cron: "* * * * *", Enabled: true})
	flaky := &flakyIntake{Intake: b.Jobs, fail: 1}
	sch := triggers.NewScheduler(triggers.SchedulerConfig{Store: b.Store, Intake: flaky, Instance: "a", Now: b.Clock.Now})
	b.Clock.Set(t0.Add(time.Minute))
	if n, err := sch.Tick(t.Context()); err == nil || n != 0 {
		t.Fatalf("tick with a failing intake: %d, %v; want an error and no job", n, err)
	}
	b.Clock.Set(t0.Add(time.Minute + 2*time.Second))
	if n := tick(t, sch); n != 1 {
		t.Fatalf("retry tick created %d jobs, want 1", n)
	}
	if n := len(b.jobs(t)); n != 1 {
		t.Fatalf("%d jobs, want 1", n)
	}
	// The job of that retried slot is the slot's: the next slot is still one job.
	b.Clock.Set(t0.Add(2 * time.Minute))
	if n := tick(t, sch); n != 1 {
		t.Fatalf("next slot created %d jobs, want 1", n)
	}
	// A deleted workflow's schedule goes with it; nothing fires, nothing fails.
	if err := b.Jobs.DeleteWorkflow(t.Context(), b.Owner, "sync"); err != nil {
		t.Fatal(err)
	}
	b.Clock.Set(t0.Add(3 * time.Minute))
	if n := tick(t, sch); n != 0 {
		t.Fatalf("deleted workflow's schedule created %d jobs", n)
	}
	if _, err := b.Triggers.GetSchedule(t.Context(), b.Owner, "sync", "minutely"); levqor.ErrorCode(err) != levqor.ENotFound {
		t.Errorf("schedule after its workflow was deleted: %v", err)
	}
}
