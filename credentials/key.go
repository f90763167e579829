package credentials

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

// KeyFile is the name of the generated key in the data directory.
const KeyFile = "secret.key"

// formatV1 is the first byte of every sealed value: AES-256-GCM with a random
// 96-bit nonce. The next keyIDLen bytes name the key; a rotation would add a key
// ring looked up by them (or a new format byte).
const (
	formatV1  = 1
	keyIDLen  = 4
	headerLen = 1 + keyIDLen
)

// ErrUndecryptable matches the error of a stored connection that cannot be
// decrypted: sealed under another key, altered, or copied to another owner,
// connector or name.
var ErrUndecryptable = errors.New("credentials: the stored connection cannot be decrypted")

// Key seals and opens stored credentials. The zero Key is not usable; get one
// from NewKey, ParseKey or LoadOrCreateKeyFile. It formats as its ID only, so
// printing it does not leak it.
type Key struct {
	id   [keyIDLen]byte
	aead cipher.AEAD
	// derive is the root of the keys Derive gives, itself derived from the raw key
	// (never the raw key, so a derived key reveals nothing about what seals).
	derive [sha256.Size]byte
}

// NewKey returns the Key of KeySize raw bytes.
func NewKey(raw []byte) (Key, error) {
	if len(raw) != KeySize {
		return Key{}, fmt.Errorf("a key is %d bytes, got %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return Key{}, err
	}
	// A fresh random nonce for every seal, prepended to the ciphertext.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return Key{}, err
	}
	sum := sha256.Sum256(append([]byte("levqor credentials key id\x00"), raw...))
	k := Key{aead: aead}
	copy(k.id[:], sum[:])
	m := hmac.New(sha256.New, raw)
	m.Write([]byte("levqor derived keys\x00"))
	m.Sum(k.derive[:0])
	return k, nil
}

// Derive returns a 32-byte key for purpose (e.g. "levqor/approval-token/v1"),
// HMAC-SHA-256 of the purpose under a root derived from the key: the same on every
// instance that shares the key, different for each purpose, and useless for
// opening what the key seals.
func (k Key) Derive(purpose string) []byte {
	m := hmac.New(sha256.New, k.derive[:])
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// ID is a short public fingerprint of the key (8 hex digits), safe to log: it
// tells which key sealed a connection without revealing the key.
func (k Key) ID() string { return hex.EncodeToString(k.id[:]) }

// Format prints the key as its ID, whatever the verb.
func (k Key) Format(f fmt.State, _ rune) { fmt.Fprintf(f, "credentials.Key(%s)", k.ID()) }

// ParseKey parses a key written as base64 (standard or URL alphabet, padded or
// not) or as 64 hex digits; surrounding white space is ignored. Its error never
// repeats the input.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		if raw, err := hex.DecodeString(s); err == nil {
			return NewKey(raw)
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(s); err == nil && len(raw) == KeySize {
			return NewKey(raw)
		}
	}
	return Key{}, fmt.Errorf("want %d bytes as base64 (e.g. from `openssl rand -base64 32`) or %d hex digits; got %d characters that are neither",
		KeySize, 2*KeySize, len(s))
}

// LoadOrCreateKeyFile returns the key in the file at path (exactly KeySize raw
// bytes), creating the file with fresh random bytes and mode 0600 when it does not
// exist; created says which. A file of any other length is refused: connections
// sealed with the original key could not be read with another.
func LoadOrCreateKeyFile(path string) (k Key, created bool, err error) {
	k, err = readKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Key{}, false, fmt.Errorf("create key directory: %w", err)
	}
	raw := make([]byte, KeySize)
	_, _ = rand.Read(raw) // never fails (crypto/rand crashes the program instead)
	// Written in full under a temporary name, then linked into place: a concurrent
	// reader never sees a partial key, and of two processes racing, one wins and
	// the other reads the winner's key.
	tmp, err := os.CreateTemp(dir, ".secret.key-*") // mode 0600
	if err != nil {
		return Key{}, false, fmt.Errorf("create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(raw)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Key{}, false, fmt.Errorf("write key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		k, err := readKeyFile(path)
		return k, false, err
	} else if err != nil {
		return Key{}, false, fmt.Errorf("create key file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the new name durable
		d.Close()
	}
	k, err = NewKey(raw)
	clear(raw)
	return k, true, err
}

// readKeyFile reads the key at path; a missing file is an error matching fs.ErrNotExist.
func readKeyFile(path string) (Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return Key{}, fmt.Errorf("open key file: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, KeySize+1))
	if err != nil {
		return Key{}, fmt.Errorf("read key file %s: %w", path, err)
	}
	defer clear(raw)
	if len(raw) != KeySize {
		return Key{}, fmt.Errorf("key file %s is not %d bytes: restore the original (connections stored with it cannot be read with another key) or set LEVQOR_SECRET_KEY", path, KeySize)
	}
	return NewKey(raw)
}

// seal encrypts secrets for the connection (owner, connector, name): the header
// (format, key id), then the nonce and the ciphertext with its tag. The header and
// the connection's identity are authenticated, so the value opens only there.
func (k Key) seal(secrets map[string]string, owner, connector, name string) ([]byte, error) {
	plain, err := json.Marshal(secrets)
	if err != nil {
		return nil, fmt.Errorf("encode secrets: %w", err)
	}
	defer clear(plain)
	out := make([]byte, headerLen, headerLen+len(plain)+k.aead.Overhead())
	out[0] = formatV1
	copy(out[1:], k.id[:])
	return k.aead.Seal(out, nil, plain, additionalData(out[:headerLen], owner, connector, name)), nil
}

// open decrypts a value seal made for the same connection. Its errors match
// ErrUndecryptable and never contain the plaintext.
func (k Key) open(sealed []byte, owner, connector, name string) (map[string]string, error) {
	if len(sealed) < headerLen || sealed[0] != formatV1 {
		return nil, fmt.Errorf("%w: unknown format", ErrUndecryptable)
	}
	if id := sealed[1:headerLen]; !bytes.Equal(id, k.id[:]) {
		return nil, fmt.Errorf("%w: it was sealed with key %x, and this server's key is %s (was LEVQOR_SECRET_KEY or %s changed?)",
			ErrUndecryptable, id, k.ID(), KeyFile)
	}
	plain, err := k.aead.Open(nil, nil, sealed[headerLen:], additionalData(sealed[:headerLen], owner, connector, name))
	if err != nil {
		return nil, fmt.Errorf("%w: it fails authentication (altered, or copied from another owner, connector or name)", ErrUndecryptable)
	}
	defer clear(plain)
	var secrets map[string]string
	if err := json.Unmarshal(plain, &secrets); err != nil || secrets == nil {
		return nil, fmt.Errorf("%w: its contents are malformed", ErrUndecryptable)
	}
	return secrets, nil
}

// additionalData binds a sealed value to its header and its connection; each part
// is length-prefixed, so no two identities give the same bytes.
func additionalData(header []byte, owner, connector, name string) []byte {
	b := make([]byte, 0, len(header)+len(owner)+len(connector)+len(name)+3*binary.MaxVarintLen64)
	b = append(b, header...)
	for _, s := range []string{owner, connector, name} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}
