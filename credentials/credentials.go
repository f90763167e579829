// Package credentials keeps connector credentials per owner, encrypted at rest
// (AES-256-GCM, bound to the owner, connector and connection name), and resolves
// them for the steps that need them: the owner's connection, else the server-wide
// defaults from the environment. Only metadata (field names, last four characters,
// timestamps) ever leaves it, except through Resolve.
package credentials

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/connectors"
)

// DefaultName is the name of the connection a step uses when it names none.
const DefaultName = "default"

// MaxSecretBytes is the largest value of one credential field.
const MaxSecretBytes = 8192

// validName is the pattern of connection names (components/schemas/ConnectionName).
var validName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Field is the clear metadata of one credential field.
type Field struct {
	Name  string `json:"name"`
	Last4 string `json:"last4"` // at most four characters, and at most a quarter of the secret
}

// Connection is a stored connection's metadata; it never holds a secret.
type Connection struct {
	OwnerID   string
	Connector string
	Name      string
	Fields    []Field // sorted by name
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Record is a connection as the database keeps it: its metadata and its secrets
// sealed by the Service.
type Record struct {
	Connection
	Sealed []byte
}

// Store is what the database keeps for credentials. Connections are unique by
// (OwnerID, Connector, Name).
type Store interface {
	// PutConnection inserts r, or replaces the connection of the same owner,
	// connector and name; a replaced connection keeps its CreatedAt. r.UpdatedAt is
	// the time of the write (and CreatedAt of a new row). It returns the stored metadata.
	PutConnection(ctx context.Context, r Record) (Connection, error)
	// GetConnection returns one connection with its sealed secrets, or a
	// levqor.ENotFound error.
	GetConnection(ctx context.Context, ownerID, connector, name string) (Record, error)
	// ListConnections returns an owner's connections (metadata only), sorted by
	// connector and name, at most 1000.
	ListConnections(ctx context.Context, ownerID string) ([]Connection, error)
	// DeleteConnection removes one connection, or returns a levqor.ENotFound error.
	DeleteConnection(ctx context.Context, ownerID, connector, name string) error
}

// Service manages owners' connections and resolves them for steps. It is safe
// for concurrent use.
type Service struct {
	store    Store
	key      Key
	defaults map[string]map[string]string
}

var _ connectors.Credentials = (*Service)(nil)

// NewService returns a Service keeping connections in store, sealed with key.
// defaults are the server-wide credentials by connector and field (see
// ServerDefaults), used when an owner has no default connection; nil means none.
func NewService(store Store, key Key, defaults map[string]map[string]string) *Service {
	if key.aead == nil {
		panic("credentials: NewService with a zero Key") // a programming error: keys come from ParseKey or LoadKey
	}
	d := make(map[string]map[string]string, len(defaults))
	for c, fields := range defaults {
		d[c] = maps.Clone(fields)
	}
	return &Service{store: store, key: key, defaults: d}
}

// PutInput is a connection to store.
type PutInput struct {
	Connector string
	// Fields are the connector's credential fields, from the connector catalogue;
	// Secrets must hold exactly these. None means the connector takes no credentials.
	Fields []string
	// Headers means the connector's connections hold headers and query parameters
	// of the owner's choosing instead of Fields (connectors.HeaderCredentialed):
	// each secret's name must pass connectors.CheckHeaderField.
	Headers bool
	Name    string // "" means DefaultName
	Secrets map[string]string
}

// Put seals in.Secrets and stores them as the owner's connection, replacing one
// of the same connector and name. It returns levqor.ENotFound when the connector
// takes no credentials and levqor.EInvalid (with a field error per problem) when
// the secrets are not exactly the connector's fields, each a non-empty UTF-8
// string of at most MaxSecretBytes bytes.
func (s *Service) Put(ctx context.Context, ownerID string, in PutInput) (Connection, error) {
	if len(in.Fields) == 0 && !in.Headers {
		return Connection{}, levqor.Errorf(levqor.ENotFound, "There is no connector %s that takes credentials.", shown(in.Connector))
	}
	name, err := nameOrDefault(in.Name)
	if err != nil {
		return Connection{}, err
	}
	check := checkSecrets
	if in.Headers {
		check = checkHeaderSecrets
	}
	if err := check(in.Connector, in.Fields, in.Secrets); err != nil {
		return Connection{}, err
	}
	fields := make([]Field, 0, len(in.Secrets))
	for _, f := range slices.Sorted(maps.Keys(in.Secrets)) {
		fields = append(fields, Field{Name: f, Last4: last4(in.Secrets[f])})
	}
	sealed, err := s.key.seal(in.Secrets, ownerID, in.Connector, name)
	if err != nil {
		return Connection{}, err
	}
	now := time.Now().UTC()
	c, err := s.store.PutConnection(ctx, Record{
		Connection: Connection{OwnerID: ownerID, Connector: in.Connector, Name: name, Fields: fields, CreatedAt: now, UpdatedAt: now},
		Sealed:     sealed,
	})
	if err != nil {
		return Connection{}, fmt.Errorf("put %s connection: %w", in.Connector, err)
	}
	return c, nil
}

// Get returns the metadata of the owner's connection, or levqor.ENotFound.
// name "" means DefaultName.
func (s *Service) Get(ctx context.Context, ownerID, connector, name string) (Connection, error) {
	name, err := nameOrDefault(name)
	if err != nil {
		return Connection{}, err
	}
	r, err := s.store.GetConnection(ctx, ownerID, connector, name)
	if err != nil {
		return Connection{}, notFound(err, connector, name)
	}
	return r.Connection, nil
}

// List returns the metadata of the owner's connections, sorted by connector and name.
func (s *Service) List(ctx context.Context, ownerID string) ([]Connection, error) {
	return s.store.ListConnections(ctx, ownerID)
}

// Delete removes the owner's connection, or returns levqor.ENotFound.
// name "" means DefaultName.
func (s *Service) Delete(ctx context.Context, ownerID, connector, name string) error {
	name, err := nameOrDefault(name)
	if err != nil {
		return err
	}
	return notFound(s.store.DeleteConnection(ctx, ownerID, connector, name), connector, name)
}

// Resolve implements connectors.Credentials: the owner's connection named name
// (DefaultName when ""), else — for the default connection only — the server-wide
// defaults of the connector, else an error matching connectors.ErrNoCredentials.
// A named connection that does not exist never falls back to the defaults, nor
// does one that cannot be decrypted: its error matches both ErrNoCredentials and
// ErrUndecryptable. Errors never contain secrets; the caller owns the returned map.
func (s *Service) Resolve(ctx context.Context, ownerID, connector, name string) (map[string]string, error) {
	asked := name
	name, err := nameOrDefault(asked)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a valid connection name", connectors.ErrNoCredentials, shown(asked))
	}
	r, err := s.store.GetConnection(ctx, ownerID, connector, name)
	switch {
	case err == nil:
		secrets, err := s.key.open(r.Sealed, ownerID, connector, name)
		if err != nil {
			// No usable credentials, so the step fails at once rather than retrying;
			// the owner's connection still shadows the server defaults.
			return nil, fmt.Errorf("%w: %s connection %q: %w", connectors.ErrNoCredentials, connector, name, err)
		}
		return secrets, nil
	case levqor.ErrorCode(err) != levqor.ENotFound:
		return nil, fmt.Errorf("read %s connection %q: %w", connector, name, err)
	case name != DefaultName:
		return nil, fmt.Errorf("%w: there is no %s connection named %q", connectors.ErrNoCredentials, connector, name)
	}
	if d, ok := s.defaults[connector]; ok {
		return maps.Clone(d), nil
	}
	return nil, fmt.Errorf("%w for %s: store a connection with PUT /api/v1/connections/%s", connectors.ErrNoCredentials, connector, connector)
}

