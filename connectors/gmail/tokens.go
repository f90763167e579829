package gmail

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"golang.org/x/oauth2"
)

// credentials are an authorised user's OAuth2 client and refresh token.
type credentials struct {
	clientID, clientSecret, refreshToken string
}

// key identifies a credential set without holding it: a SHA-256 over the
// length-prefixed fields.
func (c credentials) key() [sha256.Size]byte {
	h := sha256.New()
	for _, f := range []string{c.clientID, c.clientSecret, c.refreshToken} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// tokenCache keeps the access token of each recently used credential set, so that a step
// refreshes only when its token is missing or expiring. It holds at most max sets and
// forgets the least recently used. It is safe for concurrent use.
type tokenCache struct {
	max int

	mu      sync.Mutex
	entries map[[sha256.Size]byte]*list.Element // of *tokenEntry
	lru     list.List                           // most recently used first
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, entries: map[[sha256.Size]byte]*list.Element{}}
}

// entry returns the cache entry of a credential set, making one if needed.
func (c *tokenCache) entry(key [sha256.Size]byte) *tokenEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
		return el.Value.(*tokenEntry)
	}
	e := &tokenEntry{key: key, refreshing: make(chan struct{}, 1)}
	c.entries[key] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		oldest := c.lru.Remove(c.lru.Back()).(*tokenEntry)
		delete(c.entries, oldest.key)
	}
	return e
}

// tokenEntry is one credential set's access token. Refreshes are serialised so that many
// steps with an expired token cause one refresh, and waiting for one honours ctx.
type tokenEntry struct {
	key        [sha256.Size]byte
	refreshing chan struct{} // a one-slot lock held while refreshing

	mu  sync.Mutex
	tok *oauth2.Token
}

// token returns a valid access token, calling refresh when there is none; fresh reports
// whether it was refreshed for this call.
func (e *tokenEntry) token(ctx context.Context, refresh func(context.Context) (*oauth2.Token, error)) (tok *oauth2.Token, fresh bool, err error) {
	if tok := e.current(); tok != nil {
		return tok, false, nil
	}
	select {
	case e.refreshing <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	defer func() { <-e.refreshing }()
	if tok := e.current(); tok != nil { // refreshed while this call waited
		return tok, false, nil
	}
	tok, err = refresh(ctx)
	if err != nil {
		return nil, false, err
	}
	e.mu.Lock()
	e.tok = tok
	e.mu.Unlock()
	return tok, true, nil
}

func (e *tokenEntry) current() *oauth2.Token {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.tok.Valid() {
		return e.tok
	}
	return nil
}

// forget drops tok if it is still the entry's token: Gmail refused it.
func (e *tokenEntry) forget(tok *oauth2.Token) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.tok == tok {
		e.tok = nil
	}
}
