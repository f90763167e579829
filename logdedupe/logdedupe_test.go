package logdedupe

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestDedupe: 100 ERROR lines of one cause within the interval give one line; the
// next one after the interval carries the count dropped; other causes, internal
// errors and lower levels are untouched.
func TestDedupe(t *testing.T) {
	var buf bytes.Buffer
	h := New(slog.NewJSONHandler(&buf, nil), 10*time.Second)
	now := time.Unix(1_000_000, 0)
	h.now = func() time.Time { return now }
	log := slog.New(h).With("service", "levqor")
	for i := range 100 {
		log.Error("request failed", "code", "unavailable", "request_id", i)
		log.Error("request failed", "code", "internal", "request_id", i)
	}
	log.Error("request failed", "code", "storage_full")
	log.Warn("slow", "code", "unavailable")
	now = now.Add(10 * time.Second)
	log.Error("request failed", "code", "unavailable", "request_id", 100)

	var unavailable, internal, full, warn int
	var repeated float64
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %s", line)
		}
		switch {
		case m["level"] == "WARN":
			warn++
		case m["code"] == "unavailable":
			unavailable++
			if r, ok := m["repeated"].(float64); ok {
				repeated = r
			}
		case m["code"] == "internal":
			internal++
		case m["code"] == "storage_full":
			full++
		}
	}
	if unavailable != 2 || repeated != 99 || internal != 100 || full != 1 || warn != 1 {
		t.Errorf("unavailable %d (repeated %v), internal %d, storage_full %d, warn %d; want 2 (99), 100, 1, 1",
			unavailable, repeated, internal, full, warn)
	}
}
