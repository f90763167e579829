package server

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/levqor/levqor"
)

// ReadyCheck is one thing requests need, checked by GET /ready: the database is
// always checked; main adds the job engine and, when it fails closed, the rate-limit store.
type ReadyCheck struct {
	Name  string                          // names the check in a 503's errors (pointer)
	Check func(ctx context.Context) error // nil when ready; bounded by ReadyTimeout
}

// Readiness bounds: each check gets ReadyTimeout; a passing verdict is reused for
// ReadyCacheTTL and a failing one for ReadyFailTTL, so however often /ready is
// called the database sees at most about one probe per second while it is ready
// and ten while it is not, and a server that becomes ready (at start-up, when the
// job engine starts a moment after the listener; when a fault clears) says so
// within ReadyFailTTL, not a second later.
const (
	ReadyTimeout  = 2 * time.Second
	ReadyCacheTTL = time.Second
	ReadyFailTTL  = 100 * time.Millisecond
)

// readiness runs the checks and caches their verdict.
type readiness struct {
	checks []ReadyCheck
	mu     sync.Mutex // held while checking: concurrent probes wait and share one result
	at     time.Time
	err    error
}

// check returns nil when every check passes, else an EUnavailable error whose fields
// name each failed check (pointer) and say why (detail).
func (r *readiness) check(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ttl := ReadyCacheTTL
	if r.err != nil {
		ttl = ReadyFailTTL
	}
	if !r.at.IsZero() && time.Since(r.at) < ttl {
		return r.err
	}
	// The verdict is shared, so one caller's cancelled request must not decide it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ReadyTimeout)
	defer cancel()
	var failed []levqor.FieldError
	var causes []error
	for _, c := range r.checks {
		if err := c.Check(ctx); err != nil {
			failed = append(failed, levqor.FieldError{Pointer: c.Name, Detail: levqor.ErrorMessage(err)})
			causes = append(causes, err)
		}
	}
	r.at, r.err = time.Now(), nil
	if len(failed) > 0 {
		names := make([]string, len(failed))
		for i, f := range failed {
			names[i] = f.Pointer
		}
		r.err = &levqor.Error{Code: levqor.EUnavailable, Message: "Not ready: " + strings.Join(names, ", ") + ".",
			Fields: failed, Err: causes[0]}
	}
	return r.err
}
