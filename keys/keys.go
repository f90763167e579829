// Package keys issues, stores and checks Levqor's API keys: secrets of the form
// lvq_live_<43 base62 chars>, shown once and kept only as a SHA-256 hash plus their
// prefix and last four characters.
package keys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"strings"
	"time"

	"github.com/levqor/levqor"
)

// Scopes a key can hold. Admin grants every scope.
const (
	ScopeJobsRead    = "jobs:read"
	ScopeJobsWrite   = "jobs:write"
	ScopeUsersRead   = "users:read"
	ScopeUsersWrite  = "users:write"
	ScopeMetricsRead = "metrics:read"
	ScopeAdmin       = "admin"
)

// AllScopes lists every scope, in a stable order.
var AllScopes = []string{ScopeJobsRead, ScopeJobsWrite, ScopeUsersRead, ScopeUsersWrite, ScopeMetricsRead, ScopeAdmin}

// Key environments and their visible prefixes.
const (
	EnvLive    = "live"
	EnvTest    = "test"
	PrefixLive = "lvq_live_"
	PrefixTest = "lvq_test_"
)

// bodyLen is the length of the random part: 32 random bytes in base62 need 43 characters.
const bodyLen = 43

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Key is a stored API key. The secret itself is never stored.
type Key struct {
	ID         string
	OwnerID    string
	Name       string
	Prefix     string // PrefixLive or PrefixTest
	Last4      string
	Hash       []byte // SHA-256 of the whole secret
	Scopes     []string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	ExpiresAt  *time.Time
	RevokedAt  *time.Time
}

// Store keeps keys. Implementations live in store/sqlite and store/postgres.
type Store interface {
	// CreateKey inserts k; an unknown owner is a levqor.ENotFound error.
	CreateKey(ctx context.Context, k Key) (Key, error)
	// GetKey returns the key with the id, or a levqor.ENotFound error.
	GetKey(ctx context.Context, id string) (Key, error)
	// GetKeyByHash returns the key whose secret hashes to hash, or a levqor.ENotFound error.
	GetKeyByHash(ctx context.Context, hash []byte) (Key, error)
	// ListKeys returns up to limit keys, newest first, of one owner or ("") of all.
	ListKeys(ctx context.Context, ownerID string, limit int) ([]Key, error)
	// RevokeKey sets revoked_at (unless already set) and returns the key, or a levqor.ENotFound error.
	RevokeKey(ctx context.Context, id string, at time.Time) (Key, error)
	// RollKey, in one transaction, inserts next and makes the key oldID expire at
	// oldExpiresAt unless it already expires earlier. Unknown oldID: levqor.ENotFound.
	RollKey(ctx context.Context, oldID string, oldExpiresAt time.Time, next Key) (Key, error)
	// TouchKey records that the key was used at the given time.
	TouchKey(ctx context.Context, id string, at time.Time) error
}

// Generate returns a new secret for the environment and its stored form (without id,
// owner, name and scopes).
func Generate(env string) (string, Key, error) {
	prefix := PrefixLive
	if env == EnvTest {
		prefix = PrefixTest
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Key{}, err
	}
	body := new(big.Int).SetBytes(b[:]).Text(62)
	body = strings.Repeat("0", bodyLen-len(body)) + body
	secret := prefix + body
	return secret, Key{Prefix: prefix, Last4: secret[len(secret)-4:], Hash: Hash(secret)}, nil
}

// Hash is how a secret is kept: SHA-256. Keys carry 190 random bits, so a fast hash is
// safe here (there is nothing to brute-force), and it keeps lookups cheap.
func Hash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// Parse checks that s has the shape of a Levqor key and returns its prefix. It does
// not say whether the key exists.
func Parse(s string) (prefix string, err error) {
	switch {
	case strings.HasPrefix(s, PrefixLive):
		prefix = PrefixLive
	case strings.HasPrefix(s, PrefixTest):
		prefix = PrefixTest
	default:
		return "", levqor.Errorf(levqor.EUnauthorized, "The API key is malformed: it must start with %s or %s.", PrefixLive, PrefixTest)
	}
	body := s[len(prefix):]
	if len(body) != bodyLen {
		return "", levqor.Errorf(levqor.EUnauthorized, "The API key is malformed: wrong length.")
	}
	for i := 0; i < len(body); i++ {
		if strings.IndexByte(base62, body[i]) < 0 {
			return "", levqor.Errorf(levqor.EUnauthorized, "The API key is malformed: unexpected character.")
		}
	}
	return prefix, nil
}

// ValidScope reports whether s names a scope.
func ValidScope(s string) bool {
	for _, v := range AllScopes {
		if v == s {
			return true
		}
	}
	return false
}