// nameOrDefault returns name, DefaultName for "", or a levqor.EInvalid error.
func nameOrDefault(name string) (string, error) {
	if name == "" {
		return DefaultName, nil
	}
	if !validName.MatchString(name) {
		return "", &levqor.Error{Code: levqor.EInvalid, Message: "A connection name is 1-64 letters, digits, '.', '_' or '-'.",
			Fields: []levqor.FieldError{{Pointer: "/name", Detail: "must match ^[A-Za-z0-9._-]{1,64}$"}}}
	}
	return name, nil
}

// notFound rewords the store's not-found error for the connection; other errors pass.
func notFound(err error, connector, name string) error {
	if levqor.ErrorCode(err) == levqor.ENotFound {
		return levqor.Errorf(levqor.ENotFound, "No %s connection named %q.", shown(connector), name)
	}
	return err
}

// checkSecrets returns a levqor.EInvalid error unless secrets holds exactly the
// connector's fields, each a non-empty UTF-8 string of at most MaxSecretBytes bytes.
func checkSecrets(connector string, fields []string, secrets map[string]string) error {
	var errs []levqor.FieldError
	takes := strings.Join(fields, ", ")
	for _, f := range slices.Sorted(maps.Keys(secrets)) {
		ptr := "/secrets/" + pointerEscape(f)
		switch v := secrets[f]; {
		case !slices.Contains(fields, f):
			errs = append(errs, levqor.FieldError{Pointer: ptr, Detail: fmt.Sprintf("%s has no credential field %s; it takes: %s", connector, shown(f), takes)})
		case v == "":
			errs = append(errs, levqor.FieldError{Pointer: ptr, Detail: "must not be empty"})
		case len(v) > MaxSecretBytes:
			errs = append(errs, levqor.FieldError{Pointer: ptr, Detail: fmt.Sprintf("must be at most %d bytes", MaxSecretBytes)})
		case !utf8.ValidString(v):
			errs = append(errs, levqor.FieldError{Pointer: ptr, Detail: "must be UTF-8 text"})
		}
	}
	for _, f := range fields {
		if _, ok := secrets[f]; !ok {
			errs = append(errs, levqor.FieldError{Pointer: "/secrets/" + pointerEscape(f), Detail: fmt.Sprintf("missing; %s takes: %s", connector, takes)})
		}
	}
	if len(errs) == 0 {
		return nil
	}
	msg := "The secrets are not the connector's credential fields."
	if len(errs) == 1 {
		msg = "secrets: " + errs[0].Detail + "."
	}
	return &levqor.Error{Code: levqor.EInvalid, Message: msg, Fields: errs}
}

