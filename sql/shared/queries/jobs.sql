-- name: InsertJob :execrows
-- result, started_at and finished_at are set for a dry run only, which is stored finished;
-- attempts, lease_token, lease_expires_at and started_at for a job handed over to a worker
-- at intake, which is stored running under its lease (ADR 0023). No RETURNING: the row
-- stored is the parameters and the columns' defaults (dbrow.InsertedAs), which SQLite's
-- group committer builds without reading it back; 0 rows means the idempotency key is
-- taken. (PostgreSQL inserts through its own InsertJobs.)
INSERT INTO jobs (id, owner_id, workflow, status, priority, run_at, max_attempts, timeout_s, payload, steps,
                  guardrails, callback_url, idem_scope, idem_key, idem_hash, created_at, updated_at, input_bytes, steps_bytes,
                  result, started_at, finished_at, dry_run, replay_of, attempts, lease_token, lease_expires_at)
VALUES (sqlc.arg(id), sqlc.arg(owner_id), sqlc.arg(workflow), sqlc.arg(status), sqlc.arg(priority), sqlc.arg(run_at),
        sqlc.arg(max_attempts), sqlc.arg(timeout_s), sqlc.arg(payload), sqlc.arg(steps), sqlc.arg(guardrails),
        sqlc.arg(callback_url), sqlc.narg(idem_scope), sqlc.narg(idem_key), sqlc.narg(idem_hash), sqlc.arg(created_at), sqlc.arg(created_at),
        sqlc.arg(input_bytes), sqlc.arg(steps_bytes),
        sqlc.narg(result), sqlc.narg(started_at), sqlc.narg(finished_at), sqlc.arg(dry_run), sqlc.narg(replay_of),
        sqlc.arg(attempts), sqlc.arg(lease_token), sqlc.narg(lease_expires_at))
ON CONFLICT (idem_scope, idem_key) WHERE idem_key IS NOT NULL DO NOTHING;

-- name: GetJob :one
SELECT * FROM jobs WHERE id = sqlc.arg(id);

-- name: GetJobByIdempotencyKey :one
SELECT * FROM jobs WHERE idem_scope = sqlc.arg(idem_scope) AND idem_key = sqlc.arg(idem_key);

-- name: ListJobs :many
-- Keyset pagination, newest first: (created_at, id) strictly below the cursor. A page
-- holds at most page_rows jobs and ends before the job that would take its stored size
-- (input_bytes + steps_bytes) past max_bytes; its first job comes whatever its size.
-- Sizes are summed over the peek_rows (page_rows + 1) candidates before any JSON column
-- is read; matched is how many candidates there were, so more than the page holds means
-- there is a next page.
SELECT sqlc.embed(jobs), p.matched
FROM jobs
JOIN (
    SELECT c.id, c.created_at,
           ROW_NUMBER() OVER (ORDER BY c.created_at DESC, c.id DESC) AS n,
           SUM(c.input_bytes + c.steps_bytes) OVER (ORDER BY c.created_at DESC, c.id DESC ROWS UNBOUNDED PRECEDING) AS running,
           COUNT(*) OVER () AS matched
    FROM (
        SELECT f.id, f.created_at, f.input_bytes, f.steps_bytes FROM jobs f
        WHERE (CAST(sqlc.arg(all_owners) AS BOOLEAN) OR f.owner_id = sqlc.arg(owner_id))
          AND (CAST(sqlc.arg(status) AS TEXT) = '' OR f.status = sqlc.arg(status))
          AND (CAST(sqlc.arg(workflow) AS TEXT) = '' OR f.workflow = sqlc.arg(workflow))
          AND f.created_at >= sqlc.arg(created_after)
          AND f.created_at < sqlc.arg(created_before)
          AND (f.created_at < sqlc.arg(cursor_created_at) OR (f.created_at = sqlc.arg(cursor_created_at) AND f.id < sqlc.arg(cursor_id)))
        ORDER BY f.created_at DESC, f.id DESC
        LIMIT sqlc.arg(peek_rows)
    ) c
) p ON p.id = jobs.id
WHERE p.n <= CAST(sqlc.arg(page_rows) AS INTEGER) AND (p.n = 1 OR p.running <= CAST(sqlc.arg(max_bytes) AS BIGINT))
ORDER BY p.created_at DESC, p.id DESC;

-- name: ListReplayCandidates :many
-- The jobs a bulk replay (POST /api/v1/jobs/replay) takes, oldest first: those of the
-- filter that are not dry runs and have no replay yet (the jobs_replay_of index).
SELECT f.id FROM jobs f
WHERE (CAST(sqlc.arg(all_owners) AS BOOLEAN) OR f.owner_id = sqlc.arg(owner_id))
  AND f.status = sqlc.arg(status)
  AND (CAST(sqlc.arg(workflow) AS TEXT) = '' OR f.workflow = sqlc.arg(workflow))
  AND f.created_at >= sqlc.arg(created_after)
  AND f.created_at < sqlc.arg(created_before)
  AND f.dry_run = 0
  AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.replay_of = f.id)
