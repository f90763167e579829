-- name: UpsertOwnerTotal :exec
-- Adds to an owner's running totals of one period ('D' day or 'M' month key),
-- creating the row at zero first. In a transaction it also locks the row: callers
-- touch totals rows in ascending (owner_id, period) order, so they never deadlock.
-- Spending saturates at the largest BIGINT (summed as numeric) instead of failing.
INSERT INTO budget_totals (owner_id, period, spent_nanos, reserved_nanos)
VALUES (sqlc.arg(owner_id), sqlc.arg(period), sqlc.arg(spent_delta), sqlc.arg(reserved_delta))
ON CONFLICT (owner_id, period) DO UPDATE
SET spent_nanos = CAST(LEAST(CAST(budget_totals.spent_nanos AS NUMERIC) + excluded.spent_nanos, 9223372036854775807) AS BIGINT),
    reserved_nanos = budget_totals.reserved_nanos + excluded.reserved_nanos;

-- name: OwnerTotals :one
-- An owner's running totals in one UTC day and its month (keys 'D' + day and 'M' + month).
SELECT
    CAST(COALESCE(SUM(CASE WHEN period = sqlc.arg(day_key) THEN spent_nanos ELSE 0 END), 0) AS BIGINT) AS day_spent,
    CAST(COALESCE(SUM(CASE WHEN period = sqlc.arg(day_key) THEN reserved_nanos ELSE 0 END), 0) AS BIGINT) AS day_reserved,
    CAST(COALESCE(SUM(CASE WHEN period = sqlc.arg(month_key) THEN spent_nanos ELSE 0 END), 0) AS BIGINT) AS month_spent,
    CAST(COALESCE(SUM(CASE WHEN period = sqlc.arg(month_key) THEN reserved_nanos ELSE 0 END), 0) AS BIGINT) AS month_reserved
FROM budget_totals
WHERE owner_id = sqlc.arg(owner_id) AND period IN (sqlc.arg(day_key), sqlc.arg(month_key));

-- name: OwnerSpentByModel :many
-- An owner's settled spending per model in one month, and in one day of it.
SELECT model,
    CAST(COALESCE(SUM(CASE WHEN period_day = sqlc.arg(period_day) THEN 1 ELSE 0 END), 0) AS BIGINT) AS day_rows,
    CAST(COALESCE(SUM(CASE WHEN period_day = sqlc.arg(period_day) THEN spent_nanos ELSE 0 END), 0) AS BIGINT) AS day_spent,
    CAST(COALESCE(SUM(spent_nanos), 0) AS BIGINT) AS month_spent
FROM budget_ledger
WHERE owner_id = sqlc.arg(owner_id) AND period_month = sqlc.arg(period_month) AND state = 'settled'
GROUP BY model
ORDER BY model;

-- name: InsertOwnerReservation :exec
INSERT INTO budget_ledger (id, owner_id, job_id, step_id, model, period_day, period_month, reserved_nanos, state, expires_at, created_at)
VALUES (sqlc.arg(id), sqlc.arg(owner_id), sqlc.arg(job_id), sqlc.arg(step_id), sqlc.arg(model), sqlc.arg(period_day),
        sqlc.arg(period_month), sqlc.arg(reserved_nanos), 'open', sqlc.arg(expires_at), sqlc.arg(created_at));

-- name: SettleOpenOwnerReservation :one
UPDATE budget_ledger SET spent_nanos = sqlc.arg(spent_nanos), state = 'settled', settled_at = sqlc.arg(settled_at)
WHERE id = sqlc.arg(id) AND owner_id = sqlc.arg(owner_id) AND state = 'open'
RETURNING owner_id, period_day, period_month, reserved_nanos;

-- name: SettleExpiredOwnerReservation :one
-- An expired reservation may still be settled: the money was spent all the same.
UPDATE budget_ledger SET spent_nanos = sqlc.arg(spent_nanos), state = 'settled', settled_at = sqlc.arg(settled_at)
WHERE id = sqlc.arg(id) AND owner_id = sqlc.arg(owner_id) AND state = 'expired'
RETURNING owner_id, period_day, period_month, reserved_nanos;

-- name: ExpireOwnerReservations :many
-- Marks up to batch open reservations past their expiry as expired and returns them,
-- so the caller can release their amounts from the totals.
UPDATE budget_ledger SET state = 'expired'
WHERE state = 'open' AND id IN (
    SELECT o.id FROM budget_ledger AS o
    WHERE o.state = 'open' AND o.expires_at < sqlc.arg(now)
    ORDER BY o.expires_at
    LIMIT sqlc.arg(batch) FOR UPDATE SKIP LOCKED
)
RETURNING owner_id, period_day, period_month, reserved_nanos;

-- name: GetOwnerLimits :one
SELECT * FROM budget_limits WHERE owner_id = sqlc.arg(owner_id);

-- name: GetOwnersLimits :many
-- The overrides of several owners at once: the reads of concurrent workers, coalesced
-- (store/postgres/ownerlimits.go).
SELECT * FROM budget_limits WHERE owner_id = ANY(sqlc.arg(owner_ids)::text[]);

-- name: UpsertOwnerLimits :exec
INSERT INTO budget_limits (owner_id, daily_nanos, monthly_nanos, updated_at)
VALUES (sqlc.arg(owner_id), sqlc.arg(daily_nanos), sqlc.arg(monthly_nanos), sqlc.arg(updated_at))
ON CONFLICT (owner_id) DO UPDATE
SET daily_nanos = excluded.daily_nanos, monthly_nanos = excluded.monthly_nanos, updated_at = excluded.updated_at;

-- name: DeleteOwnerLimits :exec
DELETE FROM budget_limits WHERE owner_id = sqlc.arg(owner_id);

-- name: LockOwnerBudget :exec
-- Serialises reservations of one owner across connections and instances until the
-- transaction ends. The two-key form keeps these locks apart from the migration lock.
SELECT pg_advisory_xact_lock(7107426, hashtext(sqlc.arg(owner_id)));
