package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"

	apispec "github.com/levqor/levqor/api/spec"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/store/storetest"
	"github.com/levqor/levqor/users"
)

// BenchmarkPerimeter measures what the perimeter adds to a request: request id,
// client IP, access log (to io.Discard), security headers, CORS, body limit, JSON
// guard, key authentication (a real SQLite lookup), per-key rate limit (memory
// store) and scope check — against the same inner handler called bare.
// Issue #3 asks that chain − bare ≤ 20 µs.
func BenchmarkPerimeter(b *testing.B) {
	ctx := context.Background()
	st := storetest.OpenSQLite(b)
	admin := keys.Principal{Scopes: []string{keys.ScopeAdmin}}
	u, _, err := users.NewService(st).Upsert(ctx, admin, "bench@example.com", users.Fields{})
	if err != nil {
		b.Fatal(err)
	}
	ks := keys.NewService(st, nil)
	_, secret, err := ks.Create(ctx, keys.CreateInput{OwnerID: u.ID, Scopes: []string{keys.ScopeUsersRead}})
	if err != nil {
		b.Fatal(err)
	}
	spec, err := apispec.Load()
	if err != nil {
		b.Fatal(err)
	}
	spec.Servers = nil
	limits := newRateLimits(&Limits{IP: limiter.Rate{Period: 60e9, Limit: 1 << 40}, Global: limiter.Rate{Period: 60e9, Limit: 1 << 40},
		Key: limiter.Rate{Period: 60e9, Limit: 1 << 40}, Store: memory.NewStore(), FailOpen: true}, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	g := newGate(spec, ks, limits)
	route := &routers.Route{Spec: spec, Path: "/api/v1/users/{id}", Method: http.MethodGet, Operation: spec.Paths.Find("/api/v1/users/{id}").Get}

	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	auth := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in := &openapi3filter.AuthenticationInput{RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, Route: route}}
		if err := g.authenticate(r.Context(), in); err != nil {
			writeProblem(w, r, err)
			return
		}
		inner.ServeHTTP(w, r)
	})
	var chain http.Handler = auth
	chain = guardJSON(chain)
	chain = limitBody(512<<10, chain)
	chain = corsHeaders([]string{"https://app.levqor.ai"}, chain)
	chain = hsts(chain)
	chain = securityHeaders(chain)
	chain = observe(slog.New(slog.NewJSONHandler(io.Discard, nil)), nil, nil, chain)

	run := func(b *testing.B, h http.Handler) {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/users/"+u.ID, nil)
		req.Header.Set("X-Api-Key", secret)
		req.Header.Set("Origin", "https://app.levqor.ai")
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, inner) })
	b.Run("chain", func(b *testing.B) { run(b, chain) })
}
