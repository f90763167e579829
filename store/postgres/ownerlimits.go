package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/levqor/levqor/budget"
)

const (
	// maxLimitsBatch bounds the owners one coalesced OwnerLimits read asks for.
	maxLimitsBatch = 1000
	// limitsReadTimeout bounds one coalesced read.
	limitsReadTimeout = 10 * time.Second
)

// limitsReads coalesces OwnerLimits calls: the worker reads an owner's limits
// before every job, and on PostgreSQL each read is a round trip that competes for
// the pool with intake, claims and completions. Calls that arrive while a read is
// running wait for the next one, which asks for all their owners at once. Every
// call is answered by a read that started after the call did, so it sees every
// override written before it, as a read of its own would.
type limitsReads struct {
	mu      sync.Mutex
	waiting map[string][]chan limitsResult // by owner, for the next read
	reading bool                           // a reader goroutine runs
}

type limitsResult struct {
	limits budget.Limits
	ok     bool
	err    error
}

// OwnerLimits implements budget.OwnerStore.
func (db *DB) OwnerLimits(ctx context.Context, ownerID string) (budget.Limits, bool, error) {
	ch := make(chan limitsResult, 1)
	r := &db.limits
	r.mu.Lock()
	if r.waiting == nil {
		r.waiting = map[string][]chan limitsResult{}
	}
	r.waiting[ownerID] = append(r.waiting[ownerID], ch)
	lead := !r.reading
	r.reading = true
	r.mu.Unlock()
	if lead {
		go db.readLimits()
	}
	select {
	case res := <-ch:
		return res.limits, res.ok, res.err
	case <-ctx.Done():
		return budget.Limits{}, false, ctx.Err()
	}
}

// readLimits reads the waiting owners' limits, a batch at a time, until none waits.
func (db *DB) readLimits() {
	for {
		r := &db.limits
		r.mu.Lock()
		batch := map[string][]chan limitsResult{}
		for owner, chans := range r.waiting {
			if len(batch) == maxLimitsBatch {
				break
			}
			batch[owner] = chans
			delete(r.waiting, owner)
		}
		if len(batch) == 0 {
			r.reading = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()

		owners := make([]string, 0, len(batch))
		for owner := range batch {
			owners = append(owners, owner)
		}
		ctx, cancel := context.WithTimeout(context.Background(), limitsReadTimeout)
		rows, err := db.q.GetOwnersLimits(ctx, owners)
		cancel()
		found := make(map[string]budget.Limits, len(rows))
		for _, row := range rows {
			found[row.OwnerID] = budget.Limits{Daily: budget.Nanos(row.DailyNanos), Monthly: budget.Nanos(row.MonthlyNanos)}
		}
		for owner, chans := range batch {
			res := limitsResult{err: err}
			if err != nil {
				res.err = fmt.Errorf("get owner limits: %w", err)
			} else {
				res.limits, res.ok = found[owner]
			}
			for _, ch := range chans {
				ch <- res
			}
		}
	}
}
