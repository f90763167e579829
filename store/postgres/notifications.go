package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/levqor/levqor/gen/pgdb"
	"github.com/levqor/levqor/notifier"
)

var _ notifier.SettingsStore = (*DB)(nil)

// NotificationSettings implements notifier.SettingsStore.
func (db *DB) NotificationSettings(ctx context.Context, ownerID string) (notifier.Settings, error) {
	jobFailed, err := db.q.GetNotificationSettings(ctx, ownerID)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return notifier.Settings{}, fmt.Errorf("get notification settings: %w", err)
	}
	return notifier.Settings{JobFailed: jobFailed}, nil
}

// SetNotificationSettings implements notifier.SettingsStore.
func (db *DB) SetNotificationSettings(ctx context.Context, ownerID string, s notifier.Settings, now time.Time) error {
	if err := db.q.UpsertNotificationSettings(ctx, pgdb.UpsertNotificationSettingsParams{
		OwnerID: ownerID, JobFailed: s.JobFailed, UpdatedAt: now.UTC(),
	}); err != nil {
		return fmt.Errorf("set notification settings: %w", err)
	}
	return nil
}
