package credentials_test

import (
	"bytes"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
)

const slackToken = "xoxb-1111-2222-secretsecretsecret"

var slackFields = []string{"token"}

// newService returns a Service over a fresh SQLite store, sealing with rawKey.
func newService(t testing.TB, defaults map[string]map[string]string) (*credentials.Service, store.Store) {
	t.Helper()
	st := storetest.OpenSQLite(t)
	return credentials.NewService(st, mustKey(t, rawKey), defaults), st
}

func putSlack(t testing.TB, s *credentials.Service, owner, name, token string) credentials.Connection {
	t.Helper()
	c, err := s.Put(t.Context(), owner, credentials.PutInput{Connector: "slack", Fields: slackFields, Name: name, Secrets: map[string]string{"token": token}})
	if err != nil {
		t.Fatalf("Put(%s, slack, %q): %v", owner, name, err)
	}
	return c
}

func TestPutGetListDelete(t *testing.T) {
	s, _ := newService(t, nil)
	ctx := t.Context()
	c := putSlack(t, s, "usr_a", "", slackToken)
	if c.OwnerID != "usr_a" || c.Connector != "slack" || c.Name != credentials.DefaultName || c.CreatedAt.IsZero() || !c.CreatedAt.Equal(c.UpdatedAt) {
		t.Errorf("Put = %+v", c)
	}
	if len(c.Fields) != 1 || c.Fields[0] != (credentials.Field{Name: "token", Last4: "cret"}) {
		t.Errorf("Put fields = %+v, want token with last4 cret", c.Fields)
	}
	got, err := s.Get(ctx, "usr_a", "slack", "")
	if err != nil || got.Name != "default" || len(got.Fields) != 1 || got.Fields[0].Last4 != "cret" {
		t.Errorf("Get = %+v, %v", got, err)
	}
	gmail := []string{"client_id", "client_secret", "refresh_token"}
	if _, err := s.Put(ctx, "usr_a", credentials.PutInput{Connector: "gmail", Fields: gmail, Name: "work",
		Secrets: map[string]string{"refresh_token": "1//refresh-token-value", "client_secret": "GOCSPX-client-secret", "client_id": "123-abc.apps.googleusercontent.com"}}); err != nil {
		t.Fatalf("Put gmail: %v", err)
	}
	list, err := s.List(ctx, "usr_a")
	if err != nil || len(list) != 2 || list[0].Connector != "gmail" || list[1].Connector != "slack" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	var names []string
	for _, f := range list[0].Fields {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != "client_id,client_secret,refresh_token" {
		t.Errorf("gmail fields %v, want sorted by name", names)
	}
	if other, err := s.List(ctx, "usr_b"); err != nil || len(other) != 0 {
		t.Errorf("List of another owner = %+v, %v", other, err)
	}
	if err := s.Delete(ctx, "usr_b", "slack", ""); levqor.ErrorCode(err) != levqor.ENotFound {
		t.Errorf("Delete by another owner: %v, want not_found", err)
	}
	if err := s.Delete(ctx, "usr_a", "slack", "default"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, "usr_a", "slack", ""); levqor.ErrorCode(err) != levqor.ENotFound {
		t.Errorf("Get after Delete: %v, want not_found", err)
	}
}

func TestPutReplaces(t *testing.T) {
	s, st := newService(t, nil)
	first := putSlack(t, s, "usr_a", "", slackToken)
	before, err := st.GetConnection(t.Context(), "usr_a", "slack", "default")
	if err != nil {
		t.Fatal(err)
	}
	second := putSlack(t, s, "usr_a", "", slackToken) // the same secret again
	after, err := st.GetConnection(t.Context(), "usr_a", "slack", "default")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(before.Sealed, after.Sealed) {
		t.Error("rewriting the same secret gave the same ciphertext: the nonce was reused")
	}
	if !second.CreatedAt.Equal(first.CreatedAt) || second.UpdatedAt.Before(first.UpdatedAt) {
		t.Errorf("replace: created %v→%v updated %v→%v", first.CreatedAt, second.CreatedAt, first.UpdatedAt, second.UpdatedAt)
	}
	putSlack(t, s, "usr_a", "", "xoxb-new-token-value-0000")
	got, err := s.Resolve(t.Context(), "usr_a", "slack", "")
	if err != nil || got["token"] != "xoxb-new-token-value-0000" {
		t.Errorf("Resolve after replace = %v, %v", got, err)
	}
}

func TestResolve(t *testing.T) {
	defaults := map[string]map[string]string{"slack": {"token": "xoxb-server-default"}, "notion": {"token": "secret_server_notion"}}
	s, _ := newService(t, defaults)
	defaults["slack"]["token"] = "changed after NewService" // the Service keeps its own copy
	putSlack(t, s, "usr_a", "", slackToken)
	putSlack(t, s, "usr_a", "work", "xoxb-work-token-value")
	putSlack(t, s, "", "", "xoxb-bootstrap-owner-token")

	cases := []struct {
		name                   string
		owner, connector, conn string
		want                   string // the token, or "" for ErrNoCredentials
	}{
		{"the owner's default", "usr_a", "slack", "", slackToken},
		{"default named", "usr_a", "slack", "default", slackToken},
		{"the owner's named one", "usr_a", "slack", "work", "xoxb-work-token-value"},
		{"owner without one: server default", "usr_b", "slack", "", "xoxb-server-default"},
		{"the empty owner is an owner too", "", "slack", "", "xoxb-bootstrap-owner-token"},
		{"a missing named one does not fall back", "usr_b", "slack", "work", ""},
		{"nor for the owner with a default", "usr_a", "slack", "personal", ""},
		{"server default of another connector", "usr_a", "notion", "", "secret_server_notion"},
		{"nothing anywhere", "usr_a", "telegram", "", ""},
		{"an invalid name", "usr_a", "slack", "../default", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Resolve(t.Context(), tc.owner, tc.connector, tc.conn)
			if tc.want == "" {
				if !errors.Is(err, connectors.ErrNoCredentials) {
					t.Fatalf("Resolve = %v, %v; want ErrNoCredentials", got, err)
				}
				return
			}
			if err != nil || got["token"] != tc.want || len(got) != 1 {
				t.Fatalf("Resolve = %v, %v; want token %q", got, err, tc.want)
			}
		})
	}
	// The caller owns the map: changing it changes nothing stored.
	got, _ := s.Resolve(t.Context(), "usr_b", "slack", "")
	got["token"] = "tampered"
	if again, _ := s.Resolve(t.Context(), "usr_b", "slack", ""); again["token"] != "xoxb-server-default" {
		t.Errorf("server default after the caller changed its copy: %v", again)
	}
}

