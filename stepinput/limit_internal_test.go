package stepinput

import (
	"errors"
	"testing"
)

// FuzzResolveLimit checks that the size accounting is exact: an input that resolves to
// n bytes resolves within a limit of n and fails with a *SizeError under n-1, so the
// limit is never passed and never refuses what fits.
func FuzzResolveLimit(f *testing.F) {
	payload := `{"s": "a\"b\\c\n\u0001\u2028é<&>", "bad": "\xff", "n": 1.50, "o": {"k\"": [true, null, "x"]}, "e": {}, "a": []}`
	for _, s := range []string{
		`{"a": "{{payload.s}}", "b": ["{{payload.o}}", "x{{payload.o}}y{{payload.s}}"]}`,
		`["{{payload}}", "{{payload.n}}-{{payload.bad}}", "{{payload.e}}{{payload.a}}", "{{nope}}"]`,
		`{"k\u2028": "\u0000 {{ payload.o.k\" }}"}`,
		`"{{payload.bad}}"`,
		`[1, 2.5e10, true, null, {"b": "c"}, []]`,
	} {
		f.Add([]byte(s), []byte(payload))
	}
	f.Fuzz(func(t *testing.T, input, payload []byte) {
		out, err := resolve(input, payload, nil, nil, 1<<20)
		if err != nil {
			return
		}
		n := len(out)
		if again, err := resolve(input, payload, nil, nil, n); err != nil || string(again) != string(out) {
			t.Fatalf("resolve(%q) is %d bytes, yet within a limit of %d: %q, %v", input, n, n, again, err)
		}
		var se *SizeError
		if _, err := resolve(input, payload, nil, nil, n-1); !errors.As(err, &se) || se.Limit != n-1 {
			t.Fatalf("resolve(%q) is %d bytes, yet within a limit of %d: err %v, want a *SizeError", input, n, n-1, err)
		}
	})
}

// TestValueSize: valueSize is the length encode writes, and stops early past its limit.
func TestValueSize(t *testing.T) {
	doc := `{"s": "a\"b\\c\n\b\f\r\t\u0001\u001f\u007f\u2028\u2029é😀<&>", "n": [0, -1.5e-7, 12345678901234567890], "b": [true, false, null],
		"o": {"": {}, "k\"": [[], {}]}}`
	v, err := decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	v.(map[string]any)["bad"] = "x\xffy\xc3" // invalid UTF-8 is written as \ufffd
	b, err := encode(v)
	if err != nil {
		t.Fatal(err)
	}
	if got := valueSize(v, 1<<20); got != len(b) {
		t.Errorf("valueSize = %d, want %d (%s)", got, len(b), b)
	}
	if got := valueSize(v, 10); got <= 10 || got > 10+len(b) {
		t.Errorf("valueSize with limit 10 = %d, want a number above 10", got)
	}
}
