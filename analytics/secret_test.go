package analytics

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadSecretGeneratesOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first, err := LoadSecret("", dir)
	if err != nil {
		t.Fatalf("LoadSecret: %v", err)
	}
	if len(first) != secretBytes {
		t.Errorf("generated secret of %d bytes, want %d", len(first), secretBytes)
	}
	info, err := os.Stat(filepath.Join(dir, SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s has mode %o, want 600", SecretFile, perm)
	}
	if info, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	} else if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("the data dir it created has mode %o, want 700", perm)
	}
	again, err := LoadSecret("", dir)
	if err != nil || !bytes.Equal(again, first) {
		t.Errorf("second LoadSecret = %x, %v; want the first secret %x", again, err, first)
	}
	// Nothing but the secret is left behind.
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only %s", len(entries), SecretFile)
	}
}

func TestLoadSecretConcurrentStartsAgree(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	secrets := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := LoadSecret("", dir)
			if err != nil {
				t.Errorf("LoadSecret: %v", err)
			}
			secrets[i] = s
		})
	}
	wg.Wait()
	for i := range secrets {
		if !bytes.Equal(secrets[i], secrets[0]) {
			t.Fatalf("concurrent LoadSecret calls returned different secrets: %x and %x", secrets[0], secrets[i])
		}
	}
}

func TestLoadSecretConfigured(t *testing.T) {
	dir := t.TempDir()
	got, err := LoadSecret("configured-secret-0123", dir)
	if err != nil || string(got) != "configured-secret-0123" {
		t.Fatalf("LoadSecret(configured) = %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, SecretFile)); !os.IsNotExist(err) {
		t.Errorf("a configured secret still wrote %s (%v)", SecretFile, err)
	}
	if _, err := LoadSecret("short", dir); err == nil {
		t.Error("LoadSecret accepted a 5-character secret")
	}
}

func TestLoadSecretRefusesMalformedFile(t *testing.T) {
	for _, content := range []string{"not hex\n", "abcd\n", ""} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, SecretFile), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadSecret("", dir); err == nil {
			t.Errorf("LoadSecret with %q in %s: no error", content, SecretFile)
		}
	}
}

func TestHashEmail(t *testing.T) {
	a, b := []byte("secret-one-0123456789"), []byte("secret-two-0123456789")
	h := hashEmail(a, "  Ada@Example.COM ")
	if h != hashEmail(a, "ada@example.com") {
		t.Error("the hash depends on case or surrounding space")
	}
	if h == hashEmail(b, "ada@example.com") {
		t.Error("the hash does not depend on the secret")
	}
	plain := sha256.Sum256([]byte("ada@example.com"))
	if h == hex.EncodeToString(plain[:]) {
		t.Error("the hash is a plain SHA-256, open to a dictionary")
	}
	if len(h) != 64 || strings.Contains(h, "ada") {
		t.Errorf("hash %q: want 64 hex digits", h)
	}
	if hashEmail(a, "   ") != "" {
		t.Error("a blank email hashed to something")
	}
}
