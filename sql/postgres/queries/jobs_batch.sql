-- name: InsertJobs :many
-- A batch of jobs (POST /api/v1/intake/batch) in one statement: one round trip and
-- one firing of the statement-level job_counts trigger. Arrays are column-wise, in
-- batch order (indexed by the ids' ordinality); '' stands for a NULL idempotency key (the scope and hash go with it).
-- Rows whose key is taken, in the table or by an earlier row of the batch, are
-- skipped (ON CONFLICT DO NOTHING) and missing from the result.
-- result, started_at, finished_at and replay_of: '' stands for NULL too (times as RFC 3339 text).
INSERT INTO jobs (id, owner_id, workflow, status, priority, run_at, max_attempts, timeout_s, payload, steps,
                  guardrails, callback_url, idem_scope, idem_key, idem_hash, created_at, updated_at, input_bytes, steps_bytes,
                  result, started_at, finished_at, dry_run, replay_of)
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
       (sqlc.arg(dry_runs)::bigint[])[b.n], NULLIF((sqlc.arg(replay_ofs)::text[])[b.n], '')
FROM unnest(sqlc.arg(ids)::text[]) WITH ORDINALITY AS b(id, n)
ORDER BY b.n
ON CONFLICT (idem_scope, idem_key) WHERE idem_key IS NOT NULL DO NOTHING
RETURNING *;

-- name: GetJobsByIdempotencyKeys :many
-- The jobs holding some keys of one scope: the winners for a batch's skipped rows.
SELECT * FROM jobs WHERE idem_scope = sqlc.arg(idem_scope) AND idem_key = ANY(sqlc.arg(idem_keys)::text[]);
