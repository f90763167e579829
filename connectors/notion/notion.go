// Package notion is the "notion" connector: search, query_database and create_page
// against Notion's REST API (there is no official Go SDK), pinned to one API version and
// acting with the integration token of the step owner's connection.
package notion

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/levqor/levqor/connectors"
)

// Name is the connector's name in steps.
const Name = "notion"

const (
	// DefaultBaseURL is Notion's API root.
	DefaultBaseURL = "https://api.notion.com"
	// APIVersion is the Notion-Version every request carries. 2022-06-28 is the last
	// version with POST /v1/databases/{id}/query, which later versions replace with data
	// sources.
	APIVersion = "2022-06-28"
	// MaxResponseBytes is the largest response body the connector reads.
	MaxResponseBytes = 4 << 20
	// MaxPropertiesBytes is the most of one page's properties object that query_database
	// passes on; a larger one is left out and flagged with properties_truncated.
	MaxPropertiesBytes = 32 << 10
	// MaxRequestBytes is Notion's limit on a request body (500 KB).
	MaxRequestBytes = 500_000

	defaultTimeout = 10 * time.Second
	userAgent      = "Levqor-Notion-Connector/1"
)

// Config configures the connector. Build it once in main.
type Config struct {
	// BaseURL is the API root the /v1 paths are joined to; "" means DefaultBaseURL.
	BaseURL string
	// HTTPClient carries every request; nil means a plain client (the per-request
	// timeout still applies). Pass the outbound guard's client in production.
	HTTPClient *http.Client
	// Credentials resolves the owner's connection (field "token"). Required.
	Credentials connectors.Credentials
	// Timeout bounds each request to Notion, response body included; 0 means 10 s.
	Timeout time.Duration
}

// Connector is the notion connector. It is safe for concurrent use.
type Connector struct {
	baseURL string
	client  *http.Client
	creds   connectors.Credentials
	timeout time.Duration
}

var (
	_ connectors.Connector    = (*Connector)(nil)
	_ connectors.Credentialed = (*Connector)(nil)
)

// New returns the notion connector, or an error if cfg is unusable.
func New(cfg Config) (*Connector, error) {
	u, err := connectors.EndpointURL(Name, "BaseURL", cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	base := u.String()
	if cfg.Credentials == nil {
		return nil, errors.New("notion: Credentials is required")
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("notion: Timeout must not be negative")
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	return &Connector{baseURL: strings.TrimSuffix(base, "/"), client: client, creds: cfg.Credentials, timeout: timeout}, nil
}

// Name implements connectors.Connector.
func (*Connector) Name() string { return Name }

// Actions implements connectors.Connector.
func (*Connector) Actions() []connectors.Action { return actions() }

// CredentialFields implements connectors.Credentialed.
func (*Connector) CredentialFields() []string { return []string{"token"} }

// Run implements connectors.Connector.
func (c *Connector) Run(ctx context.Context, action string, input json.RawMessage) (json.RawMessage, error) {
	raw, err := connectors.Dispatch(ctx, Name, action, input, map[string]connectors.Handler{
		"search":         c.search,
		"query_database": c.queryDatabase,
		"create_page":    c.createPage,
	})
	if err == nil && len(raw) > connectors.MaxOutputBytes {
		return nil, connectors.Errorf(connectors.CodeResponseTooLarge,
			"the results do not fit in a step's output (%d bytes); ask for a smaller page_size", connectors.MaxOutputBytes)
	}
	return raw, err
}

// token returns the integration token of the step owner's connection.
func (c *Connector) token(ctx context.Context, connection string) (string, error) {
	step, ok := connectors.StepFrom(ctx)
	if !ok {
		return "", connectors.Errorf(connectors.CodeNoCredentials, "the step has no owner, so no Notion connection can be chosen")
	}
	secrets, err := c.creds.Resolve(ctx, step.OwnerID, Name, connection)
	switch {
	case errors.Is(err, connectors.ErrNoCredentials):
		return "", noConnection(connection)
	case err != nil:
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
			Message: "the Notion connection's credentials could not be read"}
	}
	token := secrets["token"]
	if token == "" {
		return "", noConnection(connection)
	}
	return token, nil
}

func noConnection(name string) error {
	if name == "" {
		return connectors.Errorf(connectors.CodeNoCredentials, "no Notion connection with a token; add one with PUT /api/v1/connections/notion")
	}
	return connectors.Errorf(connectors.CodeNoCredentials, "no Notion connection named %q with a token", name)
}
