-- Jobs per status, kept in the same transaction as every write to jobs (issue #15):
-- /api/v1/admin/status and the queue-depth metric read these few rows instead of
-- counting the table (150-190 ms at 140k jobs). SQLite has one writer, so one row per
-- status (shard 0) never contends. Inserts are counted by the group committer
-- (store/sqlite/groupcommit.go: one upsert per status per group, not one per job, so
-- intake stays as fast); updates of status and deletes by the triggers below (claims,
-- completions, cancels, rescues and retention touch few rows per statement). The shard
-- column keeps the schema alike on both engines (PostgreSQL spreads its writers over 16).
CREATE TABLE job_counts (
    status TEXT    NOT NULL,
    shard  INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (status, shard)
) WITHOUT ROWID;

CREATE TRIGGER job_counts_delete AFTER DELETE ON jobs
BEGIN
    UPDATE job_counts SET n = n - 1 WHERE status = OLD.status AND shard = 0;
END;

CREATE TRIGGER job_counts_update AFTER UPDATE OF status ON jobs WHEN OLD.status <> NEW.status
BEGIN
    UPDATE job_counts SET n = n - 1 WHERE status = OLD.status AND shard = 0;
    INSERT INTO job_counts (status, shard, n) VALUES (NEW.status, 0, 1)
    ON CONFLICT (status, shard) DO UPDATE SET n = n + 1;
END;

INSERT INTO job_counts (status, shard, n) SELECT status, 0, COUNT(*) FROM jobs GROUP BY status;

-- Retention (LEVQOR_JOB_RETENTION) deletes the oldest finished jobs and raw analytics
-- events in small batches: these indexes let each batch find its rows without a scan.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE status IN ('succeeded', 'failed', 'canceled');
CREATE INDEX analytics_events_created ON analytics_events (created_at);
