package keys

import (
	"bytes"
	"strings"
	"testing"
)

func TestGenerateParsesAndHashes(t *testing.T) {
	seen := map[string]bool{}
	for _, env := range []string{EnvLive, EnvTest} {
		for i := 0; i < 50; i++ {
			secret, k, err := Generate(env)
			if err != nil {
				t.Fatal(err)
			}
			want := PrefixLive
			if env == EnvTest {
				want = PrefixTest
			}
			if !strings.HasPrefix(secret, want) || k.Prefix != want {
				t.Fatalf("secret %q / prefix %q, want prefix %q", secret, k.Prefix, want)
			}
			if len(secret) != len(want)+bodyLen {
				t.Fatalf("secret length %d, want %d", len(secret), len(want)+bodyLen)
			}
			if prefix, err := Parse(secret); err != nil || prefix != want {
				t.Fatalf("Parse(%q) = %q, %v", secret, prefix, err)
			}
			if k.Last4 != secret[len(secret)-4:] || !bytes.Equal(k.Hash, Hash(secret)) {
				t.Fatalf("stored form does not match the secret")
			}
			if bytes.Contains(k.Hash, []byte(secret[len(want):])) {
				t.Fatal("hash contains the secret")
			}
			if seen[secret] {
				t.Fatal("duplicate secret")
			}
			seen[secret] = true
		}
	}
}

func TestParseRefusesMalformedKeys(t *testing.T) {
	good, _, _ := Generate(EnvLive)
	for name, s := range map[string]string{
		"empty":          "",
		"no prefix":      good[len(PrefixLive):],
		"other prefix":   "sk_live_" + good[len(PrefixLive):],
		"short":          good[:len(good)-1],
		"long":           good + "a",
		"bad character":  good[:len(good)-1] + "-",
		"space":          good[:len(good)-1] + " ",
		"unicode":        good[:len(good)-2] + "é",
		"upper prefix":   strings.ToUpper(PrefixLive) + good[len(PrefixLive):],
		"prefix only":    PrefixTest,
		"newline inside": good[:20] + "\n" + good[21:],
	} {
		if _, err := Parse(s); err == nil {
			t.Errorf("%s: Parse(%q) accepted a malformed key", name, s)
		}
	}
}

// FuzzParse: Parse never panics, accepts only strings of the documented shape, and
// every key it accepts round-trips its prefix.
func FuzzParse(f *testing.F) {
	good, _, _ := Generate(EnvLive)
	test, _, _ := Generate(EnvTest)
	for _, s := range []string{good, test, "", "lvq_live_", "lvq_test_" + strings.Repeat("z", 43), "lvq_live_" + strings.Repeat("\x00", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		prefix, err := Parse(s)
		if err != nil {
			return
		}
		if prefix != PrefixLive && prefix != PrefixTest {
			t.Fatalf("accepted %q with prefix %q", s, prefix)
		}
		body := strings.TrimPrefix(s, prefix)
		if len(body) != bodyLen || strings.Trim(body, base62) != "" {
			t.Fatalf("accepted %q whose body is not %d base62 characters", s, bodyLen)
		}
	})
}