ORDER BY f.created_at, f.id
LIMIT sqlc.arg(max_rows);

-- name: ExtendLeases :many
-- Heartbeat: extends the leases this worker holds; returns those whose cancel was requested.
UPDATE jobs SET lease_expires_at = sqlc.arg(lease_expires_at)
WHERE lease_token = sqlc.arg(lease_token) AND status = 'running'
RETURNING id, cancel_requested;

-- name: SaveSteps :execrows
-- Records step progress of a running job, only while this worker still holds its lease.
UPDATE jobs SET steps = sqlc.arg(steps), steps_bytes = sqlc.arg(steps_bytes), updated_at = sqlc.arg(now)
WHERE id = sqlc.arg(id) AND lease_token = sqlc.arg(lease_token) AND status = 'running';

-- name: RescueExpired :many
-- Returns running jobs whose lease expired before cutoff (their worker died) to the
-- queue, due now, counting the rescue. A job rescued max_rescues times fails
-- "crashed" (it may be what kills its workers), and one without an attempt left fails
-- "lease_expired". The attempt that died is counted already.
UPDATE jobs
SET rescues = rescues + 1,
    status = CASE WHEN rescues + 1 >= CAST(sqlc.arg(max_rescues) AS INTEGER) OR attempts >= max_attempts THEN 'failed' ELSE 'retrying' END,
    error_code = CASE WHEN rescues + 1 >= CAST(sqlc.arg(max_rescues) AS INTEGER) THEN 'crashed'
                      WHEN attempts >= max_attempts THEN 'lease_expired' ELSE error_code END,
    error_message = CASE WHEN rescues + 1 >= CAST(sqlc.arg(max_rescues) AS INTEGER)
                             THEN 'The worker running this job stopped ' || CAST(rescues + 1 AS TEXT) || ' times while running it; it is not run again.'
                         WHEN attempts >= max_attempts THEN 'The worker running this job stopped and no attempt is left.'
                         ELSE error_message END,
    finished_at = CASE WHEN rescues + 1 >= CAST(sqlc.arg(max_rescues) AS INTEGER) OR attempts >= max_attempts THEN sqlc.arg(now) ELSE finished_at END,
    callback_state = CASE WHEN (rescues + 1 >= CAST(sqlc.arg(max_rescues) AS INTEGER) OR attempts >= max_attempts) AND callback_url <> '' THEN 'pending' ELSE callback_state END,
    callback_next_at = CASE WHEN (rescues + 1 >= CAST(sqlc.arg(max_rescues) AS INTEGER) OR attempts >= max_attempts) AND callback_url <> '' THEN sqlc.arg(now) ELSE callback_next_at END,
    run_at = sqlc.arg(now), lease_token = '', lease_expires_at = NULL, updated_at = sqlc.arg(now)
WHERE status = 'running' AND lease_expires_at < sqlc.arg(cutoff)
RETURNING id, status;

-- name: CancelQueuedJob :one
UPDATE jobs
SET status = 'canceled', error_code = 'canceled', error_message = 'Canceled by request.', finished_at = sqlc.arg(now), updated_at = sqlc.arg(now),
    callback_state = CASE WHEN callback_url <> '' THEN 'pending' ELSE callback_state END,
    callback_next_at = CASE WHEN callback_url <> '' THEN sqlc.arg(now) ELSE callback_next_at END
WHERE id = sqlc.arg(id) AND status IN ('queued', 'scheduled', 'retrying', 'waiting')
RETURNING *;

-- name: SetCanceledSteps :exec
-- The steps of a job CancelQueuedJob canceled, once its waiting steps are marked
-- canceled (jobs.EndWaits), in the same transaction (a canceled job has no result:
-- its steps are all its steps_bytes).
UPDATE jobs SET steps = sqlc.arg(steps), steps_bytes = sqlc.arg(steps_bytes)
WHERE id = sqlc.arg(id) AND status = 'canceled';

-- name: RequestCancel :one
UPDATE jobs SET cancel_requested = 1, updated_at = sqlc.arg(now)
WHERE id = sqlc.arg(id) AND status = 'running'
RETURNING *;

-- name: CountJobsByStatus :many
-- The maintained counters (migration 0013), summed over their shards: O(statuses), not O(jobs).
SELECT status, CAST(SUM(n) AS BIGINT) AS n FROM job_counts GROUP BY status HAVING SUM(n) <> 0;

-- name: CountJobsByStatusScan :many
-- Counts the table itself: only tests compare it with the counters.
SELECT status, COUNT(*) AS n FROM jobs GROUP BY status;

