// Package logdedupe keeps an outage from flooding the log: an slog.Handler wrapper
// that lets through one ERROR line per cause (message and "code" attribute) per
// interval, and adds to it how many lines like it were dropped since the last one.
package logdedupe

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultInterval is how often a repeated cause is logged.
const DefaultInterval = 10 * time.Second

// maxCauses bounds the table of causes seen; past it the oldest interval's entries
// are forgotten (a cause then logs again, which is harmless).
const maxCauses = 1024

// Handler wraps another handler. Only ERROR records with a "code" attribute other
// than "internal" are deduplicated: an internal error is a bug, and each line's
// request id is worth keeping.
type Handler struct {
	next     slog.Handler
	interval time.Duration
	now      func() time.Time
	st       *state // shared by the handlers WithAttrs/WithGroup derive
}

type state struct {
	mu     sync.Mutex
	causes map[string]*cause
}

type cause struct {
	last    time.Time // when a line of this cause was last let through
	dropped int64
}

// New wraps next; interval <= 0 means DefaultInterval.
func New(next slog.Handler, interval time.Duration) *Handler {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Handler{next: next, interval: interval, now: time.Now, st: &state{causes: map[string]*cause{}}}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		return h.next.Handle(ctx, r)
	}
	code := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "code" {
			code = a.Value.String()
			return false
		}
		return true
	})
	if code == "" || code == "internal" {
		return h.next.Handle(ctx, r)
	}
	key, now := r.Message+"\x00"+code, h.now()
	h.st.mu.Lock()
	c := h.st.causes[key]
	if c == nil {
		if len(h.st.causes) >= maxCauses {
			for k, old := range h.st.causes {
				if now.Sub(old.last) >= h.interval {
					delete(h.st.causes, k)
				}
			}
		}
		c = &cause{}
		h.st.causes[key] = c
	} else if now.Sub(c.last) < h.interval {
		c.dropped++
		h.st.mu.Unlock()
		return nil
	}
	dropped := c.dropped
	c.last, c.dropped = now, 0
	h.st.mu.Unlock()
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int64("repeated", dropped), slog.String("repeated_over", h.interval.String()))
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(as), interval: h.interval, now: h.now, st: h.st}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), interval: h.interval, now: h.now, st: h.st}
}
