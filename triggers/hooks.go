package triggers

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
)

// Limits of inbound triggers.
const (
	// MaxTriggersPerWorkflow bounds the inbound triggers of one workflow (and a list's length).
	MaxTriggersPerWorkflow = 10
	// SignatureTolerance is how far a signature's t may be from the server's clock
	// (replays of an old, captured request are refused).
	SignatureTolerance = 5 * time.Minute
	// MaxSignatureHeader bounds the Levqor-Signature header read (also in the spec).
	MaxSignatureHeader = 1024
)

// errBadSignature is the one answer to anything wrong with a delivery's
// authentication, an unknown trigger included: a caller learns nothing more.
func errBadSignature() error {
	return levqor.Errorf(levqor.EUnauthorized, "The Levqor-Signature header is missing, stale or does not match this trigger's secret.")
}

func newTriggerSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "trsec_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// Sign is the Levqor-Signature value for body sent at t with secret: the scheme
// of outgoing webhooks (docs/webhooks.md), HMAC-SHA256 over "<t>.<body>".
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// verify checks a Levqor-Signature header: one t, within SignatureTolerance of now,
// and at least one v1 equal (constant time) to the HMAC of the body.
func verify(secret, header string, body []byte, now time.Time) bool {
	if header == "" || len(header) > MaxSignatureHeader {
		return false
	}
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			if ts != "" {
				return false
			}
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(sec, 0)); d > SignatureTolerance || d < -SignatureTolerance {
		return false
	}
	want := []byte(mac(secret, ts, body))
	ok := false
	for _, s := range sigs {
		if hmac.Equal(want, []byte(s)) {
			ok = true
		}
	}
	return ok
}

// TriggerWithSecret is a trigger as created or rolled: the only time its secret is shown.
type TriggerWithSecret struct {
	Trigger
	Secret string
}

func (s *Service) seal(t Trigger, secret string) (Trigger, error) {
	if s.sealer == nil {
		return Trigger{}, levqor.Errorf(levqor.EUnavailable, "Inbound triggers need the credentials key; this server has none.")
	}
	sealed, err := s.sealer.SealTriggerSecret(t.OwnerID, t.ID, secret)
	if err != nil {
		return Trigger{}, fmt.Errorf("seal trigger secret: %w", err)
	}
	t.Sealed = sealed
	return t, nil
}

// CreateTrigger adds an inbound trigger to the principal's workflow and returns it
// with its secret, which is stored only sealed and never shown again.
func (s *Service) CreateTrigger(ctx context.Context, p keys.Principal, workflow string) (TriggerWithSecret, error) {
	if _, err := s.intake.GetWorkflow(ctx, p, workflow); err != nil {
		return TriggerWithSecret{}, err
	}
	list, err := s.store.ListTriggers(ctx, p.OwnerID, workflow, MaxTriggersPerWorkflow)
	if err != nil {
		return TriggerWithSecret{}, err
	}
	if len(list) >= MaxTriggersPerWorkflow {
		return TriggerWithSecret{}, levqor.Errorf(levqor.EConflict, "Workflow %q already has %d triggers, the most it may have.", workflow, MaxTriggersPerWorkflow)
	}
	now := s.now().UTC()
	secret := newTriggerSecret()
	t, err := s.seal(Trigger{ID: levqor.NewID("trg"), OwnerID: p.OwnerID, Workflow: workflow, CreatedAt: now, RolledAt: now}, secret)
	if err != nil {
		return TriggerWithSecret{}, err
	}
	if err := s.store.InsertTrigger(ctx, t); err != nil {
		return TriggerWithSecret{}, err
	}
	return TriggerWithSecret{Trigger: t, Secret: secret}, nil
}

// RollTrigger replaces a trigger's secret; the old one stops working at once.
func (s *Service) RollTrigger(ctx context.Context, p keys.Principal, workflow, id string) (TriggerWithSecret, error) {
	secret := newTriggerSecret()
	t, err := s.seal(Trigger{ID: id, OwnerID: p.OwnerID, Workflow: workflow, RolledAt: s.now().UTC()}, secret)
	if err != nil {
		return TriggerWithSecret{}, err
	}
	t, err = s.store.RollTrigger(ctx, t)
	if err != nil {
		return TriggerWithSecret{}, err
	}
	return TriggerWithSecret{Trigger: t, Secret: secret}, nil
}

// ListTriggers lists the principal's workflow's triggers (never their secrets).
func (s *Service) ListTriggers(ctx context.Context, p keys.Principal, workflow string) ([]Trigger, error) {
	if _, err := s.intake.GetWorkflow(ctx, p, workflow); err != nil {
		return nil, err
	}
	return s.store.ListTriggers(ctx, p.OwnerID, workflow, MaxTriggersPerWorkflow)
}

// DeleteTrigger deletes a trigger: later deliveries to it are refused (401).
func (s *Service) DeleteTrigger(ctx context.Context, p keys.Principal, workflow, id string) error {
	return s.store.DeleteTrigger(ctx, p.OwnerID, workflow, id)
}

// Delivery is one inbound webhook request.
type Delivery struct {
	TriggerID string
	Body      []byte // the raw body, exactly as received (what the signature covers)
	Signature string // the Levqor-Signature header
	// ID, when set, makes the delivery idempotent: the same id and body return the
	// first job; the same id with another body is 422.
	ID string
	// Admit, when set, is asked once the signature verifies and before anything is
	// stored (the per-trigger rate limit); its error is the answer.
	Admit func(ctx context.Context) error
}

// Receive verifies a delivery and submits its body as the payload of a job of the
// trigger's workflow. Nothing is stored unless the signature verifies: any failure
// of authentication is levqor.EUnauthorized, whatever its cause.
func (s *Service) Receive(ctx context.Context, d Delivery) (jobs.Job, bool, error) {
	t, err := s.store.GetTrigger(ctx, d.TriggerID)
	if levqor.ErrorCode(err) == levqor.ENotFound {
		return jobs.Job{}, false, errBadSignature()
	}
	if err != nil {
		return jobs.Job{}, false, err
	}
	if s.sealer == nil {
		return jobs.Job{}, false, levqor.Errorf(levqor.EUnavailable, "Inbound triggers need the credentials key; this server has none.")
	}
	secret, err := s.sealer.OpenTriggerSecret(t.OwnerID, t.ID, t.Sealed)
	if err != nil {
		return jobs.Job{}, false, fmt.Errorf("open trigger secret: %w", err)
	}
	if !verify(secret, d.Signature, d.Body, s.now()) {
		return jobs.Job{}, false, errBadSignature()
	}
	if d.Admit != nil {
		if err := d.Admit(ctx); err != nil {
			return jobs.Job{}, false, err
		}
	}
	// The raw body becomes the payload as sent (the signature covers those bytes), so
	// it must be exactly one JSON object in UTF-8: a decoder reading only the first
	// value, or a database refusing invalid UTF-8, must never see anything else.
	if trimmed := bytes.TrimSpace(d.Body); len(trimmed) == 0 || trimmed[0] != '{' || !utf8.Valid(d.Body) || !json.Valid(d.Body) {
		return jobs.Job{}, false, levqor.Errorf(levqor.EInvalid, "The body must be exactly one JSON object, in UTF-8.")
	}
	in := jobs.Intake{Workflow: t.Workflow, Payload: d.Body}
	if d.ID != "" {
		in.IdempotencyKey, in.BodyHash = d.ID, jobs.HashBody(d.Body)
	}
	// The idempotency scope is the trigger: one sender's delivery ids never meet another's.
	return s.intake.Submit(ctx, principal(t.OwnerID, "hook:"+t.ID), in)
}
