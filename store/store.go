// Package store opens Levqor's database: the embedded SQLite file by default, or
// PostgreSQL when the configuration names one. Both engines implement Store.
package store

import (
	"context"
	"fmt"

	"github.com/levqor/levqor/analytics"
	"github.com/levqor/levqor/billing"
	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/newsletter"
	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/retention"
	"github.com/levqor/levqor/store/postgres"
	"github.com/levqor/levqor/store/sqlite"
	"github.com/levqor/levqor/triggers"
	"github.com/levqor/levqor/users"
)

// Store is everything the service keeps, whichever engine keeps it.
type Store interface {
	users.Store
	keys.Store
	jobs.Store
	budget.OwnerStore
	credentials.Store
	analytics.Store
	notifier.SettingsStore
	// triggers.Store includes ClaimSlot, the once-per-cluster claim of periodic work.
	triggers.Store
	retention.Store
	billing.Store
	newsletter.Store

	// Engine is "sqlite" or "postgres".
	Engine() string
	// Migrate applies the embedded migrations that are not applied yet.
	Migrate(ctx context.Context) error
	// Ready returns a levqor.EUnavailable error unless the database answers and is fully migrated.
	Ready(ctx context.Context) error
	// Close releases the database.
	Close() error
}

var (
	_ Store = (*sqlite.DB)(nil)
	_ Store = (*postgres.DB)(nil)
)

// Options says which database to open: what store needs of the configuration, and
// no more, so that store does not depend on config.
type Options struct {
	Engine      string // "sqlite" or "postgres"
	SQLitePath  string // the database file, when Engine is "sqlite"
	PostgresURL string // the connection URL, when Engine is "postgres"
}

// Open opens the database o names, for a server: a SQLite file is locked
// against a second server. It does not migrate.
func Open(ctx context.Context, o Options) (Store, error) {
	return open(ctx, o, sqlite.Open)
}

// OpenShared opens the database for an administrative command that may run beside
// a server (no SQLite lock). It does not migrate.
func OpenShared(ctx context.Context, o Options) (Store, error) {
	return open(ctx, o, sqlite.OpenShared)
}

func open(ctx context.Context, o Options, openSQLite func(context.Context, string) (*sqlite.DB, error)) (Store, error) {
	switch o.Engine {
	case "postgres":
		return postgres.Open(ctx, o.PostgresURL)
	case "sqlite":
		return openSQLite(ctx, o.SQLitePath)
	}
	return nil, fmt.Errorf("unknown database engine %q", o.Engine)
}
