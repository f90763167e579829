// Package httpcall is the "http" connector: one action, request, that calls a URL the user
// supplied through the outbound guard and returns the status, a few headers and the body.
// Secrets (an Authorization header, an api_key parameter) come from the owner's http
// connection that the step names, added at send time, never from the step's input:
// that input is stored in the job and shown by the API and in webhooks.
package httpcall

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/outbound"
)

// Name is the connector's name in steps.
const Name = "http"

const (
	// MaxResponseBytes is the largest response body the connector reads.
	MaxResponseBytes = 1 << 20
	// MaxRetryAfter caps the Retry-After hint passed on from a 429.
	MaxRetryAfter = time.Hour

	defaultTimeout = 10 * time.Second
	maxTimeout     = 30 * time.Second
	userAgent      = "Levqor-HTTP-Connector/1"
)

// requestSchema avoids propertyNames: jsonschema v6.0.3 may report its errors at a wrong
// location (santhosh-tekuri/jsonschema PR #269); patternProperties says the same thing.
const requestSchema = `{
	"type": "object",
	"additionalProperties": false,
	"required": ["url"],
	"properties": {
		"method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"], "default": "GET"},
		"url": {"type": "string", "minLength": 1, "maxLength": 2048},
		"headers": {
			"type": "object",
			"maxProperties": 32,
			"patternProperties": {
				"^(?i:host|content-length|transfer-encoding|connection)$": false,
				"^[!#$%&'*+.^_|~0-9A-Za-z-]+$": {"type": "string", "maxLength": 8192}
			},
			"additionalProperties": false
		},
		"json": {"description": "A JSON body, sent as application/json."},
		"text": {"type": "string", "maxLength": 1048576, "description": "A text body, sent as text/plain."},
		"timeout_ms": {"type": "integer", "minimum": 1, "maximum": 30000, "default": 10000},
		"connection": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$",
			"description": "The owner's http connection whose headers and query parameters are added to the request (PUT /api/v1/connections/http). None unless named."}
	},
	"dependentSchemas": {"text": {"properties": {"json": false}}}
}`

// Connector is the http connector.
type Connector struct {
	client *http.Client
	creds  connectors.Credentials
}

// New returns the http connector; every request, redirects included, goes through guard.
// Steps naming a connection fail no_credentials unless WithCredentials is called.
func New(guard *outbound.Guard) *Connector {
	// The per-request deadline comes from the step's context and timeout_ms.
	return &Connector{client: guard.Client(maxTimeout)}
}

// WithCredentials makes creds resolve the http connections steps name, and returns c.
// Call it before the connector is registered.
func (c *Connector) WithCredentials(creds connectors.Credentials) *Connector {
	c.creds = creds
	return c
}

var (
	_ connectors.Connector          = (*Connector)(nil)
	_ connectors.HeaderCredentialed = (*Connector)(nil)
	_ connectors.SecretGuard        = (*Connector)(nil)
)

// Name implements connectors.Connector.
func (*Connector) Name() string { return Name }

// CredentialHeaders implements connectors.HeaderCredentialed: an http connection
// holds headers ("Authorization") and query parameters ("?api_key").
func (*Connector) CredentialHeaders() bool { return true }

// Actions implements connectors.Connector.
func (*Connector) Actions() []connectors.Action {
	return []connectors.Action{{
		Name: "request",
		Description: "Sends an HTTP request to a public URL and returns {status, headers, json|text}. " +
			"5xx and 429 responses fail the step as retryable, other 4xx as final.",
		InputSchema: json.RawMessage(requestSchema),
		OutputSchema: json.RawMessage(`{
			"type": "object", "additionalProperties": false, "required": ["status", "headers"],
			"properties": {
				"status": {"type": "integer", "minimum": 100, "maximum": 599, "examples": [200]},
				"headers": {"type": "object", "additionalProperties": {"type": "string"}},
				"json": {"description": "The response body, when it is JSON: any JSON value."},
				"text": {"type": "string", "description": "The response body, when it is not JSON."}
			}
		}`),
	}}
}

