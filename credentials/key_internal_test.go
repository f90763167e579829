package credentials

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

const fuzzSecret = "xoxb-fuzz-secret-value-0123456789"

func testKey(t testing.TB, fill byte) Key {
	t.Helper()
	k, err := NewKey(bytes.Repeat([]byte{fill}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := testKey(t, 7)
	in := map[string]string{"token": fuzzSecret, "other": "ünïcode ✓"}
	a, err := k.seal(in, "usr_a", "slack", "default")
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.seal(in, "usr_a", "slack", "default")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) || bytes.Equal(a[headerLen:headerLen+12], b[headerLen:headerLen+12]) {
		t.Error("two seals of the same secrets share a nonce")
	}
	if a[0] != formatV1 || !bytes.Equal(a[1:headerLen], k.id[:]) {
		t.Errorf("header = %x, want format %d and key id %s", a[:headerLen], formatV1, k.ID())
	}
	if bytes.Contains(a, []byte(fuzzSecret)) || bytes.Contains(a, []byte("token")) {
		t.Error("the sealed value holds the plaintext")
	}
	got, err := k.open(a, "usr_a", "slack", "default")
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if len(got) != 2 || got["token"] != in["token"] || got["other"] != in["other"] {
		t.Errorf("open = %v, want %v", got, in)
	}

	// Bound to its identity: another owner, connector or name (including ones
	// whose concatenation is the same) does not open it.
	for _, id := range [][3]string{
		{"usr_b", "slack", "default"}, {"usr_a", "notion", "default"}, {"usr_a", "slack", "work"},
		{"usr_as", "lack", "default"}, {"", "usr_aslack", "default"},
	} {
		_, err := k.open(a, id[0], id[1], id[2])
		if !errors.Is(err, ErrUndecryptable) || !strings.Contains(err.Error(), "authentication") {
			t.Errorf("open as %q: %v, want an authentication failure", id, err)
		}
	}
	// Every single-bit flip is refused.
	for i := range a {
		for bit := range 8 {
			c := bytes.Clone(a)
			c[i] ^= 1 << bit
			if _, err := k.open(c, "usr_a", "slack", "default"); !errors.Is(err, ErrUndecryptable) {
				t.Fatalf("flipping bit %d of byte %d: %v, want ErrUndecryptable", bit, i, err)
			}
		}
	}
	// Another key says so, naming both key ids.
	other := testKey(t, 8)
	_, err = other.open(a, "usr_a", "slack", "default")
	if !errors.Is(err, ErrUndecryptable) || !strings.Contains(err.Error(), k.ID()) || !strings.Contains(err.Error(), other.ID()) {
		t.Errorf("open with another key: %v, want ErrUndecryptable naming keys %s and %s", err, k.ID(), other.ID())
	}
}

// fuzzSealed is {"token": fuzzSecret} sealed with testKey(7) for ("usr_a", "slack",
// "default"). It is fixed rather than sealed afresh, because fuzz workers are other
// processes (each would seal with its own nonce); it also pins the stored format,
// which rows already in databases depend on.
const fuzzSealed = "0198973777fa0de266c1c7435db0ec43d906dcfa31dd681890d24b5d27116938fa4d67057e6a9f4f6325f316fcf783703705ffcc191fdd20bbb305bfd65a6dabe587339a0181e7b716cb208880fc"

// FuzzOpen: opening arbitrary bytes never panics, fails with ErrUndecryptable
// without echoing secrets, and succeeds only for the one value sealed for exactly
// that connection.
func FuzzOpen(f *testing.F) {
	k := testKey(f, 7)
	valid, err := hex.DecodeString(fuzzSealed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid, "usr_a", "slack", "default")
	f.Add(valid[:len(valid)-1], "usr_a", "slack", "default")
	f.Add(valid[:headerLen+12], "usr_a", "slack", "default")
	f.Add(valid[:headerLen], "usr_a", "slack", "default")
	f.Add(valid, "usr_b", "slack", "default")
	f.Add([]byte{}, "", "", "")
	f.Add([]byte{formatV1}, "", "", "")
	f.Add(append([]byte{2}, valid[1:]...), "usr_a", "slack", "default")
	f.Fuzz(func(t *testing.T, sealed []byte, owner, connector, name string) {
		secrets, err := k.open(sealed, owner, connector, name)
		if err == nil {
			if !bytes.Equal(sealed, valid) || owner != "usr_a" || connector != "slack" || name != "default" {
				t.Fatalf("opened a value not sealed for (%q, %q, %q): %v", owner, connector, name, secrets)
			}
			if secrets["token"] != fuzzSecret {
				t.Fatalf("opened to %v", secrets)
			}
			return
		}
		if !errors.Is(err, ErrUndecryptable) {
			t.Fatalf("error %v does not match ErrUndecryptable", err)
		}
		if strings.Contains(err.Error(), fuzzSecret) {
			t.Fatalf("error holds the secret: %v", err)
		}
	})
}

// BenchmarkOpen is the decryption part of Resolve.
func BenchmarkOpen(b *testing.B) {
	k := testKey(b, 7)
	sealed, err := hex.DecodeString(fuzzSealed)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.open(sealed, "usr_a", "slack", "default"); err != nil {
			b.Fatal(err)
		}
	}
}
