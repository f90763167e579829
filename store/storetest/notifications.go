package storetest

import (
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/store"
)

// RunNotificationSettings checks the notifier.SettingsStore contract.
func RunNotificationSettings(t *testing.T, open func(t testing.TB) store.Store) {
	s, owner, other := open(t), levqor.NewID("usr"), levqor.NewID("usr")
	ctx, at := t.Context(), time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	check := func(what, ownerID string, want notifier.Settings) {
		t.Helper()
		got, err := s.NotificationSettings(ctx, ownerID)
		if err != nil || got != want {
			t.Errorf("%s: NotificationSettings = %+v, %v; want %+v, nil", what, got, err, want)
		}
	}
	check("never set", owner, notifier.Settings{})
	for i, want := range []notifier.Settings{{JobFailed: true}, {JobFailed: true}, {}} {
		if err := s.SetNotificationSettings(ctx, owner, want, at.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatalf("SetNotificationSettings(%+v): %v", want, err)
		}
		check("after set", owner, want)
	}
	if err := s.SetNotificationSettings(ctx, owner, notifier.Settings{JobFailed: true}, at); err != nil {
		t.Fatal(err)
	}
	check("another owner", other, notifier.Settings{})
}
