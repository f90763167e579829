-- name: LockAnalyticsQuarters :one
-- Reads a day's quarter counts and locks the row until the transaction ends.
SELECT counts FROM analytics_quarters WHERE day = sqlc.arg(day) AND type = sqlc.arg(type) FOR UPDATE;

-- name: InsertAnalyticsQuartersIfAbsent :exec
INSERT INTO analytics_quarters (day, type, counts) VALUES (sqlc.arg(day), sqlc.arg(type), sqlc.arg(counts))
ON CONFLICT (day, type) DO NOTHING;

-- name: SetAnalyticsQuarters :exec
UPDATE analytics_quarters SET counts = sqlc.arg(counts) WHERE day = sqlc.arg(day) AND type = sqlc.arg(type);

-- name: ListAnalyticsDayCuts :many
-- For each UTC day of first..last and type: the running totals at quarters cut_a - 1
-- and cut_b - 1 (the events before quarters cut_a and cut_b, each 1..95) and at
-- quarter 95 (the day's), as 4-byte big-endian slices of counts, so that a long range
-- sends 12 bytes a row instead of 384.
SELECT day, type,
    substring(counts FROM 4 * sqlc.arg(cut_a)::integer - 3 FOR 4)::bytea AS before_a,
    substring(counts FROM 4 * sqlc.arg(cut_b)::integer - 3 FOR 4)::bytea AS before_b,
    substring(counts FROM 381 FOR 4)::bytea AS day_total
FROM analytics_quarters
WHERE day >= sqlc.arg(first) AND day <= sqlc.arg(last);

-- name: CopyAnalyticsEvents :copyfrom
INSERT INTO analytics_events (id, type, created_at, path, ref, referrer, referrer_host, utm_source, utm_medium,
                              utm_campaign, email_hash, payload, bot)
VALUES (sqlc.arg(id), sqlc.arg(type), sqlc.arg(created_at), sqlc.arg(path), sqlc.arg(ref), sqlc.arg(referrer),
        sqlc.arg(referrer_host), sqlc.arg(utm_source), sqlc.arg(utm_medium), sqlc.arg(utm_campaign),
        sqlc.arg(email_hash), sqlc.arg(payload), sqlc.arg(bot));
