package server

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/rs/cors"
	"github.com/ulule/limiter/v3"

	"github.com/levqor/levqor"
)

// clientIP is the caller's address: the socket peer, or — only when that peer is a
// trusted proxy — the right-most address in X-Forwarded-For that is not itself a
// trusted proxy (then X-Real-IP). It also reports whether the peer is trusted.
func clientIP(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	peer := remoteAddr(r)
	if !inPrefixes(peer, trusted) {
		return peer, false
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		hops := strings.Split(strings.Join(xff, ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a malformed hop: stop believing the chain here
			}
			a = a.Unmap()
			if !inPrefixes(a, trusted) {
				return a, true
			}
			peer = a
		}
		return peer, true
	}
	if a, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("X-Real-IP"))); err == nil {
		return a.Unmap(), true
	}
	return peer, true
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	return a.Unmap()
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// hsts sends Strict-Transport-Security on responses that reached us over TLS, either
// directly or through a trusted proxy that says so.
func hsts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := requestInfoFrom(r.Context())
		if r.TLS != nil || (info != nil && info.viaTrustedProxy && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")) {
			w.Header().Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

// corsHeaders answers preflights and adds CORS headers for allow-listed origins only;
// other origins get no CORS headers at all.
func corsHeaders(origins []string, next http.Handler) http.Handler {
	return cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
		AllowedHeaders: []string{"Content-Type", "X-Api-Key", "Idempotency-Key", "X-Request-ID", "If-None-Match"},
		ExposedHeaders: []string{"X-Request-ID", "Location", "Retry-After", "RateLimit", "RateLimit-Policy",
			"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "ETag"},
		MaxAge: 600,
	}).Handler(next)
}

// Limits configures rate limiting. A nil *Limits turns it off (tests of other things).
type Limits struct {
	IP, Global, Key limiter.Rate
	Store           limiter.Store // memory by default; Redis shares limits across instances
	FailOpen        bool          // on a store error: allow (and log) rather than 503
}

// rateLimits holds the three limiters over one store.
type rateLimits struct {
	ip, global, key *limiter.Limiter
	failOpen        bool
	log             *slog.Logger
}

func newRateLimits(l *Limits, log *slog.Logger) *rateLimits {
	if l == nil {
		return nil
	}
	return &rateLimits{
		ip:       limiter.New(l.Store, l.IP),
		global:   limiter.New(l.Store, l.Global),
		key:      limiter.New(l.Store, l.Key),
		failOpen: l.FailOpen,
		log:      log,
	}
}

// take counts one request against lim under key, writes the rate-limit headers and
// returns a rate_limited error (with Retry-After set) when the limit is reached.
func (rl *rateLimits) take(ctx context.Context, h http.Header, name string, lim *limiter.Limiter, key string) error {
	lc, err := lim.Get(ctx, key)
	if err != nil {
		rl.log.ErrorContext(ctx, "rate limit store failed", "limiter", name, "fail_open", rl.failOpen, "error", err.Error())
		if rl.failOpen {
			return nil
		}
		return &levqor.Error{Code: levqor.EUnavailable, Message: "Rate limiting is unavailable; try again shortly.", Err: err}
	}
	reset := int64(math.Max(0, math.Ceil(time.Until(time.Unix(lc.Reset, 0)).Seconds())))
	window := int64(lim.Rate.Period / time.Second)
	h.Set("RateLimit-Policy", fmt.Sprintf(`"%s";q=%d;w=%d`, name, lc.Limit, window))
	h.Set("RateLimit", fmt.Sprintf(`"%s";r=%d;t=%d`, name, lc.Remaining, reset))
	h.Set("X-RateLimit-Limit", strconv.FormatInt(lc.Limit, 10))
	h.Set("X-RateLimit-Remaining", strconv.FormatInt(lc.Remaining, 10))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(lc.Reset, 10))
	if lc.Reached {
		h.Set("Retry-After", strconv.FormatInt(max(reset, 1), 10))
		return levqor.Errorf(levqor.ERateLimited, "Rate limit %q reached: at most %d requests per %s.", name, lc.Limit, lim.Rate.Period)
	}
	return nil
}

// takeAnonymous counts an unauthenticated request against its IP, then the global budget.
func (rl *rateLimits) takeAnonymous(ctx context.Context, h http.Header, ip netip.Addr) error {
	if err := rl.take(ctx, h, "ip", rl.ip, "ip:"+ip.String()); err != nil {
		return err
	}
	return rl.take(ctx, h, "global", rl.global, "global")
}
