package credentials_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/levqor/levqor/credentials"
)

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

func TestParseKey(t *testing.T) {
	want := mustKey(t, rawKey).ID()
	good := map[string]string{
		"hex":                hex.EncodeToString(rawKey),
		"HEX":                strings.ToUpper(hex.EncodeToString(rawKey)),
		"base64":             base64.StdEncoding.EncodeToString(rawKey),
		"base64 url":         base64.URLEncoding.EncodeToString(rawKey),
		"base64 unpadded":    base64.RawStdEncoding.EncodeToString(rawKey),
		"base64 url raw":     base64.RawURLEncoding.EncodeToString(rawKey),
		"trailing newline":   base64.StdEncoding.EncodeToString(rawKey) + "\n",
		"surrounding spaces": "  " + hex.EncodeToString(rawKey) + " ",
	}
	for name, s := range good {
		t.Run(name, func(t *testing.T) {
			k, err := credentials.ParseKey(s)
			if err != nil {
				t.Fatalf("ParseKey: %v", err)
			}
			if k.ID() != want {
				t.Errorf("ID = %s, want %s (another key)", k.ID(), want)
			}
		})
	}
	secretish := "do-not-echo-" + strings.Repeat("x", 20)
	bad := map[string]string{
		"empty":               "",
		"31 bytes base64":     base64.StdEncoding.EncodeToString(rawKey[:31]),
		"33 bytes base64":     base64.StdEncoding.EncodeToString(append(rawKey, 0)),
		"62 hex":              hex.EncodeToString(rawKey[:31]),
		"66 hex":              hex.EncodeToString(append(rawKey, 0)),
		"64 non-hex":          strings.Repeat("g", 64),
		"a passphrase":        "correct horse battery staple",
		"hex with 0x":         "0x" + hex.EncodeToString(rawKey),
		"base64 with garbage": base64.StdEncoding.EncodeToString(rawKey) + "!",
		"not echoed":          secretish,
	}
	for name, s := range bad {
		t.Run(name, func(t *testing.T) {
			k, err := credentials.ParseKey(s)
			if err == nil {
				t.Fatalf("ParseKey(%q) = key %s, want an error", s, k.ID())
			}
			if s != "" && strings.Contains(err.Error(), strings.TrimSpace(s)) {
				t.Errorf("error repeats the input: %v", err)
			}
		})
	}
}

func TestKeyFormatHidesTheKey(t *testing.T) {
	k := mustKey(t, rawKey)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q"} {
		out := fmt.Sprintf(verb, k)
		if out != "credentials.Key("+k.ID()+")" {
			t.Errorf("Sprintf(%s) = %q", verb, out)
		}
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // not there yet: created
	path := filepath.Join(dir, credentials.KeyFile)
	k1, created, err := credentials.LoadOrCreateKeyFile(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreateKeyFile: created=%v err=%v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != credentials.KeySize {
		t.Errorf("key file mode %v size %d, want 0600 and %d bytes", fi.Mode().Perm(), fi.Size(), credentials.KeySize)
	}
	k2, created, err := credentials.LoadOrCreateKeyFile(path)
	if err != nil || created {
		t.Fatalf("second LoadOrCreateKeyFile: created=%v err=%v", created, err)
	}
	if k1.ID() != k2.ID() {
		t.Errorf("reloaded key %s, want the created %s", k2.ID(), k1.ID())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if mustKey(t, raw).ID() != k1.ID() {
		t.Error("the file's bytes are not the key returned")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only the key file (temporary file left behind?)", len(entries))
	}
	// A fresh directory gives a fresh key.
	other, _, err := credentials.LoadOrCreateKeyFile(filepath.Join(t.TempDir(), credentials.KeyFile))
	if err != nil || other.ID() == k1.ID() {
		t.Errorf("a second data dir got key %s (err %v), want a new random key", other.ID(), err)
	}
}

func TestLoadOrCreateKeyFileRefusesWrongLength(t *testing.T) {
	for _, size := range []int{0, 16, 31, 33, 64} {
		path := filepath.Join(t.TempDir(), credentials.KeyFile)
		content := bytes.Repeat([]byte{'k'}, size)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if k, _, err := credentials.LoadOrCreateKeyFile(path); err == nil {
			t.Errorf("%d-byte key file: got key %s, want an error", size, k.ID())
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(after, content) {
			t.Errorf("%d-byte key file was overwritten", size)
		}
	}
}

func TestLoadOrCreateKeyFileRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), credentials.KeyFile)
	const n = 8
	ids := make([]string, n)
	created := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, c, err := credentials.LoadOrCreateKeyFile(path)
			if err != nil {
				t.Errorf("LoadOrCreateKeyFile: %v", err)
				return
			}
			ids[i], created[i] = k.ID(), c
		})
	}
	wg.Wait()
	creators := 0
	for i := range n {
		if ids[i] != ids[0] {
			t.Errorf("racer %d got key %s, racer 0 %s: two keys for one file", i, ids[i], ids[0])
		}
		if created[i] {
			creators++
		}
	}
	if creators != 1 {
		t.Errorf("%d racers report creating the key, want 1", creators)
	}
}

