package connectors

import (
	"context"
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