func TestPutValidation(t *testing.T) {
	s, _ := newService(t, nil)
	long := strings.Repeat("x", credentials.MaxSecretBytes+1)
	cases := []struct {
		name     string
		in       credentials.PutInput
		code     string
		pointers []string
	}{
		{"unknown field", credentials.PutInput{Connector: "slack", Fields: slackFields, Secrets: map[string]string{"token": slackToken, "tokne": "x"}},
			levqor.EInvalid, []string{"/secrets/tokne"}},
		{"missing field", credentials.PutInput{Connector: "gmail", Fields: []string{"client_id", "client_secret"}, Secrets: map[string]string{"client_id": "abc"}},
			levqor.EInvalid, []string{"/secrets/client_secret"}},
		{"wrong field only", credentials.PutInput{Connector: "slack", Fields: slackFields, Secrets: map[string]string{"a/b~c": "x"}},
			levqor.EInvalid, []string{"/secrets/a~1b~0c", "/secrets/token"}},
		{"empty value", credentials.PutInput{Connector: "slack", Fields: slackFields, Secrets: map[string]string{"token": ""}},
			levqor.EInvalid, []string{"/secrets/token"}},
		{"too long", credentials.PutInput{Connector: "slack", Fields: slackFields, Secrets: map[string]string{"token": long}},
			levqor.EInvalid, []string{"/secrets/token"}},
		{"not UTF-8", credentials.PutInput{Connector: "slack", Fields: slackFields, Secrets: map[string]string{"token": "xoxb-\xff\xfe"}},
			levqor.EInvalid, []string{"/secrets/token"}},
		{"no secrets", credentials.PutInput{Connector: "slack", Fields: slackFields},
			levqor.EInvalid, []string{"/secrets/token"}},
		{"bad name", credentials.PutInput{Connector: "slack", Fields: slackFields, Name: "a b", Secrets: map[string]string{"token": slackToken}},
			levqor.EInvalid, []string{"/name"}},
		{"connector without credentials", credentials.PutInput{Connector: "core", Secrets: map[string]string{"token": slackToken}},
			levqor.ENotFound, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Put(t.Context(), "usr_a", tc.in)
			if levqor.ErrorCode(err) != tc.code {
				t.Fatalf("Put: %v, want code %s", err, tc.code)
			}
			var le *levqor.Error
			errors.As(err, &le)
			var got []string
			for _, f := range le.Fields {
				got = append(got, f.Pointer)
			}
			if strings.Join(got, " ") != strings.Join(tc.pointers, " ") {
				t.Errorf("field errors at %v, want %v", got, tc.pointers)
			}
			for _, v := range tc.in.Secrets {
				if len(v) >= 8 && strings.Contains(err.Error(), v) {
					t.Errorf("error repeats a secret: %v", err)
				}
			}
		})
	}
	if list, _ := s.List(t.Context(), "usr_a"); len(list) != 0 {
		t.Errorf("refused puts stored %d connections", len(list))
	}
}

