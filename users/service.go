package users

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/mail"
	"reflect"
	"strings"
	"time"

	"golang.org/x/text/language"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/keys"
)

// MaxMetaBytes is the largest serialised meta object a user may carry.
const MaxMetaBytes = 16 << 10

// Defaults for fields a new user is created without.
const (
	DefaultLocale   = "en-GB"
	DefaultCurrency = "GBP"
	DefaultPlan     = "free"
)

// Service is the one place users are created, read and changed. Non-admin
// principals may only see and change their own owner user; anything else is "not found".
type Service struct {
	store Store
	now   func() time.Time
}

// NewService returns a Service over store.
func NewService(store Store) *Service { return &Service{store: store, now: time.Now} }

// Fields are the mutable fields of a user; nil means "not given".
type Fields struct {
	Name, Locale, Currency, Plan *string
	Meta                         map[string]any
}

// NormaliseEmail trims and lower-cases an email and checks it is a bare address.
func NormaliseEmail(s string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(s))
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" || !strings.Contains(e[strings.LastIndexByte(e, '@')+1:], ".") || len(e) > 254 {
		return "", &levqor.Error{Code: levqor.EInvalid, Message: "email is not a valid address.",
			Fields: []levqor.FieldError{{Pointer: "/email", Detail: "Not a valid email address."}}}
	}
	return e, nil
}

func checkFields(f Fields) error {
	if f.Locale != nil {
		if _, err := language.Parse(*f.Locale); err != nil {
			return &levqor.Error{Code: levqor.EInvalid, Message: "locale is not a valid BCP 47 tag.",
				Fields: []levqor.FieldError{{Pointer: "/locale", Detail: "Not a valid BCP 47 language tag."}}}
		}
	}
	return nil
}

// checkServerOwned refuses fields only the server (billing, operators with admin
// keys) may set: a user's plan decides what they are entitled to, so their own key
// must not choose it. Any plan in a non-admin request is refused, even the current one,
// so that clients learn the rule on their first try.
func checkServerOwned(p keys.Principal, f Fields) error {
	if f.Plan != nil && !p.Admin() {
		return &levqor.Error{Code: levqor.EForbidden, Message: "Only admin keys may set a user's plan.",
			Fields: []levqor.FieldError{{Pointer: "/plan", Detail: "Set by the server; only admin keys may change it."}}}
	}
	return nil
}

func checkMeta(meta map[string]any) error {
	b, err := json.Marshal(meta)
	if err != nil || len(b) > MaxMetaBytes {
		return &levqor.Error{Code: levqor.EInvalid, Message: fmt.Sprintf("meta is larger than %d bytes serialised.", MaxMetaBytes),
			Fields: []levqor.FieldError{{Pointer: "/meta", Detail: fmt.Sprintf("At most %d bytes serialised.", MaxMetaBytes)}}}
	}
	return nil
}

// Upsert creates the user with email, or applies the given fields to the existing
// one. It reports whether it created the user. Applying the same fields twice
// changes nothing (updated_at included).
func (s *Service) Upsert(ctx context.Context, p keys.Principal, email string, f Fields) (User, bool, error) {
	email, err := NormaliseEmail(email)
	if err != nil {
		return User{}, false, err
	}
	if err := checkFields(f); err != nil {
		return User{}, false, err
	}
	if f.Meta != nil {
		if err := checkMeta(f.Meta); err != nil {
			return User{}, false, err
		}
	}
	if !p.Admin() {
		self, err := s.store.GetUser(ctx, p.OwnerID)
		if err != nil || self.Email != email {
			return User{}, false, levqor.Errorf(levqor.EForbidden, "Only admin keys may create or change other users.")
		}
	}
	if err := checkServerOwned(p, f); err != nil {
		return User{}, false, err
	}
	now := s.now().UTC()
	fresh := User{ID: levqor.NewID("usr"), Email: email, Locale: DefaultLocale, Currency: DefaultCurrency, Plan: DefaultPlan,
		Meta: map[string]any{}, CreatedAt: now, UpdatedAt: now}
	apply(&fresh, f, false)
	u, created, err := s.store.CreateUserIfAbsent(ctx, fresh)
	if err != nil || created {
		return u, created, err
	}
	next := u
	next.Meta = maps.Clone(u.Meta)
	apply(&next, f, false)
	if reflect.DeepEqual(next, u) {
		return u, false, nil
	}
	next.UpdatedAt = now
	u, err = s.store.UpdateUser(ctx, next)
	return u, false, err
}

// apply sets the given fields on u; with merge, meta is merged (RFC 7396), otherwise replaced.
func apply(u *User, f Fields, merge bool) {
	for dst, src := range map[*string]*string{&u.Name: f.Name, &u.Locale: f.Locale, &u.Currency: f.Currency, &u.Plan: f.Plan} {
		if src != nil {
			*dst = *src
		}
	}
	if f.Meta == nil {
		return
	}
	if !merge {
		u.Meta = normaliseJSON(f.Meta)
		return
	}
	u.Meta = mergePatch(u.Meta, f.Meta)
}

// mergePatch applies an RFC 7396 merge patch to target (which it may modify).
func mergePatch(target, patch map[string]any) map[string]any {
	if target == nil {
		target = map[string]any{}
	}
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(target, k)
		case map[string]any:
			tv, _ := target[k].(map[string]any)
			target[k] = mergePatch(maps.Clone(tv), pv)
		default:
			target[k] = normaliseJSON(v)
		}
	}
	return target
}

// normaliseJSON makes a decoded value compare equal to the same value read back from
// the store (numbers as float64, objects as map[string]any).
func normaliseJSON[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out T
	if json.Unmarshal(b, &out) != nil {
		return v
	}
	return out
}

// Get returns the user with id, if the principal may see it.
func (s *Service) Get(ctx context.Context, p keys.Principal, id string) (User, error) {
	if !p.Owns(id) {
		return User{}, levqor.Errorf(levqor.ENotFound, "User not found.")
	}
	return s.store.GetUser(ctx, id)
}

// FindByEmail returns the user with email, if the principal may see it.
func (s *Service) FindByEmail(ctx context.Context, p keys.Principal, email string) (User, error) {
	email, err := NormaliseEmail(email)
	if err != nil {
		return User{}, err
	}
	u, err := s.store.GetUserByEmail(ctx, email)
	if err != nil {
		return User{}, err
	}
	if !p.Owns(u.ID) {
		return User{}, levqor.Errorf(levqor.ENotFound, "User not found.")
	}
	return u, nil
}

// Patch applies a JSON merge patch to the user with id: only given fields change,
// meta is merged key by key and null deletes a key.
func (s *Service) Patch(ctx context.Context, p keys.Principal, id string, f Fields) (User, error) {
	if err := checkFields(f); err != nil {
		return User{}, err
	}
	u, err := s.Get(ctx, p, id)
	if err != nil {
		return User{}, err
	}
	if err := checkServerOwned(p, f); err != nil { // after Get: others' users stay "not found"
		return User{}, err
	}
	next := u
	next.Meta = maps.Clone(u.Meta)
	apply(&next, f, true)
	if err := checkMeta(next.Meta); err != nil {
		return User{}, err
	}
	if reflect.DeepEqual(next, u) {
		return u, nil
	}
	next.UpdatedAt = s.now().UTC()
	return s.store.UpdateUser(ctx, next)
}
