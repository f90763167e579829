package jobs

import (
	"context"
	"sync"
)

// Hub connects, within one process, the places that change a job to those that
// watch or run it: event streams are signalled when a job changes (they then read
// the job; they read it at no other time unless other processes share the
// database), and the worker running a job is told to stop when its cancellation is
// requested here. Every change this process makes to a job's status or steps must
// be published, by id or, when the ids are not known, with PublishAll.
type Hub struct {
	mu       sync.Mutex
	watchers map[string]map[chan struct{}]struct{}
	running  map[string]context.CancelFunc
}

// NewHub returns an empty Hub.
func NewHub() *Hub {
	return &Hub{watchers: map[string]map[chan struct{}]struct{}{}, running: map[string]context.CancelFunc{}}
}

// Watch returns a channel signalled when job id changes, and a function to stop watching.
func (h *Hub) Watch(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.watchers[id] == nil {
		h.watchers[id] = map[chan struct{}]struct{}{}
	}
	h.watchers[id][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.watchers[id], ch)
		if len(h.watchers[id]) == 0 {
			delete(h.watchers, id)
		}
		h.mu.Unlock()
	}
}

// Publish signals the watchers of job id. It never blocks.
func (h *Hub) Publish(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.watchers[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// PublishAll signals every watcher, for changes whose job ids are not known (the
// rescue of expired leases). It never blocks.
func (h *Hub) PublishAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, watchers := range h.watchers {
		for ch := range watchers {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// run registers the cancel function of a job this process runs.
func (h *Hub) run(id string, cancel context.CancelFunc) func() {
	h.mu.Lock()
	h.running[id] = cancel
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		delete(h.running, id)
		h.mu.Unlock()
	}
}

// Cancel stops job id if this process runs it, and reports whether it did.
func (h *Hub) Cancel(id string) bool {
	h.mu.Lock()
	cancel, ok := h.running[id]
	h.mu.Unlock()
	if ok {
		cancel()
	}
	return ok
}
