package jobs

// FreeAndCaughtUp reports whether the worker has caught up with the queue and has
// exactly free slots: intake would hand over that many jobs (handover_test.go).
func (e *Engine) FreeAndCaughtUp(free int) bool {
	w := e.worker
	return !w.backlog.Load() && w.waiting.Load() == 0 && w.opts.Concurrency-int(w.busy.Load()) == free
}
