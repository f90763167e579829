// Package connectors is the seam between a job's steps and the integrations that carry them
// out: the Connector interface, the StepError every failed step reports, and the Registry
// that validates a step's input against its action's JSON Schema and runs it fail-closed.
// Each connector lives in its own subpackage.
package connectors

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// MaxOutputBytes is the largest output a step may produce.
const MaxOutputBytes = 1 << 20

// Action describes one action of a connector: its name, a description and the JSON
// Schemas of its input and of its output.
type Action struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
	// OutputSchema describes what a successful run returns. Dry runs derive their
	// example outputs from it (schemaexample); the registry compiles it at start-up,
	// and each connector's tests check real outputs against it.
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
}

// OutputDescriber is implemented by connectors some of whose outputs depend on the
// input (core.echo returns it, ai.extract's data follows the schema it was given).
// DescribeOutput returns the JSON Schema of the output of action for this input, or
// false when the action's OutputSchema says all there is.
type OutputDescriber interface {
	DescribeOutput(action string, input json.RawMessage) (schema json.RawMessage, ok bool)
}

// Connector is one integration.
type Connector interface {
	// Name is the connector's stable identifier, as steps name it.
	Name() string
	// Actions lists what the connector can do; it must return the same list every time.
	Actions() []Action
	// Run performs action with a validated input and returns its JSON output.
	// It must honour ctx. An error should be a *StepError; any other error is reported
	// as a retryable upstream_error.
	Run(ctx context.Context, action string, input json.RawMessage) (json.RawMessage, error)
}

// Step error codes. They are stable: job records and API responses carry them.
const (
	CodeInvalidInput     = "invalid_input"      // the input breaks the action's schema or rules
	CodeUnknownConnector = "unknown_connector"  // no connector by that name
	CodeUnknownAction    = "unknown_action"     // the connector has no such action
	CodeTimeout          = "timeout"            // the step (or the upstream call) ran out of time
	CodeCanceled         = "canceled"           // the step was canceled
	CodeUpstreamError    = "upstream_error"     // the service behind the connector failed
	CodeRefused          = "refused"            // the outbound guard refused the destination
	CodePanic            = "panic"              // the connector panicked
	CodeInvalidOutput    = "invalid_output"     // the connector's output is not JSON or too large
	CodeResponseTooLarge = "response_too_large" // the upstream response is over the limit

	// Vendor outcomes, the same for every vendor connector: the vendor's own error
	// code goes in the message.
	CodeRateLimited = "rate_limited" // the vendor asked to slow down; retryable after RetryAfter when it said when
	CodeAuthFailed  = "auth_failed"  // the vendor refused the credentials
	CodeForbidden   = "forbidden"    // the credentials may not do this (scope, membership, quota)
	CodeNotFound    = "not_found"    // the vendor has no such object (or does not show it to these credentials)
	CodeBadRequest  = "bad_request"  // the vendor refused the request as it was made
)

// StepError is how a step fails: a stable code, a caller-safe message, and whether (and when) a retry may succeed.
type StepError struct {
	Code       string
	Message    string // safe to store and show: never secrets or raw upstream bodies
	Retryable  bool
	RetryAfter time.Duration // a hint from upstream; zero means the caller's backoff decides

	// Err is the cause, kept for errors.Is/As (context.DeadlineExceeded, outbound.ErrRefused…).
	// It is not part of Error() and may carry upstream detail, so it is never shown or stored.
	Err error
}

// Error returns "code: message"; it is safe to log and store.
func (e *StepError) Error() string { return e.Code + ": " + e.Message }

func (e *StepError) Unwrap() error { return e.Err }

// Errorf returns a non-retryable *StepError with the given code and a formatted message.
func Errorf(code, format string, args ...any) *StepError {
	return &StepError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Handler runs one action: it decodes its (schema-valid) input and returns a value to
// encode as the step's output.
type Handler func(ctx context.Context, input json.RawMessage) (any, error)

// Dispatch runs the handler of action, one of handlers, and encodes its output as JSON:
// the body of most connectors' Run.
func Dispatch(ctx context.Context, connector, action string, input json.RawMessage, handlers map[string]Handler) (json.RawMessage, error) {
	h, ok := handlers[action]
	if !ok {
		return nil, Errorf(CodeUnknownAction, "connector %q has no action %q", connector, action)
	}
	out, err := h(ctx, input)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode output: %w", err)
	}
	return raw, nil
}
