package analytics

import (
	"context"
	"sync"
)

// maxBatch bounds how many events share one transaction.
const maxBatch = 256

// batcher stores the events of concurrent Track calls together, one transaction per
// batch (group commit): a transaction's fixed cost — on SQLite the single writer's
// lock and the WAL append, on PostgreSQL the commit and the rollup rows' locks — is
// paid once per batch instead of once per event. It needs no goroutine of its own:
// the first caller that finds no batch in flight leads; it stores everything queued
// so far, answers those callers, and hands the lead to the first caller that queued
// meanwhile. Every call returns only after its event's transaction has ended.
type batcher struct {
	store Store

	mu    sync.Mutex
	queue []*queued
	busy  bool // a leader is storing a batch
}

// queued is one event waiting for its batch; done receives its result, or the lead.
type queued struct {
	event Event
	done  chan batchResult
}

type batchResult struct {
	err  error
	lead bool // store the next batch
}

// insert stores e, in a batch with whatever other events arrive meanwhile.
func (b *batcher) insert(ctx context.Context, e Event) error {
	me := &queued{event: e, done: make(chan batchResult, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, me)
	if !b.busy {
		b.busy = true
		b.mu.Unlock()
		return b.lead(ctx, me)
	}
	b.mu.Unlock()
	// Once queued, the event is stored whatever happens to ctx: the wait is at most
	// the batches ahead of it.
	r := <-me.done
	if r.lead {
		return b.lead(ctx, me)
	}
	return r.err
}

// lead stores the batch at the head of the queue, which starts with me, answers its
// other callers, and passes the lead on (or ends it when the queue is empty).
func (b *batcher) lead(ctx context.Context, me *queued) error {
	b.mu.Lock()
	n := min(len(b.queue), maxBatch)
	batch := b.queue[:n:n]
	b.queue = append([]*queued(nil), b.queue[n:]...)
	b.mu.Unlock()

	events := make([]Event, n)
	for i, q := range batch {
		events[i] = q.event
	}
	// The batch holds other callers' events: one caller going away must not fail them.
	err := b.store.InsertEvents(context.WithoutCancel(ctx), events)
	for _, q := range batch {
		if q != me {
			q.done <- batchResult{err: err}
		}
	}

	b.mu.Lock()
	if len(b.queue) == 0 {
		b.busy = false
		b.mu.Unlock()
		return err
	}
	next := b.queue[0]
	b.mu.Unlock()
	next.done <- batchResult{lead: true}
	return err
}
