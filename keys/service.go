package keys

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/levqor/levqor"
)

// touchEvery bounds how often a key's last_used_at is written: once a minute per key
// and process is plenty for "when was this key last used", and keeps reads read-only.
const touchEvery = time.Minute

// cacheTTL is how long a looked-up key is trusted without reading it again. Expiry
// is checked on every request against the cached expires_at, and this process drops
// a key from its cache the moment it revokes or rolls it; another instance sharing
// the database sees a revocation within cacheTTL. (docs/adr/0003-api-keys.md)
const cacheTTL = 2 * time.Second

// cacheMax bounds the cache; past it the cache is emptied and refills from use.
const cacheMax = 10000

// MaxGrace is the longest a rolled key may keep working.
const MaxGrace = 30 * 24 * time.Hour

// Service is the one place that issues, checks, revokes and rolls keys.
type Service struct {
	store     Store
	bootstrap map[string]bool // hex-free: string(Hash(secret)) of LEVQOR_API_KEYS and LEVQOR_API_KEYS_NEXT
	now       func() time.Time

	mu      sync.Mutex
	touched map[string]time.Time
	cache   map[string]cachedKey // by string(hash)
}

type cachedKey struct {
	key Key
	at  time.Time
}

// NewService returns a Service over store. bootstrap are the admin keys from the
// environment, accepted alongside stored keys (any non-empty string; no format required,
// so the seed's existing keys keep working through a rotation).
func NewService(store Store, bootstrap []string) *Service {
	s := &Service{store: store, bootstrap: map[string]bool{}, now: time.Now, touched: map[string]time.Time{}, cache: map[string]cachedKey{}}
	for _, k := range bootstrap {
		if k = strings.TrimSpace(k); k != "" {
			s.bootstrap[string(Hash(k))] = true
		}
	}
	return s
}

var errNoKey = levqor.Errorf(levqor.EUnauthorized, "A valid API key is required in the X-Api-Key header.")

// Authenticate returns the principal a secret stands for. Every failure is a
// levqor.EUnauthorized error; nothing about the secret is echoed.
func (s *Service) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if secret == "" {
		return Principal{}, errNoKey
	}
	hash := Hash(secret)
	if s.bootstrap[string(hash)] {
		return Principal{Scopes: []string{ScopeAdmin}}, nil
	}
	if _, err := Parse(secret); err != nil {
		return Principal{}, err
	}
	now := s.now()
	k, err := s.lookup(ctx, hash, now)
	if levqor.ErrorCode(err) == levqor.ENotFound {
		return Principal{}, levqor.Errorf(levqor.EUnauthorized, "The API key is not recognised.")
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up key: %w", err)
	}
	if k.RevokedAt != nil {
		return Principal{}, levqor.Errorf(levqor.EUnauthorized, "The API key has been revoked.")
	}
	if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		return Principal{}, levqor.Errorf(levqor.EUnauthorized, "The API key has expired.")
	}
	s.touch(ctx, k.ID, now)
	return Principal{KeyID: k.ID, OwnerID: k.OwnerID, Scopes: k.Scopes}, nil
}

// lookup reads a key by hash through the cache. Unknown keys are not cached, so
// guessing cannot fill it.
func (s *Service) lookup(ctx context.Context, hash []byte, now time.Time) (Key, error) {
	s.mu.Lock()
	c, ok := s.cache[string(hash)]
	s.mu.Unlock()
	if ok && now.Sub(c.at) < cacheTTL {
		return c.key, nil
	}
	k, err := s.store.GetKeyByHash(ctx, hash)
	if err != nil {
		return Key{}, err
	}
	s.mu.Lock()
	if len(s.cache) >= cacheMax {
		clear(s.cache)
	}
	s.cache[string(hash)] = cachedKey{key: k, at: now}
	s.mu.Unlock()
	return k, nil
}

// forget drops key id from the cache, so this process sees a change at once.
func (s *Service) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, c := range s.cache {
		if c.key.ID == id {
			delete(s.cache, h)
		}
	}
}

