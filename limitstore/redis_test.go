package limitstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/levqor/levqor/limitstore"
)

// TestRedisLogger: go-redis's Printf lines come out as one slog JSON object each.
func TestRedisLogger(t *testing.T) {
	var buf bytes.Buffer
	l := limitstore.RedisLogger(slog.New(slog.NewJSONHandler(&buf, nil)))
	l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %s", 1, "connection refused")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not one JSON object: %q", buf.String())
	}
	if m["msg"] != "redis client" || m["code"] != "unavailable" || m["detail"] != "redis: connection pool: failed to dial after 1 attempts: connection refused" {
		t.Errorf("line %v", m)
	}
}
