// Package fault classifies database errors that are the server's fault and not a bug:
// the database cannot be reached, is shutting down, is read-only or busy for too long
// (levqor.EUnavailable), or its storage is full (levqor.EStorageFull). Both engines'
// errors are recognised here, by type and code, never by their text, so the HTTP
// layer has one place that turns them into 503 and 507 problems.
package fault

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/levqor/levqor"
)

// Caller-safe messages: they name the kind of fault, never the database's own text.
const (
	unavailableMessage = "The database is unavailable right now; nothing was changed. Retry shortly."
	fullMessage        = "The server's storage is full; nothing was written. Retry later."
)

// Classify returns err wrapped in a *levqor.Error with code EUnavailable or
// EStorageFull when err is a database fault of either kind, and nil otherwise.
func Classify(err error) error {
	switch kind(err) {
	case levqor.EStorageFull:
		return &levqor.Error{Code: levqor.EStorageFull, Message: fullMessage, Err: err}
	case levqor.EUnavailable:
		return &levqor.Error{Code: levqor.EUnavailable, Message: unavailableMessage, Err: err}
	}
	return nil
}

func kind(err error) string {
	if err == nil {
		return ""
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary result code of an extended one
		case sqlite3.SQLITE_FULL:
			return levqor.EStorageFull
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_READONLY,
			sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOLFS:
			// BUSY reaches us only after the busy timeout has run out.
			return levqor.EUnavailable
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "53100": // disk_full
			return levqor.EStorageFull
		case len(pe.Code) == 5 && pe.Code[:2] == "08", // connection exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // admin/crash shutdown, cannot connect now
			pe.Code == "53300", // too_many_connections
			pe.Code == "25006": // read_only_sql_transaction (a standby)
			return levqor.EUnavailable
		}
		return ""
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return levqor.EStorageFull
	}
	var ce *pgconn.ConnectError
	var oe *net.OpError
	switch {
	case errors.As(err, &ce), errors.As(err, &oe),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.EROFS),
		errors.Is(err, io.ErrUnexpectedEOF): // pgx: the connection was cut mid-answer
		return levqor.EUnavailable
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
		// A pool that cannot hand out a connection in time, or a database that did not answer.
		return levqor.EUnavailable
	}
	return ""
}
