-- name: InsertJobs :many
-- A batch of jobs (POST /api/v1/intake/batch) in one statement: one round trip and
-- one firing of the statement-level job_counts trigger. Arrays are column-wise, in
-- batch order (indexed by the ids' ordinality); '' stands for a NULL idempotency key (the scope and hash go with it).
-- Rows whose key is taken, in the table or by an earlier row of the batch, are
-- skipped (ON CONFLICT DO NOTHING) and missing from the result.
-- result, started_at, finished_at, replay_of and lease_expires_at: '' stands for NULL too (times as RFC 3339 text).
INSERT INTO jobs (id, owner_id, workflow, status, priority, run_at, max_attempts, timeout_s, payload, steps,
                  guardrails, callback_url, idem_scope, idem_key, idem_hash, created_at, updated_at, input_bytes, steps_bytes,
                  result, started_at, finished_at, dry_run, replay_of, attempts, lease_token, lease_expires_at)
SELECT b.id, (sqlc.arg(owner_ids)::text[])[b.n], (sqlc.arg(workflows)::text[])[b.n], (sqlc.arg(statuses)::text[])[b.n],
       (sqlc.arg(priorities)::bigint[])[b.n], (sqlc.arg(run_ats)::timestamptz[])[b.n], (sqlc.arg(max_attempts)::bigint[])[b.n],
       (sqlc.arg(timeout_ss)::bigint[])[b.n], (sqlc.arg(payloads)::text[])[b.n]::jsonb, (sqlc.arg(steps)::text[])[b.n]::jsonb,
       (sqlc.arg(guardrails)::text[])[b.n]::jsonb, (sqlc.arg(callback_urls)::text[])[b.n],
       CASE WHEN (sqlc.arg(idem_keys)::text[])[b.n] = '' THEN NULL ELSE (sqlc.arg(idem_scopes)::text[])[b.n] END,
       NULLIF((sqlc.arg(idem_keys)::text[])[b.n], ''),
       CASE WHEN (sqlc.arg(idem_keys)::text[])[b.n] = '' THEN NULL ELSE (sqlc.arg(idem_hashes)::text[])[b.n] END,
       (sqlc.arg(created_ats)::timestamptz[])[b.n], (sqlc.arg(created_ats)::timestamptz[])[b.n],
       (sqlc.arg(input_bytes)::bigint[])[b.n], (sqlc.arg(steps_bytes)::bigint[])[b.n],
       NULLIF((sqlc.arg(results)::text[])[b.n], '')::jsonb,
       NULLIF((sqlc.arg(started_ats)::text[])[b.n], '')::timestamptz,
       NULLIF((sqlc.arg(finished_ats)::text[])[b.n], '')::timestamptz,
       (sqlc.arg(dry_runs)::bigint[])[b.n], NULLIF((sqlc.arg(replay_ofs)::text[])[b.n], ''),
       (sqlc.arg(attempts)::bigint[])[b.n], (sqlc.arg(lease_tokens)::text[])[b.n],
       NULLIF((sqlc.arg(lease_expires_ats)::text[])[b.n], '')::timestamptz
FROM unnest(sqlc.arg(ids)::text[]) WITH ORDINALITY AS b(id, n)
ORDER BY b.n
ON CONFLICT (idem_scope, idem_key) WHERE idem_key IS NOT NULL DO NOTHING
RETURNING *;

-- name: GetJobsByIdempotencyKeys :many
-- The jobs holding some keys of one scope: the winners for a batch's skipped rows.
SELECT * FROM jobs WHERE idem_scope = sqlc.arg(idem_scope) AND idem_key = ANY(sqlc.arg(idem_keys)::text[]);

-- name: FinishJobs :execrows
-- FinishJob (jobs_locking.sql) for a batch of attempt ends in one statement: one round
-- trip and one firing of the statement-level job_counts trigger per batch, instead of
-- one of each per job. Arrays are column-wise, one element per attempt, in the order
-- of the ids' ordinality, ids distinct; '' stands for a NULL result (JSON text is never
-- empty) and finished false for a NULL finished_at. Only the lease holder's running
-- row is changed. attempt_backs as FinishJob's attempt_back.
UPDATE jobs AS j
SET status = (sqlc.arg(statuses)::text[])[b.n],
    attempts = j.attempts - (sqlc.arg(attempt_backs)::bigint[])[b.n],
    steps = (sqlc.arg(steps)::text[])[b.n]::jsonb, result = NULLIF((sqlc.arg(results)::text[])[b.n], '')::jsonb,
    steps_bytes = (sqlc.arg(steps_bytes)::bigint[])[b.n], error_code = (sqlc.arg(error_codes)::text[])[b.n],
    error_message = (sqlc.arg(error_messages)::text[])[b.n], run_at = (sqlc.arg(run_ats)::timestamptz[])[b.n],
    lease_token = '', lease_expires_at = NULL, updated_at = sqlc.arg(now),
    finished_at = CASE WHEN (sqlc.arg(finished)::boolean[])[b.n] THEN (sqlc.arg(finished_ats)::timestamptz[])[b.n] END,
    callback_state = CASE WHEN j.callback_url <> '' AND (sqlc.arg(finished)::boolean[])[b.n] THEN 'pending' ELSE j.callback_state END,
    callback_next_at = CASE WHEN j.callback_url <> '' AND (sqlc.arg(finished)::boolean[])[b.n] THEN sqlc.arg(now) ELSE j.callback_next_at END
FROM unnest(sqlc.arg(ids)::text[]) WITH ORDINALITY AS b(id, n)
WHERE j.id = b.id AND j.lease_token = (sqlc.arg(lease_tokens)::text[])[b.n] AND j.status = 'running';
