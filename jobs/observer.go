package jobs

import "time"

// Observer sees what the engine does, for metrics. Its methods are called on the
// engine's hot paths: they must be quick and never block. Names are workflow names
// as submitted (the observer bounds their number); never owner or job ids.
type Observer interface {
	// JobEnqueued: intake stored a new job (an idempotent repeat is not one).
	JobEnqueued(workflow string)
	// JobClaimed: a worker of this process took a job, wait after it was due.
	JobClaimed(workflow string, wait time.Duration)
	// AttemptEnded: an attempt's end was stored, ran for run; status is the job's
	// status after it, terminal when the job ended for good.
	AttemptEnded(workflow, status string, terminal bool, run time.Duration)
	// WebhookDelivered: one completion webhook delivery ended: "delivered",
	// "retrying" (failed, tried again later) or "failed" (given up).
	WebhookDelivered(outcome string)
}

// noObserver is the Observer of an engine configured without one.
type noObserver struct{}

func (noObserver) JobEnqueued(string)                               {}
func (noObserver) JobClaimed(string, time.Duration)                 {}
func (noObserver) AttemptEnded(string, string, bool, time.Duration) {}
func (noObserver) WebhookDelivered(string)                          {}

// attempt is what the completer needs to report an attempt it stores: kept by
// the worker from the claim until the attempt's goroutine returns.
type attempt struct {
	workflow string
	claimed  time.Time
	callback bool // the job has a callback URL (a webhook to deliver when it ends)
}