func (s *Service) touch(ctx context.Context, id string, now time.Time) {
	s.mu.Lock()
	last, ok := s.touched[id]
	due := !ok || now.Sub(last) >= touchEvery
	if due {
		if len(s.touched) >= cacheMax {
			// Entries older than touchEvery no longer hold anything back; drop them
			// (all of them if none is old) so the map stays bounded like the cache.
			for k, at := range s.touched {
				if now.Sub(at) >= touchEvery {
					delete(s.touched, k)
				}
			}
			if len(s.touched) >= cacheMax {
				clear(s.touched)
			}
		}
		s.touched[id] = now
	}
	s.mu.Unlock()
	if due {
		// A lost touch only makes last_used_at stale; it must not fail the request.
		_ = s.store.TouchKey(context.WithoutCancel(ctx), id, now)
	}
}

// CreateInput describes a new key.
type CreateInput struct {
	OwnerID   string
	Name      string
	Scopes    []string
	Env       string // EnvLive (default) or EnvTest
	ExpiresAt *time.Time
}

// Create issues a key and returns it with its secret, which is not kept anywhere.
func (s *Service) Create(ctx context.Context, in CreateInput) (Key, string, error) {
	if len(in.Scopes) == 0 {
		return Key{}, "", levqor.Errorf(levqor.EInvalid, "A key needs at least one scope.")
	}
	for _, sc := range in.Scopes {
		if !ValidScope(sc) {
			return Key{}, "", levqor.Errorf(levqor.EInvalid, "Unknown scope %q.", sc)
		}
	}
	now := s.now().UTC()
	if in.ExpiresAt != nil && !in.ExpiresAt.After(now) {
		return Key{}, "", levqor.Errorf(levqor.EInvalid, "expires_at must be in the future.")
	}
	secret, k, err := Generate(in.Env)
	if err != nil {
		return Key{}, "", err
	}
	scopes := slices.Clone(in.Scopes)
	slices.Sort(scopes)
	k.ID, k.OwnerID, k.Name, k.Scopes, k.CreatedAt, k.ExpiresAt = levqor.NewID("key"), in.OwnerID, in.Name, slices.Compact(scopes), now, in.ExpiresAt
	k, err = s.store.CreateKey(ctx, k)
	if err != nil {
		return Key{}, "", err
	}
	return k, secret, nil
}

// List returns keys, newest first, of one owner or ("") of all.
func (s *Service) List(ctx context.Context, ownerID string, limit int) ([]Key, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	return s.store.ListKeys(ctx, ownerID, limit)
}

// Revoke makes a key stop working now. Revoking twice is not an error.
func (s *Service) Revoke(ctx context.Context, id string) error {
	_, err := s.store.RevokeKey(ctx, id, s.now().UTC())
	s.forget(id)
	return err
}

// Roll issues a replacement for key id with the same owner, name and scopes; the old
// key keeps working for grace, then expires (never later than it already would).
func (s *Service) Roll(ctx context.Context, id string, grace time.Duration) (Key, string, error) {
	if grace < 0 || grace > MaxGrace {
		return Key{}, "", levqor.Errorf(levqor.EInvalid, "The grace period must be between 0 and %s.", MaxGrace)
	}
	old, err := s.store.GetKey(ctx, id)
	if err != nil {
		return Key{}, "", err
	}
	now := s.now().UTC()
	if old.RevokedAt != nil || (old.ExpiresAt != nil && !now.Before(*old.ExpiresAt)) {
		return Key{}, "", levqor.Errorf(levqor.EConflict, "A revoked or expired key cannot be rolled; create a new key.")
	}
	env := EnvLive
	if old.Prefix == PrefixTest {
		env = EnvTest
	}
	secret, next, err := Generate(env)
	if err != nil {
		return Key{}, "", err
	}
	next.ID, next.OwnerID, next.Name, next.Scopes, next.CreatedAt, next.ExpiresAt = levqor.NewID("key"), old.OwnerID, old.Name, old.Scopes, now, old.ExpiresAt
	next, err = s.store.RollKey(ctx, id, now.Add(grace), next)
	s.forget(id)
	if err != nil {
		return Key{}, "", fmt.Errorf("roll key %s: %w", id, err)
	}
	return next, secret, nil
}