-- name: OldestDueJob :one
-- The run_at of the job of one priority due longest ago (at or before now) that no
-- worker holds: the head of that priority in jobs_due, one index seek whatever the
-- table holds (the statuses are jobs_due's, so its partial index serves the query).
SELECT run_at FROM jobs
WHERE (status = 'queued' OR status = 'scheduled' OR status = 'retrying' OR status = 'waiting') AND priority = sqlc.arg(priority) AND run_at <= sqlc.arg(now)
ORDER BY run_at LIMIT 1;

-- name: RecordCallback :exec
UPDATE jobs SET callbacks = sqlc.arg(callbacks), callback_state = sqlc.arg(callback_state),
    callback_next_at = sqlc.narg(next_at), updated_at = sqlc.arg(now)
WHERE id = sqlc.arg(id);

-- name: PutWorkflow :one
INSERT INTO workflows (owner_id, name, description, steps, created_at, updated_at)
VALUES (sqlc.arg(owner_id), sqlc.arg(name), sqlc.arg(description), sqlc.arg(steps), sqlc.arg(now), sqlc.arg(now))
ON CONFLICT (owner_id, name) DO UPDATE SET description = excluded.description, steps = excluded.steps, updated_at = excluded.updated_at
RETURNING *;

-- name: GetWorkflow :one
SELECT * FROM workflows WHERE owner_id = sqlc.arg(owner_id) AND name = sqlc.arg(name);

-- name: ListWorkflows :many
SELECT * FROM workflows WHERE owner_id = sqlc.arg(owner_id) ORDER BY name LIMIT 1000;

-- name: DeleteWorkflow :execrows
DELETE FROM workflows WHERE owner_id = sqlc.arg(owner_id) AND name = sqlc.arg(name);

-- name: GetWebhookSecret :one
SELECT * FROM webhook_secrets WHERE owner_id = sqlc.arg(owner_id);

-- name: PutWebhookSecret :one
INSERT INTO webhook_secrets (owner_id, secret, sealed, created_at) VALUES (sqlc.arg(owner_id), sqlc.arg(secret), sqlc.narg(sealed), sqlc.arg(created_at))
ON CONFLICT (owner_id) DO UPDATE SET secret = excluded.secret, sealed = excluded.sealed, created_at = excluded.created_at
RETURNING *;

-- name: InsertWebhookSecretIfAbsent :one
INSERT INTO webhook_secrets (owner_id, secret, sealed, created_at) VALUES (sqlc.arg(owner_id), sqlc.arg(secret), sqlc.narg(sealed), sqlc.arg(created_at))
ON CONFLICT (owner_id) DO NOTHING
RETURNING *;

-- name: ListClearWebhookSecrets :many
-- Rows written before secrets were sealed (migration 0012), a batch at a time.
SELECT * FROM webhook_secrets WHERE secret <> '' ORDER BY owner_id LIMIT sqlc.arg(max_rows);

-- name: SealWebhookSecret :execrows
-- Only while the row still holds that clear secret: a roll in between wins.
UPDATE webhook_secrets SET secret = '', sealed = sqlc.arg(sealed)
WHERE owner_id = sqlc.arg(owner_id) AND secret = sqlc.arg(secret);

-- name: PruneFinishedJobs :execrows
-- Retention (LEVQOR_JOB_RETENTION): up to max_rows jobs that ended before cutoff, oldest
-- first, with their idempotency keys (cutoff is at least 24 h back: the keys' promise).
-- A job whose webhook is still pending is kept until it is delivered or given up.
DELETE FROM jobs WHERE id IN (
    SELECT p.id FROM jobs p
    WHERE (p.status = 'succeeded' OR p.status = 'failed' OR p.status = 'canceled') AND p.finished_at < sqlc.arg(cutoff)
      AND p.callback_state <> 'pending'
    ORDER BY p.finished_at LIMIT sqlc.arg(max_rows)
);

-- name: InsertJobSignal :execrows
-- A job's signal, once: a second delivery of the name inserts nothing.
INSERT INTO job_signals (job_id, name, data, created_at) VALUES (sqlc.arg(job_id), sqlc.arg(name), sqlc.arg(data), sqlc.arg(created_at))
ON CONFLICT (job_id, name) DO NOTHING;

-- name: GetJobSignal :one
SELECT data FROM job_signals WHERE job_id = sqlc.arg(job_id) AND name = sqlc.arg(name);

-- name: WakeWaitingJob :execrows
-- A waiting job becomes due now (a signal came).
UPDATE jobs SET run_at = sqlc.arg(now), updated_at = sqlc.arg(now)
WHERE id = sqlc.arg(id) AND status = 'waiting' AND run_at > sqlc.arg(now);
