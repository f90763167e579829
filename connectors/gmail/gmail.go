// Package gmail is the "gmail" connector: list_labels, list_messages and send_email
// through google.golang.org/api/gmail/v1, acting as the authorised user of the step
// owner's connection (an OAuth2 client and refresh token) with access tokens refreshed
// on demand and cached per credential set.
package gmail

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/gmail/v1"
	"google.golang.org/api/option"

	"github.com/levqor/levqor/connectors"
)

// Name is the connector's name in steps.
const Name = "gmail"

const (
	// DefaultBaseURL is the Gmail API's root.
	DefaultBaseURL = "https://gmail.googleapis.com/"
	// DefaultTokenURL is Google's OAuth2 token endpoint.
	DefaultTokenURL = "https://oauth2.googleapis.com/token"
	// MaxResponseBytes is the largest response body the connector reads, from Gmail or
	// from the token endpoint.
	MaxResponseBytes = 1 << 20
	// MaxCachedTokens bounds how many credential sets keep a cached access token.
	MaxCachedTokens = 1024

	defaultTimeout = 30 * time.Second
	user           = "me" // the authorised user
)

// Config configures the connector. Build it once in main.
type Config struct {
	// BaseURL is the API root the gmail/v1 paths are joined to; "" means DefaultBaseURL.
	BaseURL string
	// TokenURL is the OAuth2 token endpoint that refreshes access tokens; "" means
	// DefaultTokenURL.
	TokenURL string
	// HTTPClient carries every request, token refreshes included; nil means a plain
	// client (the per-request timeout still applies). Pass the outbound guard's client in
	// production. Its transport is wrapped to cap response bodies.
	HTTPClient *http.Client
	// Credentials resolves the owner's connection (fields "client_id", "client_secret",
	// "refresh_token"). Required.
	Credentials connectors.Credentials
	// Timeout bounds each Gmail call and each token refresh; 0 means 30 s.
	Timeout time.Duration
}

// Connector is the gmail connector. It is safe for concurrent use.
type Connector struct {
	baseURL  string
	tokenURL string
	client   *http.Client
	creds    connectors.Credentials
	timeout  time.Duration
	tokens   *tokenCache
	logger   *slog.Logger
}

var (
	_ connectors.Connector    = (*Connector)(nil)
	_ connectors.Credentialed = (*Connector)(nil)
)

