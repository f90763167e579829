package notifier

import (
	"context"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/users"
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

// UserLookup finds the user of an owner, whose address the emails go to.
type UserLookup interface {
	GetUser(ctx context.Context, id string) (users.User, error)
}

// Preferences reads and changes the emails owners opted into.
type Preferences struct {
	settings SettingsStore
	users    UserLookup
	now      func() time.Time
}

// NewPreferences returns the preferences service over its stores.
func NewPreferences(settings SettingsStore, users UserLookup) *Preferences {
	return &Preferences{settings: settings, users: users, now: time.Now}
}

// Get returns the owner's settings and the address the emails go to ("" when the
// owner has no user record).
func (p *Preferences) Get(ctx context.Context, ownerID string) (Settings, string, error) {
	set, err := p.settings.NotificationSettings(ctx, ownerID)
	if err != nil {
		return Settings{}, "", err
	}
	email, err := p.address(ctx, ownerID)
	return set, email, err
}

// Set replaces the owner's settings and returns the address the emails go to.
func (p *Preferences) Set(ctx context.Context, ownerID string, set Settings) (string, error) {
	if err := p.settings.SetNotificationSettings(ctx, ownerID, set, p.now()); err != nil {
		return "", err
	}
	return p.address(ctx, ownerID)
}

func (p *Preferences) address(ctx context.Context, ownerID string) (string, error) {
	u, err := p.users.GetUser(ctx, ownerID)
	switch {
	case err == nil:
		return u.Email, nil
	case levqor.ErrorCode(err) == levqor.ENotFound:
		return "", nil
	}
	return "", err
}
