package postgres

import (
	"context"
	"log/slog"
	"time"
)

// jobsChannel is the channel the jobs_notify trigger (migration 0004) notifies.
const jobsChannel = "levqor_jobs"

// ListenForJobs calls wake whenever any instance inserts jobs, until ctx ends. It
// holds one connection of its own for LISTEN and reconnects with backoff after errors;
// workers poll as well, so a lost notification only costs a poll interval.
func (db *DB) ListenForJobs(ctx context.Context, wake func()) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := db.listen(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		slog.Warn("LISTEN for new jobs failed; retrying", "error", err.Error(), "in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// listen takes its connection out of the pool (Hijack), as River's listener does:
// a connection that waits for notifications for good would otherwise be one of
// the pool's few (pgxpool's default is max(4, CPUs)) lost to every query.
func (db *DB) listen(ctx context.Context, wake func()) error {
	pc, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+jobsChannel); err != nil {
		return err
	}
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		wake()
	}
}
