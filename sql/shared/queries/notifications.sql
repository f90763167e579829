-- name: GetNotificationSettings :one
SELECT job_failed FROM notification_settings WHERE owner_id = sqlc.arg(owner_id);

-- name: UpsertNotificationSettings :exec
INSERT INTO notification_settings (owner_id, job_failed, updated_at)
VALUES (sqlc.arg(owner_id), sqlc.arg(job_failed), sqlc.arg(updated_at))
ON CONFLICT (owner_id) DO UPDATE SET job_failed = excluded.job_failed, updated_at = excluded.updated_at;
