package keys

import (
	"context"
	"encoding/hex"
	"testing"
	"time"
)

// anyKeyStore knows every key: each hash is a distinct key id.
type anyKeyStore struct{ Store }

func (anyKeyStore) GetKeyByHash(_ context.Context, hash []byte) (Key, error) {
	return Key{ID: "key_" + hex.EncodeToString(hash[:8]), Scopes: []string{ScopeJobsRead}}, nil
}
func (anyKeyStore) TouchKey(context.Context, string, time.Time) error { return nil }

// The per-key touch bookkeeping must stay bounded like the cache, however many
// keys a long-running process sees.
func TestTouchedStaysBounded(t *testing.T) {
	s := NewService(anyKeyStore{}, nil)
	for i := 0; i < cacheMax+5000; i++ {
		secret, _, err := Generate(EnvLive)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(context.Background(), secret); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	n := len(s.touched)
	s.mu.Unlock()
	if n > cacheMax {
		t.Fatalf("touched holds %d keys after %d distinct keys; want at most %d", n, cacheMax+5000, cacheMax)
	}
}
