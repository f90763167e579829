package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/gorilla/mux"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/keys"
)

// requestInfo is the per-request record the outer middleware creates and inner
// layers fill in: the id, the matched route template and the error, if any.
type requestInfo struct {
	id              string
	route           string
	err             error
	ip              netip.Addr
	viaTrustedProxy bool
	header          http.Header // the response headers, for layers that cannot see the writer
	log             *slog.Logger
	principal       *keys.Principal // set once the request is authenticated
	body            []byte          // a JSON request body, as guardJSON read it
}

type requestInfoKey struct{}

func requestInfoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return info
}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	if info := requestInfoFrom(ctx); info != nil {
		return info.id
	}
	return ""
}

// saneRequestID accepts a caller's X-Request-ID only when it is short and plain.
func saneRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// newRequestID returns 80 random bits as 16 characters of levqor.IDAlphabet.
func newRequestID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return levqor.EncodeID(b[:])
}

// statusRecorder remembers the status and size of a response. It unwraps for
// http.ResponseController, so flushing (server-sent events) keeps working.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// observe is the outermost middleware: it assigns the request id, finds the client IP, recovers
// panics as 500 problems and writes one access log line per request.
func observe(log *slog.Logger, trustedProxies []netip.Prefix, observed func(method, route string, status int, errCode string, d time.Duration), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{id: r.Header.Get("X-Request-ID"), header: w.Header(), log: log}
		if !saneRequestID(info.id) {
			info.id = newRequestID()
		}
		info.ip, info.viaTrustedProxy = clientIP(r, trustedProxies)
		info.header["X-Request-Id"] = []string{info.id} // X-Request-ID, in canonical form (no Set: no canonicalizing)
		r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))
		rec := &statusRecorder{ResponseWriter: w}

		defer func() {
			p := recover()
			abort := p == http.ErrAbortHandler
			if p != nil && !abort {
				log.Error("panic", "request_id", info.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if rec.status == 0 {
					writeProblem(rec, r, &levqor.Error{Code: levqor.EInternal, Message: "panic", Err: fmt.Errorf("panic: %v", p)})
				} else {
					// The status is already sent: drop the connection, so the client sees
					// a failure rather than a truncated body that looks complete.
					abort = true
				}
			}
			attrs := []slog.Attr{
				slog.String("request_id", info.id),
				slog.String("method", r.Method),
				slog.String("route", info.route),
				slog.String("ip", info.ip.String()),
				slog.Int("status", rec.status),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.Int64("bytes", rec.bytes),
			}
			errCode := ""
			if info.err != nil {
				errCode = levqor.ErrorCode(info.err)
				attrs = append(attrs, slog.String("error_code", errCode))
			}
			if log.Enabled(r.Context(), slog.LevelInfo) {
				// A record without a source location: Logger.LogAttrs would walk the
				// stack for one on every request, and the access log prints none.
				line := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
				line.AddAttrs(attrs...)
				_ = log.Handler().Handle(r.Context(), line)
			}
			if observed != nil {
				observed(r.Method, info.route, rec.status, errCode, time.Since(start))
			}
			if abort {
				panic(http.ErrAbortHandler) // net/http closes the connection without logging
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// recordRoute runs inside the router, where the matched route is known, and
// stores its template for the access log.
func recordRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info := requestInfoFrom(r.Context()); info != nil {
			if route := mux.CurrentRoute(r); route != nil {
				info.route, _ = route.GetPathTemplate()
			}
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody refuses bodies over max bytes: at once when Content-Length says so,
// and while reading otherwise (the validator then reports http.MaxBytesError).
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			writeProblem(w, r, levqor.Errorf(levqor.ETooLarge, "The request body is larger than %d bytes.", max))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
		next.ServeHTTP(w, r)
	})
}

// apiHeaders are the headers every response carries, errors included; HTML routes
// replace the Content-Security-Policy with their own and fixed documents their
// Cache-Control. Keys are canonical and values are shared, read-only slices, so
// setting them costs no allocation (Header.Set would make a slice per header).
var apiHeaders = []struct {
	key   string
	value []string
}{
	{"Content-Security-Policy", []string{"default-src 'none'; frame-ancestors 'none'"}},
	{"X-Content-Type-Options", []string{"nosniff"}},
	{"X-Frame-Options", []string{"DENY"}},
	{"Referrer-Policy", []string{"no-referrer"}},
	{"Cross-Origin-Opener-Policy", []string{"same-origin"}},
	{"Cross-Origin-Embedder-Policy", []string{"require-corp"}},
	{"Cross-Origin-Resource-Policy", []string{"same-origin"}},
	{"Permissions-Policy", []string{"camera=(), microphone=(), geolocation=(), payment=()"}},
	{"Cache-Control", []string{"no-store"}},
}

// securityHeaders sets apiHeaders on every response.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, kv := range apiHeaders {
			h[kv.key] = kv.value
		}
		next.ServeHTTP(w, r)
	})
}
