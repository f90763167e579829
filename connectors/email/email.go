// Package email is the "email" connector: one action, send, that sends an email through
// Resend from one of the operator's configured senders. Its Resend idempotency key comes
// from the job and step ids, so a retried step never sends the email twice.
package email

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strings"

	"github.com/resend/resend-go/v3"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/resendapi"
)

// Name is the connector's name in steps.
const Name = "email"

// Step error codes particular to this connector, besides those of package connectors.
const (
	CodeRateLimited         = connectors.CodeRateLimited // Resend's rate limit (retryable) or sending quota (not)
	CodeAuthFailed          = connectors.CodeAuthFailed  // Resend refused the API key
	CodeBadRequest          = connectors.CodeBadRequest  // Resend refused the email (validation_error and the like)
	CodeIdempotencyConflict = "idempotency_conflict"     // the step's idempotency key is in use by another email or request
	CodeNoStep              = "no_step"                  // the connector ran outside a job step
)

const (
	// MaxRecipients is the most addresses each of to, cc and bcc may hold (Resend's limit for to).
	MaxRecipients = 50
	// MaxBodyBytes is the largest text or html body.
	MaxBodyBytes = 512 << 10

	maxAddress    = 320
	maxConnection = 64
)

// Config configures the connector. Build it once in main.
type Config struct {
	// BaseURL is Resend's API root; "" means https://api.resend.com/.
	BaseURL string
	// HTTPClient carries the calls; nil means a client with a 30-second timeout. Pass an
	// outbound.Guard's client (with Resend's host allowed) in production.
	HTTPClient *http.Client
	// Credentials resolves the owner's "api_key" (or the server's default). Required.
	Credentials connectors.Credentials
	// Senders are the from-addresses a step may use, e.g. "no-reply@levqor.ai" or
	// "Levqor <no-reply@levqor.ai>"; a step names one exactly as written here. Required.
	Senders []string
	// DefaultFrom is the sender of steps that name none; it must be one of Senders.
	// "" means the no-reply@ sender if there is one, else the first.
	DefaultFrom string
	// PublicURL roots the links of template emails, e.g. https://levqor.ai. Required.
	PublicURL string
}

// Connector is the email connector. It is safe for concurrent use.
type Connector struct {
	client      *resendapi.Client
	creds       connectors.Credentials
	senders     []string
	defaultFrom string
	publicURL   string
	actions     []connectors.Action
}

var (
	_ connectors.Connector    = (*Connector)(nil)
	_ connectors.Credentialed = (*Connector)(nil)
)

// New returns the email connector, or an error if cfg is unusable.
func New(cfg Config) (*Connector, error) {
	if cfg.Credentials == nil {
		return nil, errors.New("email: Credentials is required")
	}
	if len(cfg.Senders) == 0 {
		return nil, errors.New("email: at least one sender is required")
	}
	defaultFrom := cfg.DefaultFrom
	for _, s := range cfg.Senders {
		a, err := parseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("email: sender %q is not an email address", s)
		}
		if defaultFrom == "" && strings.HasPrefix(a.Address, "no-reply@") {
			defaultFrom = s
		}
	}
	if defaultFrom == "" {
		defaultFrom = cfg.Senders[0]
	}
	if !slices.Contains(cfg.Senders, defaultFrom) {
		return nil, fmt.Errorf("email: DefaultFrom %q is not one of the senders", defaultFrom)
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, errors.New("email: PublicURL must be an absolute http or https URL")
	}
	client, err := resendapi.New(cfg.BaseURL, cfg.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("email: %w", err)
	}
	senders := slices.Clone(cfg.Senders)
	schema, err := sendSchema(senders, defaultFrom)
	if err != nil {
		return nil, err
	}
	return &Connector{
		client:      client,
		creds:       cfg.Credentials,
		senders:     senders,
		defaultFrom: defaultFrom,
		publicURL:   cfg.PublicURL,
		actions: []connectors.Action{{
			Name: "send",
			Description: "Sends one email through Resend and returns {id}. Give to (1 to 50 addresses), optional cc, bcc, " +
				"reply_to and from (one of the configured senders), and either subject with text and/or html, or a " +
				"Levqor template with its data. A retried step does not send again.",
			InputSchema: schema,
			OutputSchema: json.RawMessage(`{"type": "object", "additionalProperties": false, "required": ["id"],
				"properties": {"id": {"type": "string", "description": "Resend's id of the email."}}}`),
		}},
	}, nil
}

