// Package levqor holds the application's shared vocabulary: the error codes every layer
// speaks and the version stamped into the binary. Domain packages return *Error values;
// the HTTP layer turns them into problem+json in exactly one place (server/problem.go).
package levqor

import (
	"errors"
	"fmt"
)

// Application error codes. Each maps to one HTTP status in server/problem.go.
const (
	EInvalid              = "invalid"                // the input is malformed or breaks a rule
	EUnprocessable        = "unprocessable"          // well-formed, but cannot be done as asked
	EBudgetExceeded       = "budget_exceeded"        // the owner's AI budget has no room left
	ENotFound             = "not_found"              // no such object, or not the caller's
	EMethodNotAllowed     = "method_not_allowed"     // the route exists, the method does not
	EConflict             = "conflict"               // the object's state forbids the action
	EUnauthorized         = "unauthorized"           // no valid credentials
	EForbidden            = "forbidden"              // valid credentials, not enough scope
	ETooLarge             = "too_large"              // the body is over the limit
	EUnsupportedMediaType = "unsupported_media_type" // the Content-Type is not accepted
	ERateLimited          = "rate_limited"           // too many requests
	EUnavailable          = "unavailable"            // a dependency is down or not ready
	EStorageFull          = "storage_full"           // the database's storage is full; nothing was written
	EGone                 = "gone"                   // it existed, and has expired for good (an approval link)
	EInternal             = "internal"               // anything else; never shown in detail
)

// FieldError points at one offending part of a request.
type FieldError struct {
	Pointer string // JSON Pointer into the body, or "query.name" / "path.name" / "header.name"
	Detail  string
}

// Error is an application error: a code, a message safe to show to the caller,
// and optionally the field errors behind it and a wrapped cause (never shown).
type Error struct {
	Code    string
	Message string
	Fields  []FieldError
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal for any
// other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the caller-safe message of the first *Error in err's chain,
// and "Internal error." for any other error.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != EInternal {
		return e.Message
	}
	return "Internal error."
}