type requestInput struct {
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers"`
	JSON      json.RawMessage   `json:"json"`
	Text      *string           `json:"text"`
	TimeoutMS float64           `json:"timeout_ms"` // float64: the schema's integer admits 1e3
	// Connection names the owner's http connection to add; "" adds none. Never
	// implicit: the default connection's token must not go to every URL a step names.
	Connection string `json:"connection"`
}

// Output is what request returns.
type Output struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	JSON    json.RawMessage   `json:"json,omitempty"`
	Text    *string           `json:"text,omitempty"`
}

// reportedHeaders are the response headers copied to the output.
var reportedHeaders = []string{"Content-Type", "Content-Length", "Location"}

// Run implements connectors.Connector.
func (c *Connector) Run(ctx context.Context, action string, input json.RawMessage) (json.RawMessage, error) {
	if action != "request" {
		return nil, connectors.Errorf(connectors.CodeUnknownAction, "connector %q has no action %q", Name, action)
	}
	var in requestInput
	if err := json.Unmarshal(input, &in); err != nil {
		return nil, &connectors.StepError{Code: connectors.CodeInvalidInput, Message: "input does not match the request schema", Err: err}
	}
	// Intake refuses literal secrets; this catches those a reference resolved to.
	if ptr, msg := inputSecret(in.Headers, in.URL); msg != "" {
		return nil, connectors.Errorf(connectors.CodeInvalidInput, "%s: %s", ptr, msg)
	}
	req, timeout, err := newRequest(ctx, in)
	if err != nil {
		return nil, err
	}
	client := c.client
	if in.Connection != "" {
		added, err := c.addConnection(ctx, req, in.Connection)
		if err != nil {
			return nil, err
		}
		client = dropOnRedirect(c.client, added)
	}
	// At-least-once execution: the same key on every attempt lets the upstream
	// deduplicate a retried write. The input's own header, if any, wins.
	if step, ok := connectors.StepFrom(ctx); ok && step.JobID != "" && req.Method != http.MethodGet && req.Method != http.MethodHead &&
		req.Header.Get("Idempotency-Key") == "" {
		req.Header.Set("Idempotency-Key", step.IdempotencyKey())
	}
	reqCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req = req.WithContext(reqCtx)

	resp, err := client.Do(req)
	if err != nil {
		return nil, transportError(ctx, reqCtx, timeout, err)
	}
	defer resp.Body.Close()

	if err := statusError(resp); err != nil {
		return nil, err
	}
	if resp.ContentLength > MaxResponseBytes {
		return nil, tooLarge()
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, transportError(ctx, reqCtx, timeout, err)
	}
	if len(body) > MaxResponseBytes {
		return nil, tooLarge()
	}
	out, err := json.Marshal(output(resp, body))
	if err != nil {
		return nil, fmt.Errorf("encode output: %w", err)
	}
	if len(out) > connectors.MaxOutputBytes {
		// A body just under the limit can grow past it once escaped into a JSON string.
		return nil, connectors.Errorf(connectors.CodeResponseTooLarge,
			"the response does not fit in a step's output (%d bytes)", connectors.MaxOutputBytes)
	}
	return out, nil
}

