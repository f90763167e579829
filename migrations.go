package levqor

import "embed"

// MigrationFiles holds the schema migrations of both engines
// (sql/sqlite/migrations, sql/postgres/migrations), so that the one binary can create
// and upgrade its own database. It lives here because go:embed reaches only files
// below the embedding package, and sql/ holds SQL only; store/migrate reads it.
//
//go:embed sql/sqlite/migrations/*.sql sql/postgres/migrations/*.sql
var MigrationFiles embed.FS
