-- name: InsertUserIfAbsent :one
-- Inserts a user unless the email is taken; returns no row when it is, so that
-- concurrent creators of one email get exactly one row.
INSERT INTO users (id, email, name, locale, currency, plan, meta, created_at, updated_at)
VALUES (sqlc.arg(id), sqlc.arg(email), sqlc.arg(name), sqlc.arg(locale), sqlc.arg(currency), sqlc.arg(plan), sqlc.arg(meta), sqlc.arg(created_at), sqlc.arg(created_at))
ON CONFLICT (email) DO NOTHING
RETURNING *;

-- name: GetUser :one
SELECT * FROM users WHERE id = sqlc.arg(id);

-- name: GetUserByEmail :one
SELECT * FROM users WHERE email = sqlc.arg(email);

-- name: UpdateUser :one
UPDATE users
SET name = sqlc.arg(name), locale = sqlc.arg(locale), currency = sqlc.arg(currency), plan = sqlc.arg(plan),
    meta = sqlc.arg(meta), updated_at = sqlc.arg(updated_at)
WHERE id = sqlc.arg(id)
RETURNING *;
