-- name: GetAnalyticsQuarters :one
SELECT counts FROM analytics_quarters WHERE day = sqlc.arg(day) AND type = sqlc.arg(type);

-- name: PutAnalyticsQuarters :exec
INSERT INTO analytics_quarters (day, type, counts) VALUES (sqlc.arg(day), sqlc.arg(type), sqlc.arg(counts))
ON CONFLICT (day, type) DO UPDATE SET counts = excluded.counts;

-- name: ListAnalyticsDayCuts :many
-- For each UTC day of first..last and type: the running totals at quarters cut_a - 1
-- and cut_b - 1 (the events before quarters cut_a and cut_b, each 1..95) and at
-- quarter 95 (the day's), as 4-byte big-endian slices of counts, so that a long range
-- sends 12 bytes a row instead of 384.
SELECT day, type,
    CAST(substr(counts, 4 * CAST(sqlc.arg(cut_a) AS INTEGER) - 3, 4) AS BLOB) AS before_a,
    CAST(substr(counts, 4 * CAST(sqlc.arg(cut_b) AS INTEGER) - 3, 4) AS BLOB) AS before_b,
    CAST(substr(counts, 381, 4) AS BLOB) AS day_total
FROM analytics_quarters
WHERE day >= sqlc.arg(first) AND day <= sqlc.arg(last);
