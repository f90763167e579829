-- name: OwnerPeriodTotals :one
-- An owner's settled spending and open, unexpired (as of at) reservations in one UTC
-- day and its month.
SELECT
    CAST(COALESCE(SUM(CASE WHEN period_day = sqlc.arg(period_day) AND state = 'settled' THEN spent_nanos ELSE 0 END), 0) AS INTEGER) AS day_spent,
    CAST(COALESCE(SUM(CASE WHEN period_day = sqlc.arg(period_day) AND state = 'open' AND expires_at > sqlc.arg(at) THEN reserved_nanos ELSE 0 END), 0) AS INTEGER) AS day_reserved,
    CAST(COALESCE(SUM(CASE WHEN state = 'settled' THEN spent_nanos ELSE 0 END), 0) AS INTEGER) AS month_spent,
    CAST(COALESCE(SUM(CASE WHEN state = 'open' AND expires_at > sqlc.arg(at) THEN reserved_nanos ELSE 0 END), 0) AS INTEGER) AS month_reserved
FROM budget_ledger
WHERE owner_id = sqlc.arg(owner_id) AND period_month = sqlc.arg(period_month) AND state IN ('open', 'settled');

-- name: OwnerSpentByModel :many
-- An owner's settled spending per model in one month, and in one day of it.
SELECT model,
    CAST(COALESCE(SUM(CASE WHEN period_day = sqlc.arg(period_day) THEN 1 ELSE 0 END), 0) AS INTEGER) AS day_rows,
    CAST(COALESCE(SUM(CASE WHEN period_day = sqlc.arg(period_day) THEN spent_nanos ELSE 0 END), 0) AS INTEGER) AS day_spent,
    CAST(COALESCE(SUM(spent_nanos), 0) AS INTEGER) AS month_spent
FROM budget_ledger
WHERE owner_id = sqlc.arg(owner_id) AND period_month = sqlc.arg(period_month) AND state = 'settled'
GROUP BY model
ORDER BY model;

-- name: InsertOwnerReservation :exec
INSERT INTO budget_ledger (id, owner_id, job_id, step_id, model, period_day, period_month, reserved_nanos, state, expires_at, created_at)
VALUES (sqlc.arg(id), sqlc.arg(owner_id), sqlc.arg(job_id), sqlc.arg(step_id), sqlc.arg(model), sqlc.arg(period_day),
        sqlc.arg(period_month), sqlc.arg(reserved_nanos), 'open', sqlc.arg(expires_at), sqlc.arg(created_at));

-- name: SettleOwnerReservation :execrows
-- An expired reservation may still be settled: the money was spent all the same.
UPDATE budget_ledger SET spent_nanos = sqlc.arg(spent_nanos), state = 'settled', settled_at = sqlc.arg(settled_at)
WHERE id = sqlc.arg(id) AND state IN ('open', 'expired');

-- name: ExpireOwnerReservations :execrows
UPDATE budget_ledger SET state = 'expired'
WHERE state = 'open' AND expires_at < sqlc.arg(now);

-- name: GetOwnerLimits :one
SELECT * FROM budget_limits WHERE owner_id = sqlc.arg(owner_id);

-- name: UpsertOwnerLimits :exec
INSERT INTO budget_limits (owner_id, daily_nanos, monthly_nanos, updated_at)
VALUES (sqlc.arg(owner_id), sqlc.arg(daily_nanos), sqlc.arg(monthly_nanos), sqlc.arg(updated_at))
ON CONFLICT (owner_id) DO UPDATE
SET daily_nanos = excluded.daily_nanos, monthly_nanos = excluded.monthly_nanos, updated_at = excluded.updated_at;

-- name: DeleteOwnerLimits :exec
DELETE FROM budget_limits WHERE owner_id = sqlc.arg(owner_id);
