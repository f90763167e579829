package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/levqor/levqor/store/storetest"
)

// BenchmarkHealthHandler measures the whole in-process handler chain for GET /health
// (no network); make bench compares the served figure with a bare server.
func BenchmarkHealthHandler(b *testing.B) {
	h, err := New(Options{Store: storetest.OpenSQLite(b), Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), MaxBodyBytes: 1 << 20, Started: time.Now(), CORSOrigins: []string{"https://levqor.ai"}})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/health", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