func newRequest(ctx context.Context, in requestInput) (*http.Request, time.Duration, error) {
	u, err := url.Parse(in.URL)
	if err != nil {
		return nil, 0, connectors.Errorf(connectors.CodeInvalidInput, "url is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, 0, connectors.Errorf(connectors.CodeInvalidInput, "url must start with http:// or https://")
	}
	if u.Host == "" {
		return nil, 0, connectors.Errorf(connectors.CodeInvalidInput, "url has no host")
	}
	if u.User != nil {
		// Credentials in a URL end up in logs and error texts; headers are the place for them.
		return nil, 0, connectors.Errorf(connectors.CodeInvalidInput, "url must not contain credentials; send them in an Authorization header")
	}
	method := in.Method
	if method == "" {
		method = http.MethodGet
	}
	timeout := defaultTimeout
	if in.TimeoutMS > 0 {
		timeout = min(time.Duration(in.TimeoutMS)*time.Millisecond, maxTimeout)
	}

	var body io.Reader
	contentType := ""
	switch {
	case len(in.JSON) > 0 && in.Text != nil:
		return nil, 0, connectors.Errorf(connectors.CodeInvalidInput, "send either json or text, not both")
	case len(in.JSON) > 0:
		body, contentType = bytes.NewReader(in.JSON), "application/json"
	case in.Text != nil:
		body, contentType = strings.NewReader(*in.Text), "text/plain; charset=utf-8"
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, 0, connectors.Errorf(connectors.CodeInvalidInput, "url or method is not usable")
	}
	req.Header.Set("User-Agent", userAgent)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for name, value := range in.Headers {
		if !validHeaderValue(value) {
			// The value is not echoed: headers often carry tokens.
			return nil, 0, connectors.Errorf(connectors.CodeInvalidInput, "header %q has a control character in its value", name)
		}
		req.Header.Set(name, value)
	}
	return req, timeout, nil
}

func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

// transportError maps a failed round trip to a StepError without the error's text, which
// names the full URL (query tokens included).
func transportError(stepCtx, reqCtx context.Context, timeout time.Duration, err error) error {
	if se := connectors.Refused(err); se != nil {
		return se
	}
	switch {
	case stepCtx.Err() != nil:
		return stepCtx.Err() // the registry turns it into timeout or canceled
	case reqCtx.Err() != nil || isTimeout(err):
		return &connectors.StepError{Code: connectors.CodeTimeout, Retryable: true, Err: err,
			Message: fmt.Sprintf("no complete response within %s", timeout)}
	case errors.Is(err, outbound.ErrTooManyRedirects):
		return &connectors.StepError{Code: connectors.CodeUpstreamError, Err: err,
			Message: fmt.Sprintf("stopped after %d redirects", outbound.MaxRedirects)}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: !dnsErr.IsNotFound, Err: err,
			Message: fmt.Sprintf("could not resolve %q", dnsErr.Name)}
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr) {
		return &connectors.StepError{Code: connectors.CodeUpstreamError, Err: err,
			Message: "the server's TLS certificate could not be verified"}
	}
	return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
		Message: "the request failed before a response arrived"}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// statusError fails the step on 4xx and 5xx; the body is never quoted.
func statusError(resp *http.Response) error {
	code := resp.StatusCode
	switch {
	case code == http.StatusTooManyRequests:
		return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true,
			RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
			Message:    "upstream responded 429 Too Many Requests"}
	case code >= 500:
		return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true,
			Message: fmt.Sprintf("upstream responded %s", statusText(code))}
	case code >= 400:
		return &connectors.StepError{Code: connectors.CodeUpstreamError,
			Message: fmt.Sprintf("upstream responded %s", statusText(code))}
	}
	return nil
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return strconv.Itoa(code)
}

// retryAfter parses a Retry-After header (delay-seconds or an HTTP date), capped at MaxRetryAfter.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, MaxRetryAfter))
}

func tooLarge() error {
	return connectors.Errorf(connectors.CodeResponseTooLarge, "the response is larger than %d bytes", MaxResponseBytes)
}

