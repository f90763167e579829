-- name: PutConnection :one
-- Inserts or replaces a connection; a replaced one keeps its created_at.
INSERT INTO connections (owner_id, connector, name, fields, sealed, created_at, updated_at)
VALUES (sqlc.arg(owner_id), sqlc.arg(connector), sqlc.arg(name), sqlc.arg(fields), sqlc.arg(sealed), sqlc.arg(now), sqlc.arg(now))
ON CONFLICT (owner_id, connector, name) DO UPDATE
SET fields = excluded.fields, sealed = excluded.sealed, updated_at = excluded.updated_at
RETURNING owner_id, connector, name, fields, created_at, updated_at;

-- name: GetConnection :one
SELECT * FROM connections
WHERE owner_id = sqlc.arg(owner_id) AND connector = sqlc.arg(connector) AND name = sqlc.arg(name);

-- name: ListConnections :many
-- Metadata only: the sealed secrets stay in the database.
SELECT owner_id, connector, name, fields, created_at, updated_at FROM connections
WHERE owner_id = sqlc.arg(owner_id)
ORDER BY connector, name
LIMIT 1000;

-- name: DeleteConnection :execrows
DELETE FROM connections
WHERE owner_id = sqlc.arg(owner_id) AND connector = sqlc.arg(connector) AND name = sqlc.arg(name);
