package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/outbound"
	"github.com/levqor/levqor/server"
	"github.com/levqor/levqor/store/storetest"
	"github.com/levqor/levqor/users"
)

// BenchmarkRequestPath measures the whole in-process handler (no network) on the
// routes levqor-bench loads: userget (GET /api/v1/users/{id} with a users:read
// key), intake (POST /api/v1/intake of one core.echo step, admin key) and
// intake-batch (100 such jobs per POST /api/v1/intake/batch; per request). Rate
// limits run (memory store) but never refuse; the job engine runs the jobs.
func BenchmarkRequestPath(b *testing.B) {
	ctx := context.Background()
	st := storetest.OpenSQLite(b)
	reg, err := connectors.NewRegistry(core.New())
	if err != nil {
		b.Fatal(err)
	}
	guard, err := outbound.NewGuard(nil)
	if err != nil {
		b.Fatal(err)
	}
	engine := startEngine(b, jobs.Config{Store: st, Registry: reg, Guard: guard, ShutdownTimeout: 5 * time.Second,
		Worker: jobs.WorkerOptions{Concurrency: 16, Lease: time.Minute, Poll: 50 * time.Millisecond}, Encode: server.EncodeJob,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	lots := limiter.Rate{Period: time.Minute, Limit: 1 << 40}
	o := testOptions{Store: st, Options: server.Options{
		Jobs: engine.Service, Hub: engine.Hub, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), MaxBodyBytes: 512 << 10, Started: time.Now(),
		CORSOrigins: []string{"https://app.levqor.ai"}, Limits: &server.Limits{IP: lots, Global: lots, Key: lots, Store: memory.NewStore(), FailOpen: true},
	}}
	opts := o.build(b)
	h, err := server.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	admin := keys.Principal{Scopes: []string{keys.ScopeAdmin}}
	u, _, err := users.NewService(st).Upsert(ctx, admin, "bench@example.com", users.Fields{})
	if err != nil {
		b.Fatal(err)
	}
	_, reader, err := opts.Keys.Create(ctx, keys.CreateInput{OwnerID: u.ID, Scopes: []string{keys.ScopeUsersRead}})
	if err != nil {
		b.Fatal(err)
	}
	_, writer, err := opts.Keys.Create(ctx, keys.CreateInput{OwnerID: u.ID, Scopes: []string{keys.ScopeAdmin}})
	if err != nil {
		b.Fatal(err)
	}
	job := `{"workflow":"bench","payload":{"n":1},"steps":[{"id":"a","connector":"core","action":"echo","input":{"x":"{{payload.n}}"}}]}`
	batch := `{"jobs":[` + strings.TrimSuffix(strings.Repeat(`{"job":`+job+`},`, 100), ",") + `]}`
	for _, tt := range []struct {
		name, method, path, key, body string
		status                        int
	}{
		{"userget", http.MethodGet, "/api/v1/users/" + u.ID, reader, "", http.StatusOK},
		{"intake", http.MethodPost, "/api/v1/intake", writer, job, http.StatusAccepted},
		{"intake-batch", http.MethodPost, "/api/v1/intake/batch", writer, batch, http.StatusOK},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
				req.Header.Set("X-Api-Key", tt.key)
				if tt.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != tt.status {
					b.Fatalf("status %d: %.300s", w.Code, w.Body)
				}
			}
		})
	}
}
