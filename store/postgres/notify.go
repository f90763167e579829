package postgres

import (
	"context"
	"log/slog"
	"time"
)

// jobsChannel is the channel the jobs_notify trigger (migration 0004) notifies.
const jobsChannel = "levqor_jobs"

// ListenForJobs calls wake whenever any instance inserts jobs, until ctx ends. It
// holds one pooled connection for LISTEN and reconnects with backoff after errors;
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

func (db *DB) listen(ctx context.Context, wake func()) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+jobsChannel); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "UNLISTEN "+jobsChannel)
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return err
		}
		wake()
	}
}