func output(resp *http.Response, body []byte) Output {
	out := Output{Status: resp.StatusCode, Headers: map[string]string{}}
	for _, h := range reportedHeaders {
		if v := resp.Header.Get(h); v != "" {
			out.Headers[strings.ToLower(h)] = v
		}
	}
	if len(body) == 0 {
		return out
	}
	if isJSON(resp.Header.Get("Content-Type")) && json.Valid(body) {
		var compact bytes.Buffer
		if json.Compact(&compact, body) == nil {
			out.JSON = compact.Bytes()
			return out
		}
	}
	text := string(body)
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	out.Text = &text
	return out
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// Secret headers and query parameters: what a step input may not carry, since it is
// stored in the job and shown by the API and in webhooks. Matched ignoring case.
var (
	secretHeaders = []string{"Authorization", "Proxy-Authorization", "X-Api-Key", "Cookie"}
	secretParams  = []string{"api_key", "apikey", "access_token", "token", "auth_token", "client_secret", "password", "secret"}
)

// InputSecret implements connectors.SecretGuard for an input about to be stored
// (references unresolved): the pointer of a secret header or query parameter.
func (*Connector) InputSecret(action string, input json.RawMessage) (pointer, message string) {
	if action != "request" {
		return "", ""
	}
	// Loosely typed: the schema is checked elsewhere, and with references "headers"
	// may be a string ("{{payload.headers}}"), checked once resolved, when the step runs.
	var in struct {
		Headers json.RawMessage `json:"headers"`
		URL     json.RawMessage `json:"url"`
	}
	if json.Unmarshal(input, &in) != nil {
		return "", ""
	}
	var headers map[string]json.RawMessage
	_ = json.Unmarshal(in.Headers, &headers)
	names := make(map[string]string, len(headers))
	for name := range headers {
		names[name] = ""
	}
	var u string
	_ = json.Unmarshal(in.URL, &u)
	return inputSecret(names, u)
}

// inputSecret returns the pointer of a secret header among headers, or of the URL
// when its query has a secret parameter, and a message naming it (never its value).
func inputSecret(headers map[string]string, rawURL string) (pointer, message string) {
	for _, name := range sortedKeys(headers) {
		for _, h := range secretHeaders {
			if strings.EqualFold(name, h) {
				return "/headers/" + pointerEscape(name), fmt.Sprintf(
					"the %s header is a secret and would be stored in the job; put it in an http connection "+
						"(PUT /api/v1/connections/http with {\"secrets\": {%q: \"…\"}}) and name it in the step's \"connection\"", h, h)
			}
		}
	}
	_, query, ok := strings.Cut(rawURL, "?")
	if !ok {
		return "", ""
	}
	query, _, _ = strings.Cut(query, "#")
	for _, pair := range strings.Split(query, "&") {
		name, _, _ := strings.Cut(pair, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		for _, p := range secretParams {
			if strings.EqualFold(name, p) {
				return "/url", fmt.Sprintf(
					"the url's %s query parameter is a secret and would be stored in the job; put it in an http connection "+
						"(PUT /api/v1/connections/http with {\"secrets\": {\"?%s\": \"…\"}}) and name it in the step's \"connection\"", p, p)
			}
		}
	}
	return "", ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// pointerEscape escapes an object key for a JSON Pointer (RFC 6901).
func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// addConnection adds the headers and query parameters of the owner's http
// connection name to req, replacing any of the same name, and returns the header
// names it set. Its errors never contain the secrets.
func (c *Connector) addConnection(ctx context.Context, req *http.Request, name string) ([]string, error) {
	step, ok := connectors.StepFrom(ctx)
	if !ok || c.creds == nil {
		return nil, connectors.Errorf(connectors.CodeNoCredentials, "no http connection named %q can be used here", name)
	}
	secrets, err := c.creds.Resolve(ctx, step.OwnerID, Name, name)
	switch {
	case errors.Is(err, connectors.ErrNoCredentials):
		return nil, connectors.Errorf(connectors.CodeNoCredentials, "no http connection named %q; add one with PUT /api/v1/connections/http?name=%s", name, name)
	case err != nil:
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
			Message: "the http connection's credentials could not be read"}
	}
	var added []string
	q, params := req.URL.Query(), 0
	for field, value := range secrets {
		if connectors.CheckHeaderField(field, value) != "" {
			// Checked when stored; a field that no longer passes is skipped, not sent.
			continue
		}
		if param, ok := strings.CutPrefix(field, connectors.QueryFieldPrefix); ok {
			q.Set(param, value)
			params++
			continue
		}
		req.Header.Set(field, value)
		added = append(added, field)
	}
	if params > 0 {
		req.URL.RawQuery = q.Encode() // the step's own query is kept as it was only without them
	}
	return added, nil
}

// dropOnRedirect returns a client like base for a request carrying a connection:
// a redirect to another host (port included) or from https to http loses the
// connection's headers — Go's client drops only Authorization, WWW-Authenticate and
// Cookie, and only for another host name — and no redirect sends a Referer, which
// would repeat the connection's query parameters to the next server.
func dropOnRedirect(base *http.Client, headers []string) *http.Client {
	cl := *base
	check := base.CheckRedirect
	cl.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if check != nil {
			if err := check(req, via); err != nil {
				return err
			}
		}
		req.Header.Del("Referer")
		first := via[0].URL
		if req.URL.Host != first.Host || (first.Scheme == "https" && req.URL.Scheme != "https") {
			for _, h := range headers {
				req.Header.Del(h)
			}
		}
		return nil
	}
	return &cl
}
