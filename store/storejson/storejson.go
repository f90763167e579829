// Package storejson converts the JSON objects that both storage engines keep in
// columns (TEXT on SQLite, JSONB on PostgreSQL) to and from Go maps.
package storejson

import (
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
	return b, nil
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
