package notifier

import (
	"context"
	"time"
)

// Settings are the emails an owner's user opted into (PUT /api/v1/notifications).
// The zero value, an owner who never chose, sends none.
type Settings struct {
	JobFailed bool // a job of the owner's failed for good
}

// SettingsStore keeps Settings per owner. Implementations live in store/sqlite and
// store/postgres.
type SettingsStore interface {
	// NotificationSettings returns the owner's settings, the zero Settings when none
	// were ever set.
	NotificationSettings(ctx context.Context, ownerID string) (Settings, error)
	// SetNotificationSettings replaces the owner's settings.
	SetNotificationSettings(ctx context.Context, ownerID string, s Settings, now time.Time) error
}
