// Package storejson converts the JSON that both storage engines keep in columns
// (TEXT on SQLite, JSONB on PostgreSQL) to and from Go values.
package storejson

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// EncodeObject serialises m (nil as {}); map keys come out sorted, so equal maps give equal bytes.
func EncodeObject(m map[string]any) ([]byte, error) {
	if m == nil {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode JSON object: %w", err)
	}
	return replaceNUL(b), nil
}

// DecodeObject parses a stored JSON object; an empty column reads as an empty map.
func DecodeObject(b []byte) (map[string]any, error) {
	m := map[string]any{}
	if len(b) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode JSON object: %w", err)
	}
	return m, nil
}

// EncodeArray serialises s as a JSON array (nil as []).
func EncodeArray[T any](s []T) ([]byte, error) {
	if s == nil {
		return []byte("[]"), nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode JSON array: %w", err)
	}
	return replaceNUL(b), nil
}

// DecodeArray parses a stored JSON array; an empty column or array reads as nil.
func DecodeArray[T any](b []byte) ([]T, error) {
	var s []T
	if len(b) == 0 || string(b) == "[]" { // the common empty array, without a decode
		return nil, nil
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode JSON array: %w", err)
	}
	if len(s) == 0 {
		return nil, nil
	}
	return s, nil
}

// EncodeRaw checks that raw is one JSON value and compacts it; empty gives nil (SQL NULL).
// Checking here keeps the engines alike: PostgreSQL's JSONB rejects what is not JSON,
// SQLite's TEXT would not.
func EncodeRaw(raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	return replaceNUL(buf.Bytes()), nil
}

// replaceNUL turns every \u0000 escape of valid JSON b into \ufffd: PostgreSQL's
// JSONB refuses U+0000 (SQLSTATE 22P05), and one such value — a vendor's body in a
// step output — would otherwise fail a whole batch of completions over and over.
// Both engines store the same bytes.
func replaceNUL(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u0000`)) {
		return b
	}
	for i := 0; i < len(b)-1; i++ {
		if b[i] != '\\' {
			continue
		}
		if b[i+1] == 'u' && i+5 < len(b) && string(b[i+2:i+6]) == "0000" {
			copy(b[i+2:i+6], "fffd")
		}
		i++ // skip the escaped character, so "\\u0000" (a backslash, then text) stays
	}
	return b
}

// EncodeRawObject is EncodeRaw for a column that holds a JSON object, with nil as {}.
func EncodeRawObject(raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 {
		return []byte("{}"), nil
	}
	return EncodeRaw(raw)
}