// checkHeaderSecrets returns a levqor.EInvalid error unless every secret is a
// header or query parameter field (connectors.CheckHeaderField) of at most
// MaxSecretBytes bytes, and no two name the same header (header names ignore case).
func checkHeaderSecrets(connector string, _ []string, secrets map[string]string) error {
	var errs []levqor.FieldError
	seen := map[string]string{}
	for _, f := range slices.Sorted(maps.Keys(secrets)) {
		ptr := "/secrets/" + pointerEscape(f)
		v := secrets[f]
		detail := connectors.CheckHeaderField(f, v)
		switch {
		case detail != "":
		case v == "":
			detail = "must not be empty"
		case len(v) > MaxSecretBytes:
			detail = fmt.Sprintf("must be at most %d bytes", MaxSecretBytes)
		case !utf8.ValidString(v):
			detail = "must be UTF-8 text"
		case !strings.HasPrefix(f, connectors.QueryFieldPrefix) && seen[strings.ToLower(f)] != "":
			detail = fmt.Sprintf("names the same header as %s", shown(seen[strings.ToLower(f)]))
		}
		if detail != "" {
			errs = append(errs, levqor.FieldError{Pointer: ptr, Detail: detail})
		}
		if !strings.HasPrefix(f, connectors.QueryFieldPrefix) {
			seen[strings.ToLower(f)] = f
		}
	}
	if len(errs) == 0 {
		return nil
	}
	msg := fmt.Sprintf("The secrets of a %s connection are headers, or ?name for query parameters.", connector)
	if len(errs) == 1 {
		msg = "secrets: " + errs[0].Detail + "."
	}
	return &levqor.Error{Code: levqor.EInvalid, Message: msg, Fields: errs}
}

