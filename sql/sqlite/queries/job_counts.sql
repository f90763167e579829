-- name: AddJobCount :exec
-- The group committer counts a group's new jobs once per status (migration 0013).
INSERT INTO job_counts (status, shard, n) VALUES (sqlc.arg(status), 0, sqlc.arg(n))
ON CONFLICT (status, shard) DO UPDATE SET n = n + excluded.n;