// FuzzParseKey: ParseKey never panics; it accepts exactly the inputs that decode
// (hex, or one of the base64 forms) to KeySize bytes, as that key; and its error
// depends on the input's length only, so it never repeats any of it.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{
		"", hex.EncodeToString(rawKey), base64.StdEncoding.EncodeToString(rawKey), base64.RawURLEncoding.EncodeToString(rawKey),
		strings.Repeat("=", 44), strings.Repeat("A", 43), strings.Repeat("0", 64), " \n\t", "\x00\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := credentials.ParseKey(s)
		raw := decodeKey(strings.TrimSpace(s))
		switch {
		case err != nil && raw != nil:
			t.Fatalf("ParseKey(%q) refused a %d-byte key: %v", s, len(raw), err)
		case err == nil && raw == nil:
			t.Fatalf("ParseKey(%q) accepted input that is no %d-byte key", s, credentials.KeySize)
		case err == nil && k.ID() != mustKey(t, raw).ID():
			t.Fatalf("ParseKey(%q) = key %s, want %s", s, k.ID(), mustKey(t, raw).ID())
		case err != nil:
			_, plain := credentials.ParseKey(strings.Repeat("!", len(strings.TrimSpace(s))))
			if err.Error() != plain.Error() {
				t.Fatalf("ParseKey(%q) error %q depends on the input's content", s, err)
			}
		}
	})
}

// decodeKey is the fuzz oracle: the KeySize bytes s encodes as hex or base64, or nil.
func decodeKey(s string) []byte {
	if b, err := hex.DecodeString(s); err == nil && len(b) == credentials.KeySize {
		return b
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == credentials.KeySize {
			return b
		}
	}
	return nil
}

// Derive gives the same key for the same key and purpose (every instance sharing
// LEVQOR_SECRET_KEY agrees), another for another purpose or key, and never the raw
// key itself.
func TestDerive(t *testing.T) {
	k := mustKey(t, rawKey)
	a, b := k.Derive("levqor/approval-token/v1"), mustKey(t, rawKey).Derive("levqor/approval-token/v1")
	if len(a) != 32 || !bytes.Equal(a, b) {
		t.Fatalf("Derive is not stable: %x, %x", a, b)
	}
	other := bytes.Clone(rawKey)
	other[0] ^= 1
	for name, d := range map[string][]byte{
		"another purpose": k.Derive("levqor/other/v1"),
		"another key":     mustKey(t, other).Derive("levqor/approval-token/v1"),
		"the raw key":     rawKey,
	} {
		if bytes.Equal(a, d) {
			t.Errorf("the derived key equals %s", name)
		}
	}
}
