package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	apispec "github.com/levqor/levqor/api/spec"
	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/store/storetest"
	"github.com/levqor/levqor/users"
)

// BenchmarkHealthHandler measures the whole in-process handler chain for GET /health
// (no network); make bench compares the served figure with a bare server.
func BenchmarkHealthHandler(b *testing.B) {
	st := storetest.OpenSQLite(b)
	spec, err := apispec.Load()
	if err != nil {
		b.Fatal(err)
	}
	h, err := New(Options{Spec: spec, Database: st, Keys: keys.NewService(st, nil), Users: users.NewService(st), Hub: jobs.NewHub(),
		Budgets: budget.NewService(st, budget.Limits{}), Notifications: notifier.NewPreferences(st, st), Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), MaxBodyBytes: 1 << 20, Started: time.Now(), CORSOrigins: []string{"https://levqor.ai"}})
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
