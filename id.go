package levqor

import (
	"encoding/base32"

	"github.com/google/uuid"
)

// IDAlphabet is the one alphabet of every id Levqor makes (object ids, request
// ids): lower-case base32hex, whose order is the bytes' order, so UUIDv7 ids sort
// by creation time. Stored ids already use it; ids are never decoded, only matched.
const IDAlphabet = "0123456789abcdefghijklmnopqrstuv"

var idEncoding = base32.NewEncoding(IDAlphabet).WithPadding(base32.NoPadding)

// EncodeID writes b in IDAlphabet, without padding.
func EncodeID(b []byte) string { return idEncoding.EncodeToString(b) }

// NewID returns a new object id such as "usr_01jc…": the prefix, an underscore and a
// UUIDv7 in lower-case base32, so ids sort by creation time.
func NewID(prefix string) string {
	u := uuid.Must(uuid.NewV7())
	return prefix + "_" + idEncoding.EncodeToString(u[:])
}
