package levqor

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONDepth(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
	}{
		{``, 0},
		{`1`, 0},
		{`{}`, 1},
		{`[[]]`, 2},
		{`{"a":[{"b":[]}]}`, 4},
		{`"[[[[[["`, 0},               // brackets inside a string do not count
		{`{"a":"\"[[[["}`, 1},         // nor after an escaped quote
		{`{"a":"\\"}`, 1},             // an escaped backslash ends the escape
		{`]]]]{`, 1},                  // stray closers never go below zero
		{strings.Repeat("[", 33), 33}, // unterminated input is measured too
		{`{"a":[1,{"b":2}]}`, 3},
		{`{"a":"[[[{{{"}`, 1},
		{`{"a":{},"b":{}}`, 2},
	} {
		if got := JSONDepth([]byte(tt.in)); got != tt.want {
			t.Errorf("JSONDepth(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// decodedDepth is the reference: the depth encoding/json sees when it decodes v.
func decodedDepth(v any) int {
	switch x := v.(type) {
	case map[string]any:
		d := 0
		for _, e := range x {
			d = max(d, decodedDepth(e))
		}
		return d + 1
	case []any:
		d := 0
		for _, e := range x {
			d = max(d, decodedDepth(e))
		}
		return d + 1
	}
	return 0
}

// FuzzJSONDepth: on every valid JSON document, the lexical scan agrees with the
// depth of the decoded value; on any input it never panics.
func FuzzJSONDepth(f *testing.F) {
	for _, s := range []string{`{}`, `[1,[2,[3]]]`, `{"a":"]\"}"}`, `"\\"`, `[{"x":[{}]}]`, strings.Repeat("[", 40) + strings.Repeat("]", 40)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := JSONDepth(b)
		if !json.Valid(b) {
			return
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&v); err != nil {
			return
		}
		if want := decodedDepth(v); got != want {
			t.Fatalf("JSONDepth(%q) = %d, decoder says %d", b, got, want)
		}
	})
}