// addressSchema is one address: no control characters, at most 320 bytes; the connector
// parses it as RFC 5322 too.
const addressSchema = `{"type": "string", "minLength": 3, "maxLength": 320, "pattern": "^[^\\x00-\\x1f\\x7f]+$"}`

func sendSchema(senders []string, defaultFrom string) (json.RawMessage, error) {
	fromEnum, err := json.Marshal(senders)
	if err != nil {
		return nil, err
	}
	templates, err := json.Marshal(notifier.Templates())
	if err != nil {
		return nil, err
	}
	// A list of addresses may also be given as one string, as Resend allows.
	list := func(minItems int) string {
		return fmt.Sprintf(`{"type": ["string", "array"], "minLength": 3, "maxLength": 320, "pattern": "^[^\\x00-\\x1f\\x7f]+$",
			"items": %s, "minItems": %d, "maxItems": %d}`, addressSchema, minItems, MaxRecipients)
	}
	return json.RawMessage(fmt.Sprintf(`{
	"type": "object",
	"additionalProperties": false,
	"required": ["to"],
	"properties": {
		"to": %s,
		"cc": %s,
		"bcc": %s,
		"reply_to": %s,
		"from": {"enum": %s, "description": "One of the configured senders; default %s."},
		"subject": {"type": "string", "minLength": 1, "maxLength": 998, "pattern": "^[^\\x00-\\x1f\\x7f]*$"},
		"text": {"type": "string", "minLength": 1, "maxLength": %d},
		"html": {"type": "string", "minLength": 1, "maxLength": %d},
		"template": {"enum": %s, "description": "A Levqor template; it supplies subject, text and html."},
		"data": {"type": "object", "maxProperties": 32, "description": "The template's fields."},
		"connection": {"type": "string", "minLength": 1, "maxLength": %d, "description": "A named connection of the owner; default the owner's default."}
	},
	"dependentSchemas": {"template": {"properties": {"subject": false, "text": false, "html": false}}},
	"dependentRequired": {"data": ["template"]},
	"if": {"required": ["template"]},
	"else": {"required": ["subject"], "if": {"not": {"required": ["html"]}}, "then": {"required": ["text"]}}
}`, list(1), list(0), list(0), addressSchema, fromEnum, jsonString(defaultFrom), MaxBodyBytes, MaxBodyBytes, templates, maxConnection)), nil
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

// Name implements connectors.Connector.
func (*Connector) Name() string { return Name }

// CredentialFields implements connectors.Credentialed: a Resend API key.
func (*Connector) CredentialFields() []string { return []string{"api_key"} }

// Actions implements connectors.Connector.
func (c *Connector) Actions() []connectors.Action { return slices.Clone(c.actions) }

// addressList is one address or a list of them.
type addressList []string

func (l *addressList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = addressList{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(l))
}

type sendInput struct {
	To         addressList    `json:"to"`
	Cc         addressList    `json:"cc"`
	Bcc        addressList    `json:"bcc"`
	ReplyTo    string         `json:"reply_to"`
	From       string         `json:"from"`
	Subject    string         `json:"subject"`
	Text       string         `json:"text"`
	HTML       string         `json:"html"`
	Template   string         `json:"template"`
	Data       map[string]any `json:"data"`
	Connection string         `json:"connection"`
}

// Output is what send returns.
type Output struct {
	ID string `json:"id"` // Resend's email id
}

// Run implements connectors.Connector.
func (c *Connector) Run(ctx context.Context, action string, input json.RawMessage) (json.RawMessage, error) {
	if action != "send" {
		return nil, connectors.Errorf(connectors.CodeUnknownAction, "connector %q has no action %q", Name, action)
	}
	var in sendInput
	if err := json.Unmarshal(input, &in); err != nil {
		return nil, &connectors.StepError{Code: connectors.CodeInvalidInput, Message: "input does not match the send schema", Err: err}
	}
	email, err := c.build(in)
	if err != nil {
		return nil, err
	}
	step, ok := connectors.StepFrom(ctx)
	if !ok || step.JobID == "" || step.StepID == "" {
		return nil, connectors.Errorf(CodeNoStep, "the email connector runs only in a job step: its idempotency key comes from the job and step ids")
	}
	apiKey, err := c.apiKey(ctx, step.OwnerID, in.Connection)
	if err != nil {
		return nil, err
	}
	id, err := c.client.Send(ctx, apiKey, email, idempotencyKey(step))
	if err != nil {
		return nil, sendError(err)
	}
	return json.Marshal(Output{ID: id})
}

// build checks the input beyond its schema and turns it into Resend's request.
func (c *Connector) build(in sendInput) (*resend.SendEmailRequest, error) {
	email := &resend.SendEmailRequest{From: c.defaultFrom}
	if in.From != "" {
		if !slices.Contains(c.senders, in.From) {
			return nil, connectors.Errorf(connectors.CodeInvalidInput, "from must be one of the configured senders: %s", strings.Join(c.senders, ", "))
		}
		email.From = in.From
	}
	var err error
	if email.To, err = addresses("to", in.To, 1); err != nil {
		return nil, err
	}
	if email.Cc, err = addresses("cc", in.Cc, 0); err != nil {
		return nil, err
	}
	if email.Bcc, err = addresses("bcc", in.Bcc, 0); err != nil {
		return nil, err
	}
	if in.ReplyTo != "" {
		r, err := addresses("reply_to", addressList{in.ReplyTo}, 1)
		if err != nil {
			return nil, err
		}
		email.ReplyTo = r[0]
	}

	if in.Template != "" {
		if in.Subject != "" || in.Text != "" || in.HTML != "" {
			return nil, connectors.Errorf(connectors.CodeInvalidInput, "give either a template or subject with text/html, not both")
		}
		content, err := notifier.Render(in.Template, in.Data, c.publicURL)
		if err != nil {
			// Render's errors name the template and field, never the value.
			return nil, &connectors.StepError{Code: connectors.CodeInvalidInput, Message: strings.TrimPrefix(err.Error(), "notifier: "), Err: err}
		}
		email.Subject, email.Text, email.Html = content.Subject, content.Text, content.HTML
		return email, nil
	}
	switch {
	case in.Data != nil:
		return nil, connectors.Errorf(connectors.CodeInvalidInput, "data is only for a template")
	case in.Subject == "":
		return nil, connectors.Errorf(connectors.CodeInvalidInput, "subject is required without a template")
	case len(in.Subject) > notifier.MaxSubject || strings.IndexFunc(in.Subject, isControl) >= 0:
		return nil, connectors.Errorf(connectors.CodeInvalidInput, "subject must be one line of at most %d bytes without control characters", notifier.MaxSubject)
	case in.Text == "" && in.HTML == "":
		return nil, connectors.Errorf(connectors.CodeInvalidInput, "give text, html or both (or a template)")
	case len(in.Text) > MaxBodyBytes || len(in.HTML) > MaxBodyBytes:
		return nil, connectors.Errorf(connectors.CodeInvalidInput, "text and html may each be at most %d bytes", MaxBodyBytes)
	}
	email.Subject, email.Text, email.Html = in.Subject, in.Text, in.HTML
	return email, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// addresses parses each address of a field as one RFC 5322 address without control
// characters (so nothing can smuggle in another header or recipient) and returns them
// in the form Resend takes.
func addresses(field string, list addressList, minCount int) ([]string, error) {
	if len(list) < minCount || len(list) > MaxRecipients {
		return nil, connectors.Errorf(connectors.CodeInvalidInput, "%s must hold %d to %d addresses", field, minCount, MaxRecipients)
	}
	out := make([]string, 0, len(list))
	for i, s := range list {
		a, err := parseAddress(s)
		if err != nil {
			// The address is not echoed: step records keep error messages.
			return nil, connectors.Errorf(connectors.CodeInvalidInput, "%s[%d] is not one valid email address", field, i)
		}
		if a.Name == "" {
			out = append(out, a.Address)
		} else {
			out = append(out, a.String())
		}
	}
	return out, nil
}

func parseAddress(s string) (*mail.Address, error) {
	if len(s) > maxAddress || strings.IndexFunc(s, isControl) >= 0 {
		return nil, errors.New("not an address")
	}
	return mail.ParseAddress(s)
}

func (c *Connector) apiKey(ctx context.Context, ownerID, connection string) (string, error) {
	if len(connection) > maxConnection {
		return "", connectors.Errorf(connectors.CodeInvalidInput, "connection must be at most %d characters", maxConnection)
	}
	creds, err := c.creds.Resolve(ctx, ownerID, Name, connection)
	switch {
	case errors.Is(err, connectors.ErrNoCredentials):
		return "", noCredentials(connection, err)
	case err != nil && ctx.Err() != nil:
		return "", ctx.Err()
	case err != nil:
		return "", &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
			Message: "the email connection's credentials could not be loaded"}
	case creds["api_key"] == "":
		return "", noCredentials(connection, nil)
	}
	return creds["api_key"], nil
}

func noCredentials(connection string, err error) error {
	which := "the owner has no email connection"
	if connection != "" {
		which = fmt.Sprintf("the owner has no email connection named %q", connection)
	}
	return &connectors.StepError{Code: connectors.CodeNoCredentials, Err: err,
		Message: which + " with an api_key, and the server has no default Resend API key"}
}

// idempotencyKey is the same for every attempt of one step and differs between steps.
func idempotencyKey(s connectors.Step) string {
	key := "levqor/email/" + s.JobID + "/" + s.StepID
	if len(key) <= resendapi.MaxIdempotencyKey && strings.IndexFunc(key, func(r rune) bool { return r <= ' ' || r >= 0x7f }) < 0 {
		return key
	}
	sum := sha256.Sum256([]byte(s.JobID + "\x00" + s.StepID))
	return "levqor/email/sha256-" + hex.EncodeToString(sum[:])
}

// sendError maps a failed send to a *StepError; its message carries Resend's status and
// error name (and, for a refused email, Resend's scrubbed explanation), never the key.
func sendError(err error) error {
	var re *resendapi.Error
	if !errors.As(err, &re) {
		return err // ctx's error, which the registry turns into timeout or canceled
	}
	status := fmt.Sprintf("%d", re.Status)
	if re.Name != "" {
		status += " " + re.Name
	}
	se := &connectors.StepError{Err: err, Retryable: re.Retryable(), RetryAfter: re.RetryAfter}
	switch re.Kind {
	case resendapi.KindRateLimited:
		se.Code, se.Message = CodeRateLimited, "Resend's rate limit was reached ("+status+")"
	case resendapi.KindQuotaExceeded:
		se.Code, se.Message = CodeRateLimited, "Resend's sending quota is used up ("+status+")"
	case resendapi.KindAuth:
		se.Code, se.Message = CodeAuthFailed, "Resend refused the API key ("+status+"); check the email connection"
	case resendapi.KindInvalid:
		se.Code, se.Message = CodeBadRequest, "Resend refused the email ("+status+")"
		if re.Message != "" {
			se.Message += ": " + re.Message
		}
	case resendapi.KindIdempotencyMismatch:
		se.Code, se.Message = CodeIdempotencyConflict, "Resend already took a different email under this step's idempotency key ("+
			status+"); the step's input changed between attempts, so it is not sent again"
	case resendapi.KindIdempotencyInProgress:
		se.Code, se.Message = CodeIdempotencyConflict, "an earlier attempt of this step is still being sent ("+status+")"
	case resendapi.KindUnavailable:
		se.Code, se.Message = connectors.CodeUpstreamError, "Resend failed ("+status+")"
	case resendapi.KindRejected:
		se.Code, se.Message = connectors.CodeUpstreamError, "Resend answered "+status+"; check LEVQOR_RESEND_BASE_URL"
	case resendapi.KindTimeout:
		se.Code, se.Message = connectors.CodeTimeout, "Resend did not answer in time"
	case resendapi.KindTooLarge:
		se.Code, se.Message = connectors.CodeResponseTooLarge, fmt.Sprintf("Resend's response is larger than %d bytes", resendapi.MaxResponseBytes)
	case resendapi.KindMalformed:
		se.Code, se.Message = connectors.CodeUpstreamError, "Resend's response could not be read (a retry reuses the idempotency key, so it cannot send twice)"
	default:
		se.Code, se.Message = connectors.CodeUpstreamError, "the request to Resend failed before a response arrived"
	}
	return se
}
