// Package slack is the "slack" connector: it posts messages, lists channels and uploads
// files through Slack's Web API with github.com/slack-go/slack, using the bot token of the
// step owner's Slack connection.
package slack

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/levqor/levqor/connectors"
)

// Name is the connector's name in steps and in the connections API.
const Name = "slack"

// DefaultBaseURL is Slack's Web API root.
const DefaultBaseURL = "https://slack.com/api/"

const (
	// MaxResponseBytes is the largest response body the connector reads from Slack. It is
	// above the 1–2 MiB of a typical API response because a conversations.list page of
	// 1000 channels with long topics and purposes can come close to 2 MiB.
	MaxResponseBytes = 4 << 20
	// MaxUploadBytes is the largest file upload_file sends.
	MaxUploadBytes = 1 << 20
	// MaxRetryAfter caps the Retry-After hint passed on from a rate limit.
	MaxRetryAfter = connectors.MaxRetryAfter

	defaultHTTPTimeout = time.Minute
)

// Config configures the connector. Build it once in main.
type Config struct {
	// BaseURL is the Web API root the method names are appended to; empty means
	// DefaultBaseURL. Tests and self-hosted gateways point it elsewhere.
	BaseURL string
	// HTTPClient carries every call, the upload to the upload_url Slack hands out
	// included; nil means a client with a one-minute timeout. Pass the outbound guard's client.
	HTTPClient *http.Client
	// Credentials resolves the owner's Slack connection (field "token", a bot token). Required.
	Credentials connectors.Credentials
}

// Connector is the slack connector. It is safe for concurrent use.
type Connector struct {
	baseURL string
	client  cappedClient
	creds   connectors.Credentials
}

var (
	_ connectors.Connector    = (*Connector)(nil)
	_ connectors.Credentialed = (*Connector)(nil)
)

// New returns the slack connector, or an error if cfg is unusable.
func New(cfg Config) (*Connector, error) {
	u, err := connectors.EndpointURL(Name, "BaseURL", cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	base := u.String()
	if !strings.HasSuffix(base, "/") {
		base += "/" // the SDK appends method names to it as they are
	}
	if cfg.Credentials == nil {
		return nil, errors.New("slack: Credentials is required")
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: defaultHTTPTimeout}
	}
	return &Connector{baseURL: base, client: cappedClient{client: client}, creds: cfg.Credentials}, nil
}

// Name implements connectors.Connector.
func (*Connector) Name() string { return Name }

// Actions implements connectors.Connector.
func (*Connector) Actions() []connectors.Action { return actions() }

// CredentialFields implements connectors.Credentialed.
func (*Connector) CredentialFields() []string { return []string{"token"} }

// Run implements connectors.Connector.
func (c *Connector) Run(ctx context.Context, action string, input json.RawMessage) (json.RawMessage, error) {
	return connectors.Dispatch(ctx, Name, action, input, map[string]connectors.Handler{
		"post_message":  c.postMessage,
		"list_channels": c.listChannels,
		"upload_file":   c.uploadFile,
	})
}

// api returns a Slack client acting with the token of the step owner's connection.
func (c *Connector) api(ctx context.Context, connection string) (*slack.Client, error) {
	step, ok := connectors.StepFrom(ctx)
	if !ok {
		return nil, connectors.Errorf(connectors.CodeNoCredentials, "the step has no owner, so no Slack connection can be chosen")
	}
	secrets, err := c.creds.Resolve(ctx, step.OwnerID, Name, connection)
	switch {
	case errors.Is(err, connectors.ErrNoCredentials):
		return nil, noConnection(connection)
	case err != nil:
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
			Message: "the Slack connection's credentials could not be read"}
	}
	token := secrets["token"]
	if token == "" {
		return nil, noConnection(connection)
	}
	return slack.New(token, slack.OptionAPIURL(c.baseURL), slack.OptionHTTPClient(c.client)), nil
}

func noConnection(name string) error {
	if name == "" {
		return connectors.Errorf(connectors.CodeNoCredentials, "no Slack connection with a token; add one with PUT /api/v1/connections/slack")
	}
	return connectors.Errorf(connectors.CodeNoCredentials, "no Slack connection named %q with a token", name)
}
