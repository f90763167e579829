// Package newsletter keeps newsletter subscriptions with double opt-in: a request
// stores only the address's keyed hash and mails a sealed, expiring confirmation
// token; the token, posted back, confirms the subscription and stores the address.
package newsletter

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/analytics"
	"github.com/levqor/levqor/notifier"
)

const (
	// TokenTTL is how long a confirmation link works.
	TokenTTL = 72 * time.Hour
	// ResendInterval is the least time between two confirmation emails to one pending
	// address, so that the public form cannot be used to flood someone's inbox.
	ResendInterval = 10 * time.Minute
	// MaxEmailBytes is the longest address accepted (RFC 5321's path limit).
	MaxEmailBytes = 254
	// MaxSourceBytes is the longest source label kept.
	MaxSourceBytes = 64
	// tokenContext separates this use of the hash secret from its others.
	tokenContext = "levqor/newsletter-token/v1"
)

// Status is a subscription's state.
type Status string

// The statuses of a subscription.
const (
	Pending   Status = "pending"
	Confirmed Status = "confirmed"
)

// Store keeps subscriptions by the address's hash.
type Store interface {
	// RequestNewsletter records a pending subscription for emailHash unless one
	// exists, and claims its confirmation email when the subscription is pending and
	// none was sent since sentBefore: send is true for exactly one concurrent caller.
	RequestNewsletter(ctx context.Context, emailHash, source string, now, sentBefore time.Time) (send bool, err error)
	// ConfirmNewsletter marks a pending subscription confirmed and stores its
	// address; confirming a confirmed one changes nothing. No subscription: a
	// levqor.ENotFound error.
	ConfirmNewsletter(ctx context.Context, emailHash, email string, now time.Time) error
	// NewsletterStatus returns a subscription's status; none: levqor.ENotFound.
	NewsletterStatus(ctx context.Context, emailHash string) (Status, error)
}

// Mailer queues Levqor's own email (the notifier).
type Mailer interface {
	Enqueue(msg notifier.Message) error
}

// Service runs subscriptions. It is safe for concurrent use.
type Service struct {
	store  Store
	mail   Mailer
	secret []byte      // the analytics hash secret
	aead   cipher.AEAD // seals tokens under a key derived from secret
	now    func() time.Time
	log    *slog.Logger
}

// NewService returns a service over st that hashes addresses with secret (the
// analytics hash secret) and sends confirmation emails through mail.
func NewService(st Store, mail Mailer, secret []byte, log *slog.Logger) (*Service, error) {
	if len(secret) < analytics.MinSecretBytes {
		return nil, fmt.Errorf("newsletter: the hash secret must have at least %d bytes", analytics.MinSecretBytes)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(tokenContext))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("newsletter: token cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("newsletter: token cipher: %w", err)
	}
	return &Service{store: st, mail: mail, secret: secret, aead: aead, now: time.Now, log: log.With("component", "newsletter")}, nil
}

// WithClock replaces the service's clock (tests).
func (s *Service) WithClock(now func() time.Time) *Service {
	c := *s
	c.now = now
	return &c
}

// normalise returns the address trimmed and lower-cased, or an EInvalid error.
func normalise(email string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" || len(email) > MaxEmailBytes {
		return "", fieldError("/email", fmt.Sprintf("The email address must have 1 to %d characters.", MaxEmailBytes))
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return "", fieldError("/email", "The email address is not valid.")
	}
	return email, nil
}

// Subscribe asks for the newsletter for email: it stores the address's hash and
// queues a confirmation email when one is due. Its result is the same whether the
// address is new, pending or confirmed; only invalid input and storage failures
// are errors. An email that cannot be queued is logged (without the address), not
// returned, so that the answer does not depend on the address either.
func (s *Service) Subscribe(ctx context.Context, email, source string) error {
	email, err := normalise(email)
	if err != nil {
		return err
	}
	if len(source) > MaxSourceBytes {
		return fieldError("/source", fmt.Sprintf("The source must have at most %d characters.", MaxSourceBytes))
	}
	now := s.now().UTC()
	send, err := s.store.RequestNewsletter(ctx, analytics.HashEmail(s.secret, email), source, now, now.Add(-ResendInterval))
	if err != nil {
		return fmt.Errorf("newsletter request: %w", err)
	}
	if !send {
		return nil
	}
	token, err := s.seal(email, now.Add(TokenTTL))
	if err != nil {
		return err
	}
	if err := s.mail.Enqueue(notifier.Message{
		Template: notifier.NewsletterConfirm, To: email,
		Data: map[string]any{"token": token, "hours": int(TokenTTL / time.Hour)},
	}); err != nil {
		s.log.Warn("newsletter confirmation not queued", "error", err)
	}
	return nil
}

// fieldError is an EInvalid error pointing at one field of the request body.
func fieldError(pointer, detail string) error {
	return &levqor.Error{Code: levqor.EInvalid, Message: detail, Fields: []levqor.FieldError{{Pointer: pointer, Detail: detail}}}
}

// ErrBadToken is a confirmation token that is malformed, forged or expired.
var ErrBadToken = levqor.Errorf(levqor.EInvalid, "This confirmation link is not valid or has expired: ask for the newsletter again.")

// Check returns ErrBadToken unless token is a valid, unexpired confirmation token.
func (s *Service) Check(token string) error {
	_, err := s.open(token)
	return err
}

// Confirm confirms the subscription token names and stores its address.
// Errors: ErrBadToken; levqor.ENotFound when no subscription was asked for.
func (s *Service) Confirm(ctx context.Context, token string) error {
	email, err := s.open(token)
	if err != nil {
		return err
	}
	if err := s.store.ConfirmNewsletter(ctx, analytics.HashEmail(s.secret, email), email, s.now().UTC()); err != nil {
		return fmt.Errorf("newsletter confirm: %w", err)
	}
	return nil
}

// Status returns the status of email's subscription; none: levqor.ENotFound.
func (s *Service) Status(ctx context.Context, email string) (Status, error) {
	email, err := normalise(email)
	if err != nil {
		return "", err
	}
	return s.store.NewsletterStatus(ctx, analytics.HashEmail(s.secret, email))
}

// seal returns the token of email valid until expires: AES-256-GCM (so it is both
// secret, since URLs reach logs, and authenticated) of the expiry and the address,
// base64url without padding.
func (s *Service) seal(email string, expires time.Time) (string, error) {
	plain := binary.BigEndian.AppendUint64(nil, uint64(expires.Unix()))
	plain = append(plain, email...)
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("newsletter token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(tokenContext))), nil
}

// open returns the address a token seals, or ErrBadToken.
func (s *Service) open(token string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead()+8 {
		return "", ErrBadToken
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(tokenContext))
	if err != nil {
		return "", ErrBadToken
	}
	expires := time.Unix(int64(binary.BigEndian.Uint64(plain[:8])), 0)
	if !s.now().Before(expires) {
		return "", ErrBadToken
	}
	email, err := normalise(string(plain[8:]))
	if err != nil {
		return "", ErrBadToken
	}
	return email, nil
}
