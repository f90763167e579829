package storejson

import (
	"encoding/json"
	"testing"
)

func TestReplaceNUL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"s":"a\u0000b"}`, `{"s":"a\ufffdb"}`},
		{`{"s":"a\\u0000b"}`, `{"s":"a\\u0000b"}`}, // an escaped backslash, then text
		{`{"s":"\\\u0000"}`, `{"s":"\\\ufffd"}`},   // a backslash, then NUL
		{`{"s":"\u00001"}`, `{"s":"\ufffd1"}`},
	} {
		got, err := EncodeRaw(json.RawMessage(c.in))
		if err != nil || string(got) != c.want {
			t.Errorf("EncodeRaw(%s) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	got, _ := EncodeArray([]string{"a\x00b"})
	if string(got) != `["a\ufffdb"]` {
		t.Errorf("EncodeArray = %s", got)
	}
}
