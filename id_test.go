package levqor_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/levqor/levqor"
)

// Every id is made of the one alphabet, and object ids sort by creation time.
func TestIDAlphabet(t *testing.T) {
	object := regexp.MustCompile(`^job_[0-9a-v]{26}$`)
	prev := ""
	for range 50 {
		id := levqor.NewID("job")
		if !object.MatchString(id) {
			t.Fatalf("NewID = %q, want job_ and 26 characters of %s", id, levqor.IDAlphabet)
		}
		if id <= prev {
			t.Fatalf("%q sorts before the earlier %q", id, prev)
		}
		prev = id
		time.Sleep(time.Millisecond) // UUIDv7 orders by millisecond
	}
	if got := levqor.EncodeID([]byte{0, 0xff, 0x10, 0x20, 0x30}); !regexp.MustCompile(`^[0-9a-v]{8}$`).MatchString(got) {
		t.Errorf("EncodeID = %q", got)
	}
}
