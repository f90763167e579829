// Package retention prunes what Levqor keeps only for a while: finished jobs (with
// their idempotency keys) and raw analytics events, in small batches with a pause
// between them so that intake never waits long behind a delete.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

const (
	// DefaultBatch is how many rows one delete removes: a few milliseconds of the
	// SQLite writer, so intake (which shares it) waits at most that long.
	DefaultBatch = 500
	// DefaultPause separates batches, giving the writer back to intake.
	DefaultPause = 100 * time.Millisecond
	// DefaultEvery is how often a pass runs.
	DefaultEvery = time.Hour
	// MaxBatchesPerPass bounds one pass (5 M rows at the default batch): a backlog
	// larger than that is worked off over the following passes.
	MaxBatchesPerPass = 10_000
)

// Store deletes old rows, oldest first, at most limit per call, returning how many.
type Store interface {
	// PruneFinishedJobs deletes jobs that ended before cutoff (succeeded, failed or
	// canceled, with no webhook delivery pending), with their idempotency keys.
	PruneFinishedJobs(ctx context.Context, cutoff time.Time, limit int) (int64, error)
	// PruneAnalyticsEvents deletes raw analytics events created before cutoff; the
	// rollups stay.
	PruneAnalyticsEvents(ctx context.Context, cutoff time.Time, limit int) (int64, error)
}

// Options configure Run and Prune.
type Options struct {
	Store  Store
	Keep   time.Duration // LEVQOR_JOB_RETENTION: rows older than this go; 0 disables retention
	Batch  int           // rows per delete (DefaultBatch when 0)
	Pause  time.Duration // between batches (DefaultPause when 0)
	Every  time.Duration // between passes (DefaultEvery when 0)
	Now    func() time.Time
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.Pause <= 0 {
		o.Pause = DefaultPause
	}
	if o.Every <= 0 {
		o.Every = DefaultEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Pruned counts what one pass removed.
type Pruned struct {
	Jobs, Events int64
}

// Prune runs one pass: batches of old jobs, then of old events, until none is left
// (or MaxBatchesPerPass), pausing between batches.
func Prune(ctx context.Context, o Options) (Pruned, error) {
	o.defaults()
	var p Pruned
	if o.Keep <= 0 {
		return p, nil
	}
	cutoff := o.Now().Add(-o.Keep)
	var err error
	if p.Jobs, err = batches(ctx, o, cutoff, o.Store.PruneFinishedJobs); err != nil {
		return p, err
	}
	if p.Events, err = batches(ctx, o, cutoff, o.Store.PruneAnalyticsEvents); err != nil {
		return p, err
	}
	return p, nil
}

func batches(ctx context.Context, o Options, cutoff time.Time, prune func(context.Context, time.Time, int) (int64, error)) (int64, error) {
	var total int64
	for range MaxBatchesPerPass {
		n, err := prune(ctx, cutoff, o.Batch)
		total += n
		if err != nil {
			return total, fmt.Errorf("retention: %w", err)
		}
		if n < int64(o.Batch) {
			return total, nil
		}
		select {
		case <-ctx.Done():
			return total, nil
		case <-time.After(o.Pause):
		}
	}
	return total, nil
}

// Run prunes at start and then every o.Every until ctx ends. On PostgreSQL several
// instances may prune at once: deletes of the same rows are idempotent, so this only
// costs some repeated work.
func Run(ctx context.Context, o Options) {
	o.defaults()
	if o.Keep <= 0 {
		return
	}
	log := o.Logger.With("component", "retention")
	for {
		p, err := Prune(ctx, o)
		if err != nil && ctx.Err() == nil {
			log.Error("prune", "error", err.Error())
		}
		if p.Jobs > 0 || p.Events > 0 {
			log.Info("pruned", "jobs", p.Jobs, "analytics_events", p.Events, "older_than", o.Keep.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(o.Every):
		}
	}
}
