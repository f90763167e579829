-- name: InsertAnalyticsEvent :exec
INSERT INTO analytics_events (id, type, created_at, path, ref, referrer, referrer_host, utm_source, utm_medium,
                              utm_campaign, email_hash, payload, bot)
VALUES (sqlc.arg(id), sqlc.arg(type), sqlc.arg(created_at), sqlc.arg(path), sqlc.arg(ref), sqlc.arg(referrer),
        sqlc.arg(referrer_host), sqlc.arg(utm_source), sqlc.arg(utm_medium), sqlc.arg(utm_campaign),
        sqlc.arg(email_hash), sqlc.arg(payload), sqlc.arg(bot));

-- name: ListAnalyticsQuarters :many
-- The quarter counts of the UTC days first..last, every type, in no particular
-- order (sorting them costs PostgreSQL more than reading them).
SELECT day, type, counts FROM analytics_quarters
WHERE day >= sqlc.arg(first) AND day <= sqlc.arg(last);

-- name: AddAnalyticsTotal :exec
INSERT INTO analytics_totals (type, n) VALUES (sqlc.arg(type), sqlc.arg(delta))
ON CONFLICT (type) DO UPDATE SET n = analytics_totals.n + excluded.n;

-- name: ListAnalyticsTotals :many
SELECT type, n FROM analytics_totals ORDER BY type;

-- name: AddAnalyticsTop :execrows
-- Adds to an existing top-list row; 0 rows when the value is new that day.
UPDATE analytics_top SET n = n + sqlc.arg(delta)
WHERE kind = sqlc.arg(kind) AND day = sqlc.arg(day) AND value = sqlc.arg(value);

-- name: CountAnalyticsTopValues :one
SELECT COUNT(*) FROM analytics_top WHERE kind = sqlc.arg(kind) AND day = sqlc.arg(day);

-- name: UpsertAnalyticsTop :exec
INSERT INTO analytics_top (kind, day, value, n) VALUES (sqlc.arg(kind), sqlc.arg(day), sqlc.arg(value), sqlc.arg(delta))
ON CONFLICT (kind, day, value) DO UPDATE SET n = analytics_top.n + excluded.n;

-- name: TopAnalyticsValues :many
-- The most frequent values of a kind over the UTC days first..last; ties by value.
SELECT value, CAST(SUM(n) AS BIGINT) AS total FROM analytics_top
WHERE kind = sqlc.arg(kind) AND day >= sqlc.arg(first) AND day <= sqlc.arg(last)
GROUP BY value
ORDER BY total DESC, value
LIMIT sqlc.arg(top);

-- name: MarketingCounts :one
-- Jobs that reached a final state, and users, for the public marketing summary.
SELECT
    (SELECT COUNT(*) FROM jobs WHERE (status = 'succeeded' OR status = 'failed' OR status = 'canceled')) AS jobs_finished,
    (SELECT COUNT(*) FROM users) AS users;

-- name: PruneAnalyticsEvents :execrows
-- Retention: up to max_rows raw events created before cutoff, oldest first. The
-- rollups (analytics_quarters, analytics_totals, analytics_top) are kept: every read
-- of analytics goes through them, never through the raw events.
DELETE FROM analytics_events WHERE id IN (
    SELECT p.id FROM analytics_events p WHERE p.created_at < sqlc.arg(cutoff)
    ORDER BY p.created_at LIMIT sqlc.arg(max_rows)
);
