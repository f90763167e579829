package main

import (
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/levqor/levqor/config"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/store/storetest"
)

const slackToken = "xoxb-1111-2222-secretsecretsecret"

// rawKey is a fixed test key: bytes 0x00..0x1f.
var rawKey = func() []byte {
	b := make([]byte, credentials.KeySize)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

func mustKey(t testing.TB, raw []byte) credentials.Key {
	t.Helper()
	k, err := credentials.NewKey(raw)
	if err != nil {
		t.Fatalf("NewKey: %v", err)
	}
	return k
}

func putSlack(t testing.TB, s *credentials.Service, owner, name, token string) credentials.Connection {
	t.Helper()
	c, err := s.Put(t.Context(), owner, credentials.PutInput{Connector: "slack", Fields: []string{"token"}, Name: name, Secrets: map[string]string{"token": token}})
	if err != nil {
		t.Fatalf("Put(%s, slack, %q): %v", owner, name, err)
	}
	return c
}

func loadConfig(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	return cfg
}

// TestNewCredentials (was credentials.TestFromConfig): the key and the server-wide
// defaults main builds the credentials service with.
func TestNewCredentials(t *testing.T) {
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Run("bad LEVQOR_SECRET_KEY", func(t *testing.T) {
		dir := t.TempDir()
		bad := "this-is-not-a-valid-key-but-a-secret"
		cfg := loadConfig(t, map[string]string{"LEVQOR_DATA_DIR": dir, "LEVQOR_SECRET_KEY": bad})
		_, err := newCredentials(cfg, storetest.OpenSQLite(t), discard)
		if err == nil || !strings.Contains(err.Error(), "LEVQOR_SECRET_KEY") || strings.Contains(err.Error(), bad) {
			t.Fatalf("newCredentials = %v; want an error naming LEVQOR_SECRET_KEY without its value", err)
		}
		if _, err := os.Stat(filepath.Join(dir, credentials.KeyFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a key file was written despite the bad key: %v", err)
		}
	})
	t.Run("generated key is kept", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		cfg := loadConfig(t, map[string]string{"LEVQOR_DATA_DIR": dir})
		st := storetest.OpenSQLite(t)
		s1, err := newCredentials(cfg, st, discard)
		if err != nil {
			t.Fatal(err)
		}
		putSlack(t, s1, "usr_a", "", slackToken)
		s2, err := newCredentials(cfg, st, discard) // a restart
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s2.Resolve(t.Context(), "usr_a", "slack", ""); err != nil || got["token"] != slackToken {
			t.Errorf("after a restart: Resolve = %v, %v", got, err)
		}
	})
	t.Run("LEVQOR_SECRET_KEY wins over the file", func(t *testing.T) {
		dir := t.TempDir()
		cfg := loadConfig(t, map[string]string{"LEVQOR_DATA_DIR": dir, "LEVQOR_SECRET_KEY": base64.StdEncoding.EncodeToString(rawKey)})
		st := storetest.OpenSQLite(t)
		s, err := newCredentials(cfg, st, discard)
		if err != nil {
			t.Fatal(err)
		}
		putSlack(t, s, "usr_a", "", slackToken)
		if _, err := os.Stat(filepath.Join(dir, credentials.KeyFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a key file was written though LEVQOR_SECRET_KEY is set: %v", err)
		}
		// The configured key is the one that sealed it.
		same := credentials.NewService(st, mustKey(t, rawKey), nil)
		if got, err := same.Resolve(t.Context(), "usr_a", "slack", ""); err != nil || got["token"] != slackToken {
			t.Errorf("Resolve with the configured key = %v, %v", got, err)
		}
	})
	// The server-wide tokens are every tenant's only with LEVQOR_SHARED_CREDENTIALS=true.
	for _, shared := range []string{"", "false"} {
		t.Run("server tokens not shared with LEVQOR_SHARED_CREDENTIALS="+shared, func(t *testing.T) {
			cfg := loadConfig(t, map[string]string{
				"LEVQOR_DATA_DIR": t.TempDir(), "LEVQOR_SLACK_TOKEN": "xoxb-env", "LEVQOR_RESEND_API_KEY": "re_env",
				"LEVQOR_SHARED_CREDENTIALS": shared,
			})
			s, err := newCredentials(cfg, storetest.OpenSQLite(t), discard)
			if err != nil {
				t.Fatal(err)
			}
			for _, connector := range []string{"slack", "email"} {
				got, err := s.Resolve(t.Context(), "usr_a", connector, "")
				if !errors.Is(err, connectors.ErrNoCredentials) || got != nil {
					t.Errorf("%s: Resolve = %v, %v; want ErrNoCredentials (the server token is not shared)", connector, got, err)
				}
			}
		})
	}
	t.Run("server defaults", func(t *testing.T) {
		cfg := loadConfig(t, map[string]string{
			"LEVQOR_DATA_DIR": t.TempDir(), "LEVQOR_SLACK_TOKEN": "xoxb-env", "LEVQOR_RESEND_API_KEY": "re_env",
			"LEVQOR_GMAIL_CLIENT_ID":    "id-only", // incomplete: no Gmail default
			"LEVQOR_SHARED_CREDENTIALS": "true",
		})
		s, err := newCredentials(cfg, storetest.OpenSQLite(t), discard)
		if err != nil {
			t.Fatal(err)
		}
		for connector, want := range map[string]map[string]string{"slack": {"token": "xoxb-env"}, "email": {"api_key": "re_env"}, "gmail": nil, "notion": nil} {
			got, err := s.Resolve(t.Context(), "usr_a", connector, "")
			if want == nil {
				if !errors.Is(err, connectors.ErrNoCredentials) {
					t.Errorf("%s: Resolve = %v, %v; want ErrNoCredentials", connector, got, err)
				}
				continue
			}
			if err != nil || !maps.Equal(got, want) {
				t.Errorf("%s: Resolve = %v, %v; want %v", connector, got, err, want)
			}
		}
	})
}
