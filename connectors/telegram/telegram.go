// Package telegram is the "telegram" connector: it sends messages and reads the bot's
// identity and updates through the Telegram Bot API, over plain net/http, with the bot
// token of the step owner's Telegram connection.
package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/levqor/levqor/connectors"
)

// Name is the connector's name in steps and in the connections API.
const Name = "telegram"

// DefaultBaseURL is the Bot API's root; requests go to {base}/bot{token}/{method}.
const DefaultBaseURL = "https://api.telegram.org"

const (
	// MaxResponseBytes is the largest response body the connector reads: 100 updates of
	// long messages (each possibly quoting another) stay well under it.
	MaxResponseBytes = 4 << 20
	// MaxRetryAfter caps the retry_after hint passed on from a rate limit.
	MaxRetryAfter = connectors.MaxRetryAfter

	// defaultHTTPTimeout leaves room for get_updates' longest poll.
	defaultHTTPTimeout = 90 * time.Second
)

// tokenPattern is the shape of a bot token, "<bot id>:<secret>". Checking it keeps the
// token from changing the request's path or query, since it is part of the URL.
var tokenPattern = regexp.MustCompile(`^[0-9]{1,20}:[A-Za-z0-9_-]{1,100}$`)

// Config configures the connector. Build it once in main.
type Config struct {
	// BaseURL is the Bot API root; empty means DefaultBaseURL. Tests and self-hosted
	// Bot API servers point it elsewhere.
	BaseURL string
	// HTTPClient carries every call; nil means a client with a 90-second timeout. Pass the
	// outbound guard's client, with a timeout above get_updates' 50-second long poll.
	HTTPClient *http.Client
	// Credentials resolves the owner's Telegram connection (field "token", a bot token). Required.
	Credentials connectors.Credentials
}

// Connector is the telegram connector. It is safe for concurrent use.
type Connector struct {
	baseURL string // without a trailing slash
	client  *http.Client
	creds   connectors.Credentials
}

var (
	_ connectors.Connector    = (*Connector)(nil)
	_ connectors.Credentialed = (*Connector)(nil)
)

// New returns the telegram connector, or an error if cfg is unusable.
func New(cfg Config) (*Connector, error) {
	u, err := connectors.EndpointURL(Name, "BaseURL", cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	base := u.String()
	if cfg.Credentials == nil {
		return nil, errors.New("telegram: Credentials is required")
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: defaultHTTPTimeout}
	}
	return &Connector{baseURL: strings.TrimSuffix(base, "/"), client: client, creds: cfg.Credentials}, nil
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
		"send_message": c.sendMessage,
		"get_me":       c.getMe,
		"get_updates":  c.getUpdates,
	})
}

// bot is one call's view of the Bot API: the connector acting with one token.
type bot struct {
	c     *Connector
	token string
}

// bot returns the Bot API client for the token of the step owner's connection.
func (c *Connector) bot(ctx context.Context, connection string) (bot, error) {
	step, ok := connectors.StepFrom(ctx)
	if !ok {
		return bot{}, connectors.Errorf(connectors.CodeNoCredentials, "the step has no owner, so no Telegram connection can be chosen")
	}
	secrets, err := c.creds.Resolve(ctx, step.OwnerID, Name, connection)
	switch {
	case errors.Is(err, connectors.ErrNoCredentials):
		return bot{}, noConnection(connection)
	case err != nil:
		if ctx.Err() != nil {
			return bot{}, ctx.Err()
		}
		return bot{}, &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
			Message: "the Telegram connection's credentials could not be read"}
	}
	token := secrets["token"]
	if token == "" {
		return bot{}, noConnection(connection)
	}
	if !tokenPattern.MatchString(token) {
		return bot{}, connectors.Errorf(CodeAuthFailed, "the Telegram connection's token is not a bot token of the form <bot id>:<secret>")
	}
	return bot{c: c, token: token}, nil
}

func noConnection(name string) error {
	if name == "" {
		return connectors.Errorf(connectors.CodeNoCredentials, "no Telegram connection with a token; add one with PUT /api/v1/connections/telegram")
	}
	return connectors.Errorf(connectors.CodeNoCredentials, "no Telegram connection named %q with a token", name)
}
