package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/store"
)

// brokenKeyLookups is a store whose key lookups fail (the database is down).
type brokenKeyLookups struct{ store.Store }

func (brokenKeyLookups) GetKeyByHash(context.Context, []byte) (keys.Key, error) {
	return keys.Key{}, errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")
}

// A database failure while checking a well-formed key is the server's fault, not
// the caller's: it must not be answered 401 (clients then drop a valid key), and
// its cause must reach the log without reaching the client.
func TestKeyLookupFailureIsNot401(t *testing.T) {
	b := setup(t, func(o *testOptions) { o.Keys = keys.NewService(brokenKeyLookups{o.Store}, nil) })
	secret, _, err := keys.Generate(keys.EnvLive)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := b.do(t, http.MethodGet, "/api/v1/jobs", http.Header{"X-Api-Key": {secret}}, nil)
	if resp.StatusCode < 500 {
		t.Fatalf("status %d (%s), want 5xx", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "10.0.0.5") {
		t.Fatalf("the cause leaked to the client: %s", body)
	}
	if !strings.Contains(b.Logs(), "connection refused") {
		t.Fatalf("the cause is not logged:\n%s", b.Logs())
	}
}
