package connectors

import (
	"context"
	"encoding/json"
	"errors"
)

// Step identifies the job step a connector runs for. The worker puts it in the
// step's context; connectors use it to find the owner's credentials and to derive
// idempotency keys that stay the same across retries of one step.
type Step struct {
	JobID   string
	StepID  string
	OwnerID string
	Attempt int // 1 for the first run of the step
}

// IdempotencyKey is the step's key for vendors that deduplicate requests: the same
// on every attempt of the step ("<job_id>:<step_id>"), different for every other step.
// Execution is at-least-once (a step whose worker died runs again), so connectors
// send it where the vendor accepts one (the http connector's Idempotency-Key header).
func (s Step) IdempotencyKey() string { return s.JobID + ":" + s.StepID }

type stepKey struct{}

// WithStep returns ctx carrying s.
func WithStep(ctx context.Context, s Step) context.Context {
	return context.WithValue(ctx, stepKey{}, s)
}

// StepFrom returns the step in ctx, if any.
func StepFrom(ctx context.Context) (Step, bool) {
	s, ok := ctx.Value(stepKey{}).(Step)
	return s, ok
}

// Credentialed is implemented by connectors that need secrets. CredentialFields
// names the fields a connection for the connector holds, e.g. ["token"]; the
// connections API accepts exactly these.
type Credentialed interface {
	CredentialFields() []string
}

// HeaderCredentialed is implemented by connectors whose connections hold HTTP
// headers and query parameters the owner chooses (the http connector) rather than
// fixed CredentialFields: each field is a header name, or "?" and a query
// parameter name (see CheckHeaderField).
type HeaderCredentialed interface {
	CredentialHeaders() bool
}

// SecretGuard is implemented by connectors whose inputs could carry secrets that
// belong in a connection. InputSecret is called on every step input before it is
// stored in a job or workflow (references unresolved): it returns the JSON Pointer
// within the input of a secret and a message saying where to keep it instead, or
// "" when there is none.
type SecretGuard interface {
	InputSecret(action string, input json.RawMessage) (pointer, message string)
}

// Credentials resolves the secrets of a connection: the owner's connection of that
// connector named name ("" means "default"), else the server-wide defaults, else
// ErrNoCredentials. Implementations must be safe for concurrent use.
type Credentials interface {
	Resolve(ctx context.Context, ownerID, connector, name string) (map[string]string, error)
}

// ErrNoCredentials is returned by Credentials.Resolve when neither the owner nor the
// server has credentials for the connector.
var ErrNoCredentials = errors.New("connectors: no credentials")

// CodeNoCredentials is the step error code of a step whose connector has no credentials.
const CodeNoCredentials = "no_credentials"
