package analytics

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	// SecretFile is the generated hash secret's file name in the data directory.
	SecretFile = "hash.secret"
	// secretBytes is the size of a generated secret.
	secretBytes = 32
	// MinSecretBytes is the shortest secret NewService accepts.
	MinSecretBytes = 16
)

// LoadSecret returns the key of the tracked emails' HMAC: configured (from
// LEVQOR_HASH_SECRET) when it is set, else a random 32-byte secret kept hex-encoded
// in dataDir/hash.secret, created with mode 0600 the first time. Instances that share
// a PostgreSQL database but not a data directory must be configured with one secret,
// or the same email would hash differently on each.
func LoadSecret(configured, dataDir string) ([]byte, error) {
	if configured != "" {
		if len(configured) < MinSecretBytes {
			return nil, fmt.Errorf("LEVQOR_HASH_SECRET: want at least %d characters", MinSecretBytes)
		}
		return []byte(configured), nil
	}
	path := filepath.Join(dataDir, SecretFile)
	secret, err := readSecret(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return secret, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := createSecret(path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	// Ours, or that of a process that won the race to create it.
	return readSecret(path)
}

func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read hash secret: %w", err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("hash secret %s is malformed: want at least %d hex-encoded bytes", path, MinSecretBytes)
	}
	return secret, nil
}

// createSecret writes a new random secret to a temporary file and links it to path,
// so that no reader ever sees a partial file and an existing secret is never
// replaced (the link fails with fs.ErrExist).
func createSecret(path string) error {
	secret := make([]byte, secretBytes)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+SecretFile+"-*") // mode 0600
	if err != nil {
		return fmt.Errorf("create hash secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(secret) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write hash secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("create hash secret: %w", err)
	}
	return nil
}

// HashEmail is the keyed hash under which Levqor keeps an email it must not keep in
// clear (tracked events, unconfirmed newsletter subscriptions); see hashEmail.
func HashEmail(secret []byte, email string) string { return hashEmail(secret, email) }

// hashEmail returns the hex HMAC-SHA-256 under secret of the email trimmed and
// lower-cased, or "" for an empty one. Without the secret, a dictionary of emails
// cannot be hashed to match it.
func hashEmail(secret []byte, email string) string {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return ""
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(email))
	return hex.EncodeToString(m.Sum(nil))
}