// pointerEscape escapes a JSON object key for a JSON Pointer (RFC 6901).
func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// shown quotes a caller-supplied name for a message, eliding one too long to help.
func shown(s string) string {
	if len(s) > 64 || !utf8.ValidString(s) {
		return "(a name too long or not UTF-8)"
	}
	return fmt.Sprintf("%q", s)
}

// last4 returns the last characters of secret that may be shown: four, or fewer
// so as never to reveal more than a quarter of it (none of a secret under four
// characters).
func last4(secret string) string {
	n := min(4, utf8.RuneCountInString(secret)/4)
	if n == 0 {
		return ""
	}
	i := len(secret)
	for range n {
		_, size := utf8.DecodeLastRuneInString(secret[:i])
		i -= size
	}
	return secret[i:]
}

// DeriveKey returns a key for purpose derived from the server's credentials key
// (Key.Derive): what signs approval links, so that every instance sharing
// LEVQOR_SECRET_KEY verifies the links any of them sent.
func (s *Service) DeriveKey(purpose string) []byte { return s.key.Derive(purpose) }

// webhookSecretConnector is the connector part of the additional data that binds a
// sealed webhook signing secret to its owner. No connector can have this name (the
// ':' is not allowed), so no connection's sealed value opens as a webhook secret.
const webhookSecretConnector = "levqor:webhook-secret"

// SealWebhookSecret seals an owner's webhook signing secret (jobs.SecretSealer),
// bound to the owner so that the row copied to another owner fails to open.
func (s *Service) SealWebhookSecret(ownerID, secret string) ([]byte, error) {
	return s.key.seal(map[string]string{"secret": secret}, ownerID, webhookSecretConnector, "")
}

// OpenWebhookSecret opens what SealWebhookSecret sealed for ownerID (jobs.SecretSealer).
// Its errors match ErrUndecryptable and never contain the secret.
func (s *Service) OpenWebhookSecret(ownerID string, sealed []byte) (string, error) {
	m, err := s.key.open(sealed, ownerID, webhookSecretConnector, "")
	if err != nil {
		return "", err
	}
	secret, ok := m["secret"]
	if !ok || secret == "" {
		return "", fmt.Errorf("%w: its contents are malformed", ErrUndecryptable)
	}
	return secret, nil
}

// triggerSecretConnector binds a sealed inbound-trigger secret to its owner and
// trigger id (the name part), apart from connections and webhook secrets.
const triggerSecretConnector = "levqor:trigger-secret"

// SealTriggerSecret seals the signing secret of an inbound trigger (triggers.Sealer),
// bound to its owner and id so that a row copied to another trigger fails to open.
func (s *Service) SealTriggerSecret(ownerID, triggerID, secret string) ([]byte, error) {
	return s.key.seal(map[string]string{"secret": secret}, ownerID, triggerSecretConnector, triggerID)
}

// OpenTriggerSecret opens what SealTriggerSecret sealed (triggers.Sealer). Its errors
// match ErrUndecryptable and never contain the secret.
func (s *Service) OpenTriggerSecret(ownerID, triggerID string, sealed []byte) (string, error) {
	m, err := s.key.open(sealed, ownerID, triggerSecretConnector, triggerID)
	if err != nil {
		return "", err
	}
	secret, ok := m["secret"]
	if !ok || secret == "" {
		return "", fmt.Errorf("%w: its contents are malformed", ErrUndecryptable)
	}
	return secret, nil
}
