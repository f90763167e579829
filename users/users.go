// Package users defines Levqor's user record and the storage contract for it.
package users

import (
	"context"
	"time"
)

// User is one person known to Levqor, unique by lower-cased email.
type User struct {
	ID        string
	Email     string
	Name      string
	Locale    string
	Currency  string
	Plan      string
	Meta      map[string]any // free-form, JSON-serialisable
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Store keeps users. Implementations live in store/sqlite and store/postgres and
// pass the same conformance suite (store/storetest).
type Store interface {
	// CreateUserIfAbsent inserts u unless its email is taken. It reports whether it
	// created the row; when it did not, the returned user is the existing one.
	// Concurrent calls for one email create exactly one row.
	CreateUserIfAbsent(ctx context.Context, u User) (User, bool, error)
	// GetUser returns the user with the id, or a levqor.ENotFound error.
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByEmail returns the user with the (already normalised) email, or a levqor.ENotFound error.
	GetUserByEmail(ctx context.Context, email string) (User, error)
	// UpdateUser overwrites the mutable fields (name, locale, currency, plan, meta,
	// updated_at) of the user with u.ID, or returns a levqor.ENotFound error.
	UpdateUser(ctx context.Context, u User) (User, error)
}
