-- name: InsertKey :one
INSERT INTO api_keys (id, owner_id, name, prefix, last4, hash, scopes, created_at, expires_at)
VALUES (sqlc.arg(id), sqlc.arg(owner_id), sqlc.arg(name), sqlc.arg(prefix), sqlc.arg(last4), sqlc.arg(hash),
        sqlc.arg(scopes), sqlc.arg(created_at), sqlc.narg(expires_at))
RETURNING *;

-- name: GetKey :one
SELECT * FROM api_keys WHERE id = sqlc.arg(id);

-- name: GetKeyByHash :one
SELECT * FROM api_keys WHERE hash = sqlc.arg(hash);

-- name: ListKeys :many
SELECT * FROM api_keys
WHERE (CAST(sqlc.arg(owner_id) AS TEXT) = '' OR owner_id = CAST(sqlc.arg(owner_id) AS TEXT))
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(max_rows);

-- name: RevokeKey :one
UPDATE api_keys SET revoked_at = COALESCE(revoked_at, sqlc.arg(revoked_at))
WHERE id = sqlc.arg(id)
RETURNING *;

-- name: ExpireKeyBy :execrows
-- Makes a key expire at the given time unless it already expires earlier.
UPDATE api_keys SET expires_at = sqlc.arg(expires_at)
WHERE id = sqlc.arg(id) AND (expires_at IS NULL OR expires_at > sqlc.arg(expires_at));

-- name: TouchKey :exec
UPDATE api_keys SET last_used_at = sqlc.arg(last_used_at) WHERE id = sqlc.arg(id);
