package server

import (
	"context"
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
	"github.com/levqor/levqor/limitstore"
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

// quota is one limiter's verdict on one request. name is the counter's key; the
// part before ":" names the policy in the headers ("ip:203.0.113.9" → "ip").
type quota struct {
	name  string
	lim   *limiter.Limiter
	n     int64 // how many this request counts for; 0 or 1: once
	state limiter.Context
}

// take counts one request against each (limiter, key) pair in turn, writes the
// rate-limit headers for all of them (the X-RateLimit-* trio for the tightest), and
// returns a rate_limited error with Retry-After when one is exhausted. Counting stops
// at the first exhausted limiter, so a refused request spends no further budget.
func (rl *rateLimits) take(ctx context.Context, h http.Header, checks ...quota) error {
	var done []quota
	var refused *quota
	ctx = limitstore.WithRequest(ctx) // one failed store call is enough for this request
	for _, c := range checks {
		var state limiter.Context
		var err error
		if c.n > 1 { // a batch's jobs against the plan
			state, err = c.lim.Increment(ctx, c.name, c.n)
		} else {
			state, err = c.lim.Get(ctx, c.name)
		}
		if err != nil {
			// A guarded store (limitstore) has already counted and logged the failure,
			// once per interval; logging here too would add a line per request.
			if rl.failOpen {
				continue
			}
			h.Set("Retry-After", "1") // the store's breaker tries again within a second
			return &levqor.Error{Code: levqor.EUnavailable, Message: "Rate limiting is unavailable; try again shortly.", Err: err}
		}
		c.state = state
		done = append(done, c)
		if state.Reached {
			refused = &done[len(done)-1]
			break
		}
	}
	if len(done) == 0 {
		return nil
	}
	tightest := done[0]
	policies, states := make([]string, 0, len(done)), make([]string, 0, len(done))
	for _, c := range done {
		policy, _, _ := strings.Cut(c.name, ":")
		// Built without fmt: this runs on every limited request.
		policies = append(policies, `"`+policy+`";q=`+strconv.FormatInt(c.state.Limit, 10)+";w="+strconv.FormatInt(int64(c.lim.Rate.Period/time.Second), 10))
		states = append(states, `"`+policy+`";r=`+strconv.FormatInt(c.state.Remaining, 10)+";t="+strconv.FormatInt(secondsUntil(c.state.Reset), 10))
		if c.state.Remaining < tightest.state.Remaining {
			tightest = c
		}
	}
	h["Ratelimit-Policy"], h["Ratelimit"] = policies, states
	if refused != nil {
		tightest = *refused
	}
	// Keys in canonical form (X-Ratelimit-…): Set would canonicalize them anew on every request.
	h["X-Ratelimit-Limit"] = []string{strconv.FormatInt(tightest.state.Limit, 10)}
	h["X-Ratelimit-Remaining"] = []string{strconv.FormatInt(tightest.state.Remaining, 10)}
	h["X-Ratelimit-Reset"] = []string{strconv.FormatInt(tightest.state.Reset, 10)}
	if refused == nil {
		return nil
	}
	h.Set("Retry-After", strconv.FormatInt(max(secondsUntil(refused.state.Reset), 1), 10))
	policy, _, _ := strings.Cut(refused.name, ":")
	return levqor.Errorf(levqor.ERateLimited, "Rate limit %q reached: at most %d requests per %s.", policy, refused.state.Limit, refused.lim.Rate.Period)
}

func secondsUntil(unix int64) int64 {
	return int64(math.Max(0, math.Ceil(time.Until(time.Unix(unix, 0)).Seconds())))
}

// takeAnonymous counts an unauthenticated request against its IP, then the global budget.
func (rl *rateLimits) takeAnonymous(ctx context.Context, h http.Header, ip netip.Addr) error {
	return rl.take(ctx, h, quota{name: ipLimitKey(ip), lim: rl.ip}, quota{name: "global", lim: rl.global})
}

// IPv6LimitPrefix is the prefix length by which IPv6 clients share one per-IP
// bucket: a /64 is what one subscriber is normally given, so counting single
// addresses would hand anyone 2^64 buckets.
const IPv6LimitPrefix = 64

// ipLimitKey names the per-IP bucket of ip: "ip:" and the address for IPv4 (an
// IPv4-mapped IPv6 address counts as its IPv4 address), "ip:" and the /64 for IPv6.
func ipLimitKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is4() || !ip.IsValid() {
		return "ip:" + ip.String()
	}
	p, err := ip.WithZone("").Prefix(IPv6LimitPrefix)
	if err != nil { // cannot happen for a valid IPv6 address and 64
		return "ip:" + ip.String()
	}
	return "ip:" + p.String()
}