func TestLast4(t *testing.T) {
	s, _ := newService(t, nil)
	for secret, want := range map[string]string{
		"abc":                  "", // under four characters: nothing shown
		"abcd":                 "d",
		"abcdefgh":             "gh",
		"abcdefghijklmno":      "mno",
		"abcdefghijklmnop":     "mnop",
		slackToken:             "cret",
		"пароль-очень-длинный": "нный", // characters, not bytes
		"ключ🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑": "🔑🔑🔑🔑",
	} {
		c := putSlack(t, s, "usr_a", "", secret)
		if got := c.Fields[0].Last4; got != want {
			t.Errorf("last4 of %q = %q, want %q", secret, got, want)
		}
	}
}

// TestWrongKey: a server started with another key cannot read the connections,
// says so, and leaks nothing; their metadata stays readable.
func TestWrongKey(t *testing.T) {
	s, st := newService(t, nil)
	putSlack(t, s, "usr_a", "", slackToken)
	otherRaw := bytes.Repeat([]byte{0x42}, credentials.KeySize)
	other := credentials.NewService(st, mustKey(t, otherRaw), map[string]map[string]string{"slack": {"token": "xoxb-server-default"}})
	got, err := other.Resolve(t.Context(), "usr_a", "slack", "")
	if !errors.Is(err, credentials.ErrUndecryptable) || got != nil {
		t.Fatalf("Resolve under another key = %v, %v; want ErrUndecryptable (and no fallback to the server default)", got, err)
	}
	if !errors.Is(err, connectors.ErrNoCredentials) {
		t.Error("an undecryptable connection does not match ErrNoCredentials: connectors would retry it")
	}
	msg := err.Error()
	if strings.Contains(msg, slackToken) || strings.Contains(msg, string(otherRaw)) {
		t.Errorf("error leaks secret material: %s", msg)
	}
	if !strings.Contains(msg, mustKey(t, rawKey).ID()) || !strings.Contains(msg, "LEVQOR_SECRET_KEY") {
		t.Errorf("error %q does not say which key sealed it and what to check", msg)
	}
	if c, err := other.Get(t.Context(), "usr_a", "slack", ""); err != nil || c.Fields[0].Last4 != "cret" {
		t.Errorf("Get under another key = %+v, %v", c, err)
	}
}

