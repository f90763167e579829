// Package dbrow converts between the rows and parameters sqlc generates and Levqor's
// domain types, once for both engines.
//
// The portable queries are compiled for each engine from sql/shared/queries, and the
// type overrides in sqlc.yaml make both generated packages use the same Go types
// (int64, string for JSON, database/sql null types, time.Time). Their structs are
// then identical field for field, so Go converts one into the other: the types here
// are those of gen/sqlitedb, which store/sqlite uses as they are and store/postgres
// converts to and from (pgdb.Job(p), dbrow.Job(r)). A column whose types drift apart
// stops store/postgres compiling, not a test at run time. See docs/adr/0011-shared-queries.md.
package dbrow

import (
	"database/sql"
	"time"

	"github.com/levqor/levqor/gen/sqlitedb"
)

// The rows and parameters of the shared queries, as both engines generate them.
type (
	User                              = sqlitedb.User
	InsertUserIfAbsentParams          = sqlitedb.InsertUserIfAbsentParams
	UpdateUserParams                  = sqlitedb.UpdateUserParams
	Key                               = sqlitedb.ApiKey
	InsertKeyParams                   = sqlitedb.InsertKeyParams
	Connection                        = sqlitedb.Connection
	PutConnectionParams               = sqlitedb.PutConnectionParams
	Job                               = sqlitedb.Job
	InsertJobParams                   = sqlitedb.InsertJobParams
	ListJobsParams                    = sqlitedb.ListJobsParams
	ListReplayCandidatesParams        = sqlitedb.ListReplayCandidatesParams
	FinishJobParams                   = sqlitedb.FinishJobParams
	Workflow                          = sqlitedb.Workflow
	PutWorkflowParams                 = sqlitedb.PutWorkflowParams
	WebhookSecret                     = sqlitedb.WebhookSecret
	PutWebhookSecretParams            = sqlitedb.PutWebhookSecretParams
	InsertWebhookSecretIfAbsentParams = sqlitedb.InsertWebhookSecretIfAbsentParams
	InsertAnalyticsEventParams        = sqlitedb.InsertAnalyticsEventParams
)

// NullTime stores a nil time as NULL, and any other in UTC like every stored time.
func NullTime(t *time.Time) sql.NullTime {
	if t == nil {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: t.UTC(), Valid: true}
}

// TimePtr reads a nullable time column: nil for NULL, else the time in UTC.
func TimePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

// EmptyAsNull stores "" as NULL, so that jobs without an idempotency key never collide.
func EmptyAsNull(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}

// NullJSON stores a nil JSON value as NULL.
func NullJSON(b []byte) sql.NullString {
	return sql.NullString{String: string(b), Valid: b != nil}
}

// AsIs returns r: the row conversion of the engine whose rows are these types already.
func AsIs[R any](r R) R { return r }