// New returns the gmail connector, or an error if cfg is unusable.
func New(cfg Config) (*Connector, error) {
	baseURL, err := connectors.EndpointURL(Name, "BaseURL", cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	base := baseURL.String()
	if !strings.HasSuffix(base, "/") {
		base += "/" // the SDK resolves its paths against it
	}
	tokenURL, err := connectors.EndpointURL(Name, "TokenURL", cfg.TokenURL, DefaultTokenURL)
	if err != nil {
		return nil, err
	}
	if cfg.Credentials == nil {
		return nil, errors.New("gmail: Credentials is required")
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("gmail: Timeout must not be negative")
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	return &Connector{
		baseURL:  base,
		tokenURL: tokenURL.String(),
		client:   capped(cfg.HTTPClient),
		creds:    cfg.Credentials,
		timeout:  timeout,
		tokens:   newTokenCache(MaxCachedTokens),
		// The SDK logs requests, bodies included, when GOOGLE_SDK_GO_LOGGING_LEVEL is
		// set; a message's content must never reach a log, whatever the environment.
		logger: slog.New(slog.DiscardHandler),
	}, nil
}

// Name implements connectors.Connector.
func (*Connector) Name() string { return Name }

// Actions implements connectors.Connector.
func (*Connector) Actions() []connectors.Action { return actions() }

// CredentialFields implements connectors.Credentialed.
func (*Connector) CredentialFields() []string {
	return []string{"client_id", "client_secret", "refresh_token"}
}

// Run implements connectors.Connector.
func (c *Connector) Run(ctx context.Context, action string, input json.RawMessage) (json.RawMessage, error) {
	return connectors.Dispatch(ctx, Name, action, input, map[string]connectors.Handler{
		"list_labels":   c.listLabels,
		"list_messages": c.listMessages,
		"send_email":    c.sendEmail,
	})
}

// LabelsOutput is what list_labels returns.
type LabelsOutput struct {
	Labels []Label `json:"labels"`
}

// Label is one Gmail label.
type Label struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"` // "system" or "user"
}

func (c *Connector) listLabels(ctx context.Context, input json.RawMessage) (any, error) {
	var in struct {
		Connection string `json:"connection"`
	}
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	var res *gmail.ListLabelsResponse
	err := c.do(ctx, in.Connection, func(ctx context.Context, svc *gmail.Service) (err error) {
		res, err = svc.Users.Labels.List(user).Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := LabelsOutput{Labels: make([]Label, 0, len(res.Labels))}
	for _, l := range res.Labels {
		out.Labels = append(out.Labels, Label{ID: l.Id, Name: l.Name, Type: l.Type})
	}
	return out, nil
}

// MessagesOutput is what list_messages returns.
type MessagesOutput struct {
	Messages           []MessageRef `json:"messages"`
	NextPageToken      *string      `json:"next_page_token"`
	ResultSizeEstimate int64        `json:"result_size_estimate"`
}

// MessageRef identifies a message and its thread.
type MessageRef struct {
	ID       string `json:"id"`
	ThreadID string `json:"thread_id"`
}

type listMessagesInput struct {
	Query      string   `json:"query"`
	MaxResults float64  `json:"max_results"` // float64: the schema's integer admits 1e2
	PageToken  string   `json:"page_token"`
	LabelIDs   []string `json:"label_ids"`
	Connection string   `json:"connection"`
}

func (c *Connector) listMessages(ctx context.Context, input json.RawMessage) (any, error) {
	var in listMessagesInput
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	var res *gmail.ListMessagesResponse
	err := c.do(ctx, in.Connection, func(ctx context.Context, svc *gmail.Service) (err error) {
		call := svc.Users.Messages.List(user).Context(ctx)
		if in.Query != "" {
			call.Q(in.Query)
		}
		if in.MaxResults > 0 {
			call.MaxResults(int64(in.MaxResults))
		}
		if in.PageToken != "" {
			call.PageToken(in.PageToken)
		}
		if len(in.LabelIDs) > 0 {
			call.LabelIds(in.LabelIDs...)
		}
		res, err = call.Do()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := MessagesOutput{Messages: make([]MessageRef, 0, len(res.Messages)), ResultSizeEstimate: res.ResultSizeEstimate}
	for _, m := range res.Messages {
		out.Messages = append(out.Messages, MessageRef{ID: m.Id, ThreadID: m.ThreadId})
	}
	if res.NextPageToken != "" {
		out.NextPageToken = &res.NextPageToken
	}
	return out, nil
}

// SentMessage is what send_email returns.
type SentMessage struct {
	ID       string   `json:"id"`
	ThreadID string   `json:"thread_id"`
	LabelIDs []string `json:"label_ids"`
}

type sendEmailInput struct {
	To         []string `json:"to"`
	Cc         []string `json:"cc"`
	Bcc        []string `json:"bcc"`
	ReplyTo    string   `json:"reply_to"`
	Subject    string   `json:"subject"`
	Text       string   `json:"text"`
	HTML       string   `json:"html"`
	Connection string   `json:"connection"`
}

func (c *Connector) sendEmail(ctx context.Context, input json.RawMessage) (any, error) {
	var in sendEmailInput
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	msg, err := buildMessage(email{To: in.To, Cc: in.Cc, Bcc: in.Bcc, ReplyTo: in.ReplyTo,
		Subject: in.Subject, Text: in.Text, HTML: in.HTML}, time.Now(), rand.Text()+"@levqor")
	if err != nil {
		return nil, &connectors.StepError{Code: connectors.CodeInvalidInput, Message: err.Error()}
	}
	raw := base64.URLEncoding.EncodeToString(msg)
	var res *gmail.Message
	err = c.do(ctx, in.Connection, func(ctx context.Context, svc *gmail.Service) (err error) {
		res, err = svc.Users.Messages.Send(user, &gmail.Message{Raw: raw}).Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, err
	}
	if res.Id == "" {
		// Gmail always names what it sent; without an id nothing shows that it did.
		return nil, &connectors.StepError{Code: connectors.CodeUpstreamError, Message: "Gmail's response names no message"}
	}
	labels := res.LabelIds
	if labels == nil {
		labels = []string{}
	}
	return SentMessage{ID: res.Id, ThreadID: res.ThreadId, LabelIDs: labels}, nil
}

func decode(input json.RawMessage, v any) error {
	if err := json.Unmarshal(input, v); err != nil {
		return &connectors.StepError{Code: connectors.CodeInvalidInput, Message: "input does not match the action's schema", Err: err}
	}
	return nil
}

// do runs call with a Gmail service acting for the step owner's connection. When Gmail
// refuses a cached access token (it may have been revoked before it expired), do
// refreshes it and calls once more: a 401 means the first call did nothing.
func (c *Connector) do(ctx context.Context, connection string, call func(context.Context, *gmail.Service) error) error {
	cr, err := c.credentials(ctx, connection)
	if err != nil {
		return err
	}
	entry := c.tokens.entry(cr.key())
	refresh := func(ctx context.Context) (*oauth2.Token, error) { return c.refresh(ctx, cr) }
	for retried := false; ; retried = true {
		tok, fresh, err := entry.token(ctx, refresh)
		if err != nil {
			return err
		}
		err = c.callWith(ctx, tok, call)
		var se *connectors.StepError
		if !fresh && !retried && errors.As(err, &se) && se.Code == CodeAuthFailed {
			entry.forget(tok)
			continue
		}
		return err
	}
}

// callWith makes one Gmail call with an access token, under the per-call timeout.
func (c *Connector) callWith(ctx context.Context, tok *oauth2.Token, call func(context.Context, *gmail.Service) error) error {
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// A copy: the client's token source writes to the token it serves, and the cached
	// one is shared by concurrent steps.
	own := *tok
	hc := oauth2.NewClient(context.WithValue(callCtx, oauth2.HTTPClient, c.client), oauth2.StaticTokenSource(&own))
	svc, err := gmail.NewService(callCtx, option.WithHTTPClient(hc), option.WithEndpoint(c.baseURL), option.WithLogger(c.logger))
	if err != nil {
		return fmt.Errorf("gmail service: %w", err)
	}
	if err := call(callCtx, svc); err != nil {
		return c.apiError(ctx, callCtx, err)
	}
	return nil
}

// refresh trades the connection's refresh token for an access token.
func (c *Connector) refresh(ctx context.Context, cr credentials) (*oauth2.Token, error) {
	conf := oauth2.Config{
		ClientID:     cr.clientID,
		ClientSecret: cr.clientSecret,
		// In the body, as Google documents it; auto-detection would send a failed
		// refresh twice.
		Endpoint: oauth2.Endpoint{TokenURL: c.tokenURL, AuthStyle: oauth2.AuthStyleInParams},
	}
	reqCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	src := conf.TokenSource(context.WithValue(reqCtx, oauth2.HTTPClient, c.client), &oauth2.Token{RefreshToken: cr.refreshToken})
	tok, err := src.Token()
	if err != nil {
		return nil, c.tokenError(ctx, reqCtx, err)
	}
	return tok, nil
}

// credentials resolves the step owner's connection.
func (c *Connector) credentials(ctx context.Context, connection string) (credentials, error) {
	step, ok := connectors.StepFrom(ctx)
	if !ok {
		return credentials{}, connectors.Errorf(connectors.CodeNoCredentials, "the step has no owner, so no Gmail connection can be chosen")
	}
	secrets, err := c.creds.Resolve(ctx, step.OwnerID, Name, connection)
	switch {
	case errors.Is(err, connectors.ErrNoCredentials):
		return credentials{}, noConnection(connection, "")
	case err != nil:
		if ctx.Err() != nil {
			return credentials{}, ctx.Err()
		}
		return credentials{}, &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
			Message: "the Gmail connection's credentials could not be read"}
	}
	for _, f := range c.CredentialFields() {
		if secrets[f] == "" {
			return credentials{}, noConnection(connection, f)
		}
	}
	return credentials{clientID: secrets["client_id"], clientSecret: secrets["client_secret"], refreshToken: secrets["refresh_token"]}, nil
}

func noConnection(name, missing string) error {
	what := "no Gmail connection"
	if name != "" {
		what = fmt.Sprintf("no Gmail connection named %q", name)
	}
	if missing != "" {
		return connectors.Errorf(connectors.CodeNoCredentials, "%s with a %s", what, missing)
	}
	if name == "" {
		return connectors.Errorf(connectors.CodeNoCredentials, "%s; add one with PUT /api/v1/connections/gmail", what)
	}
	return connectors.Errorf(connectors.CodeNoCredentials, "%s", what)
}