// TestSwappedRows: a sealed value copied to another owner, connector or name in
// the database does not decrypt there.
func TestSwappedRows(t *testing.T) {
	s, st := newService(t, nil)
	ctx := t.Context()
	putSlack(t, s, "usr_a", "", slackToken)
	putSlack(t, s, "usr_b", "", "xoxb-usr-b-token-value")
	rec, err := st.GetConnection(ctx, "usr_a", "slack", "default")
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range [][3]string{{"usr_b", "slack", "default"}, {"usr_a", "slack", "work"}, {"usr_a", "notion", "default"}} {
		moved := rec
		moved.OwnerID, moved.Connector, moved.Name = to[0], to[1], to[2]
		if _, err := st.PutConnection(ctx, moved); err != nil {
			t.Fatal(err)
		}
		got, err := s.Resolve(ctx, to[0], to[1], to[2])
		if !errors.Is(err, credentials.ErrUndecryptable) {
			t.Errorf("Resolve of usr_a's row copied to %v = %v, %v; want ErrUndecryptable", to, got, err)
		}
	}
}

func TestResolveConcurrentWithPut(t *testing.T) {
	s, _ := newService(t, nil)
	putSlack(t, s, "usr_a", "", "xoxb-token-0")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 20 {
				got, err := s.Resolve(t.Context(), "usr_a", "slack", "")
				if err != nil || !strings.HasPrefix(got["token"], "xoxb-token-") {
					t.Errorf("Resolve = %v, %v", got, err)
					return
				}
			}
		})
		wg.Go(func() {
			for j := range 5 {
				putSlack(t, s, "usr_a", "", "xoxb-token-"+strings.Repeat("x", i+j))
			}
		})
	}
	wg.Wait()
}

func BenchmarkResolve(b *testing.B) {
	s, _ := newService(b, nil)
	putSlack(b, s, "usr_a", "", slackToken)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Resolve(b.Context(), "usr_a", "slack", ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPut(b *testing.B) {
	s, _ := newService(b, nil)
	b.ReportAllocs()
	for b.Loop() {
		putSlack(b, s, "usr_a", "", slackToken)
	}
}

// A header connection (the http connector's) holds headers and ?query parameters of
// the owner's choosing; each is checked, and they resolve as stored.
func TestPutHeaderConnection(t *testing.T) {
	s, _ := newService(t, nil)
	ctx := t.Context()
	good := map[string]string{"Authorization": "Bearer abcdefgh", "X-Api-Key": "k-12345678", "?api_key": "q-12345678"}
	c, err := s.Put(ctx, "usr_a", credentials.PutInput{Connector: "http", Headers: true, Name: "api", Secrets: good})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if len(c.Fields) != 3 || c.Fields[0].Name != "?api_key" || c.Fields[1].Name != "Authorization" || c.Fields[1].Last4 != "fgh" {
		t.Errorf("Put fields = %+v", c.Fields)
	}
	if got, err := s.Resolve(ctx, "usr_a", "http", "api"); err != nil || !maps.Equal(got, good) {
		t.Errorf("Resolve = %v, %v", got, err)
	}
	for _, tc := range []struct {
		name    string
		secrets map[string]string
		pointer string
	}{
		{"reserved header", map[string]string{"Host": "evil.example"}, "/secrets/Host"},
		{"not a token", map[string]string{"Bad Header": "v"}, "/secrets/Bad Header"},
		{"empty query name", map[string]string{"?": "v"}, "/secrets/?"},
		{"control character", map[string]string{"X-Token": "a\r\nInjected: 1"}, "/secrets/X-Token"},
		{"same header twice", map[string]string{"Authorization": "a", "authorization": "b"}, "/secrets/authorization"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Put(ctx, "usr_a", credentials.PutInput{Connector: "http", Headers: true, Secrets: tc.secrets})
			var le *levqor.Error
			if !errors.As(err, &le) || le.Code != levqor.EInvalid || len(le.Fields) != 1 || le.Fields[0].Pointer != tc.pointer {
				t.Fatalf("Put = %v; want one invalid field at %s", err, tc.pointer)
			}
			if strings.Contains(err.Error(), "Injected") || strings.Contains(err.Error(), "evil") {
				t.Errorf("error %q quotes a value", err)
			}
		})
	}
}
