-- name: ClaimJobs :many
-- Takes up to max_rows due jobs, highest priority first, then oldest run_at, under a lease.
-- `LIMIT +?`, not `LIMIT ?`: SQLite reads a bare LIMIT parameter's bound value while
-- planning and marks the statement to be re-prepared whenever that value changes, which
-- max_rows (the worker's free slots) does on most claims; the unary plus hides the value
-- from the planner and keeps the prepared plan (docs/benchmarks.md, "Engine").
UPDATE jobs
SET status = 'running', lease_token = sqlc.arg(lease_token), lease_expires_at = sqlc.arg(lease_expires_at),
    attempts = attempts + 1, started_at = COALESCE(started_at, sqlc.arg(now)), updated_at = sqlc.arg(now)
WHERE id IN (
    SELECT d.id FROM jobs d
    WHERE (d.status = 'queued' OR d.status = 'scheduled' OR d.status = 'retrying' OR d.status = 'waiting') AND d.run_at <= sqlc.arg(now)
    ORDER BY d.priority DESC, d.run_at, d.id
    LIMIT +sqlc.arg(max_rows)
    
)
RETURNING *;

-- name: FinishJob :execrows
-- Ends an attempt: a terminal status, or retrying or waiting at run_at. Only the lease
-- holder may. attempt_back (0 or 1) gives back the attempt its claim counted: parking
-- (a wait is no try), and the run of a rescued job's on_failure step.
UPDATE jobs
SET status = sqlc.arg(status), attempts = attempts - sqlc.arg(attempt_back), steps = sqlc.arg(steps), result = sqlc.narg(result), steps_bytes = sqlc.arg(steps_bytes),
    error_code = sqlc.arg(error_code), error_message = sqlc.arg(error_message), run_at = sqlc.arg(run_at),
    lease_token = '', lease_expires_at = NULL, updated_at = sqlc.arg(now), finished_at = sqlc.narg(finished_at),
    callback_state = CASE WHEN callback_url <> '' AND sqlc.narg(finished_at) IS NOT NULL THEN 'pending' ELSE callback_state END,
    callback_next_at = CASE WHEN callback_url <> '' AND sqlc.narg(finished_at) IS NOT NULL THEN sqlc.arg(now) ELSE callback_next_at END
WHERE id = sqlc.arg(id) AND lease_token = sqlc.arg(lease_token) AND status = 'running';

-- name: ClaimCallbacks :many
-- Takes due webhook deliveries under a short lease (callback_next_at moves ahead).
UPDATE jobs SET callback_next_at = sqlc.arg(lease_until)
WHERE id IN (
    SELECT c.id FROM jobs c WHERE c.callback_state = 'pending' AND c.callback_next_at <= sqlc.arg(now)
    ORDER BY c.callback_next_at LIMIT sqlc.arg(max_rows) 
)
RETURNING *;

-- name: RescueToOnFailure :many
-- The part of RescueExpired (sql/shared/queries/jobs.sql) that differs by engine, run
-- before it in one transaction: a running job whose lease expired before cutoff, that
-- RescueExpired would fail (rescued max_rescues times, or no attempt left), but whose
-- on_failure step (always the last step) is still pending, is due at now as retrying
-- instead, counting the rescue, for the worker that claims it to run that step once and
-- fail the job (jobs.Worker.finalize). Only while it has been rescued fewer than
-- max_rescues times, so that a worker dying there too cannot loop.
UPDATE jobs
SET rescues = rescues + 1, status = 'retrying', run_at = sqlc.arg(now),
    lease_token = '', lease_expires_at = NULL, updated_at = sqlc.arg(now)
WHERE status = 'running' AND lease_expires_at < sqlc.arg(cutoff)
  AND rescues < CAST(sqlc.arg(max_rescues) AS INTEGER)
  AND (rescues + 1 >= CAST(sqlc.arg(max_rescues) AS INTEGER) OR attempts >= max_attempts)
  AND json_extract(steps, '$[#-1].on_failure') = 1 AND json_extract(steps, '$[#-1].status') = 'pending'
RETURNING id;
