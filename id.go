package levqor

import (
	"encoding/base32"

	"github.com/google/uuid"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// NewID returns a new object id such as "usr_01jc…": the prefix, an underscore and a
// UUIDv7 in lower-case base32, so ids sort by creation time.
func NewID(prefix string) string {
	u := uuid.Must(uuid.NewV7())
	return prefix + "_" + idEncoding.EncodeToString(u[:])
}
