package analytics

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
	_ "time/tzdata" // summaries take any IANA zone, even where the system has no zoneinfo
	"unicode/utf8"

	"github.com/levqor/levqor"
)

// Limits on a tracked event.
const (
	MaxPayloadBytes = 8 << 10 // the payload, as compact JSON
	MaxPayloadDepth = 16      // nesting of the payload's objects and arrays; the payload itself is 1
	maxTextChars    = 2000    // ref, referrer and path
	maxEmailChars   = 254
)

// Service records events and summarises them.
type Service struct {
	store  Store
	secret []byte
	copy   Copy
	now    func() time.Time
	batch  batcher

	marketingMu sync.Mutex // held while the figures are counted, so callers share one count
	marketing   Marketing  // the last counted summary; zero GeneratedAt before the first
}

// NewService returns the analytics service over st. secret keys the hash of
// tracked emails (see LoadSecret). The marketing summary carries no copy until
// WithCopy gives it one (main loads it with LoadCopy).
func NewService(st Store, secret []byte) (*Service, error) {
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("analytics: hash secret of %d bytes, want at least %d", len(secret), MinSecretBytes)
	}
	return &Service{store: st, secret: secret, now: time.Now, batch: batcher{store: st}}, nil
}

// WithCopy makes c the marketing copy of the marketing summary, and returns s. Call
// it before s is used.
func (s *Service) WithCopy(c Copy) *Service {
	s.copy = c
	return s
}

// WithClock makes s take the time from now instead of time.Now, and returns s. Call
// it before s is used (tests fix the time with it).
func (s *Service) WithClock(now func() time.Time) *Service {
	s.now = now
	return s
}

// TrackInput is one event as a client sends it, with the User-Agent of its request.
type TrackInput struct {
	Type      string
	Payload   json.RawMessage // a JSON object, or empty
	Ref       string          // the page URL with its query
	Referrer  string
	Path      string
	Email     string
	UserAgent string
}

// Track validates, normalises and stores one event, and returns its id. It answers
// levqor.EInvalid for an unknown type, a payload that is not a JSON object or is
// nested deeper than MaxPayloadDepth, or an over-long field, and levqor.ETooLarge
// for a payload over MaxPayloadBytes. The email is kept only as a keyed hash, of ref
// only the page and its utm_* parameters, of the referrer only the URL without
// query; a robot's event (IsBot) is stored flagged and counted nowhere.
func (s *Service) Track(ctx context.Context, in TrackInput) (string, error) {
	e, err := s.event(in)
	if err != nil {
		return "", err
	}
	if err := s.batch.insert(ctx, e); err != nil {
		return "", fmt.Errorf("store event: %w", err)
	}
	return e.ID, nil
}

// event turns a TrackInput into the Event to store.
func (s *Service) event(in TrackInput) (Event, error) {
	if !ValidType(in.Type) {
		return Event{}, fieldError("/type", "The type must be one of page_view, cta_click, newsletter, conversion.")
	}
	for _, f := range []struct{ pointer, value string }{{"/ref", in.Ref}, {"/referrer", in.Referrer}, {"/path", in.Path}} {
		if utf8.RuneCountInString(f.value) > maxTextChars {
			return Event{}, fieldError(f.pointer, fmt.Sprintf("At most %d characters.", maxTextChars))
		}
	}
	if utf8.RuneCountInString(in.Email) > maxEmailChars {
		return Event{}, fieldError("/email", fmt.Sprintf("At most %d characters.", maxEmailChars))
	}
	payload, err := compactPayload(in.Payload)
	if err != nil {
		return Event{}, err
	}
	return Event{
		ID:           levqor.NewID("evt"),
		Type:         in.Type,
		At:           s.now().UTC(),
		Path:         pagePath(in.Path, in.Ref),
		Ref:          refWithUTM(in.Ref, 4*maxTextChars),
		Referrer:     withoutQuery(in.Referrer, 4*maxTextChars),
		ReferrerHost: referrerHost(in.Referrer),
		UTM:          ParseUTM(in.Ref),
		EmailHash:    hashEmail(s.secret, in.Email),
		Payload:      payload,
		Bot:          IsBot(in.UserAgent),
	}, nil
}

// compactPayload returns raw as compact JSON, or nil for none (empty or null).
func compactPayload(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] != '{' || !utf8.Valid(raw) {
		return nil, fieldError("/payload", "The payload must be a JSON object in UTF-8.")
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, fieldError("/payload", "The payload is not valid JSON.")
	}
	if b.Len() > MaxPayloadBytes {
		return nil, &levqor.Error{Code: levqor.ETooLarge, Message: fmt.Sprintf("The payload is %d bytes of JSON; at most %d are allowed.", b.Len(), MaxPayloadBytes),
			Fields: []levqor.FieldError{{Pointer: "/payload", Detail: fmt.Sprintf("At most %d bytes.", MaxPayloadBytes)}}}
	}
	if d := levqor.JSONDepth(b.Bytes()); d > MaxPayloadDepth {
		return nil, fieldError("/payload", fmt.Sprintf("The payload is nested %d levels deep; at most %d are allowed.", d, MaxPayloadDepth))
	}
	return b.Bytes(), nil
}

// fieldError is a levqor.EInvalid error about one field of the event.
func fieldError(pointer, detail string) error {
	return &levqor.Error{Code: levqor.EInvalid, Message: detail, Fields: []levqor.FieldError{{Pointer: pointer, Detail: detail}}}
}
