-- name: OwnerTotals :one
-- An owner's settled spending and open reservations in one UTC day and its month, read
-- in one statement (one snapshot). The open rows are the owner's AI calls in flight.
SELECT
    CAST(COALESCE((SELECT spent_nanos FROM budget_spent AS s
                   WHERE s.owner_id = sqlc.arg(owner_id) AND s.period = sqlc.arg(day_key)), 0) AS INTEGER) AS day_spent,
    CAST(COALESCE((SELECT SUM(reserved_nanos) FROM budget_open AS o
                   WHERE o.owner_id = sqlc.arg(owner_id) AND o.period_day = sqlc.arg(period_day)), 0) AS INTEGER) AS day_reserved,
    CAST(COALESCE((SELECT spent_nanos FROM budget_spent AS s
                   WHERE s.owner_id = sqlc.arg(owner_id) AND s.period = sqlc.arg(month_key)), 0) AS INTEGER) AS month_spent,
    CAST(COALESCE((SELECT SUM(reserved_nanos) FROM budget_open AS o
                   WHERE o.owner_id = sqlc.arg(owner_id) AND o.period_month = sqlc.arg(period_month)), 0) AS INTEGER) AS month_reserved;

-- name: AddOwnerSpent :exec
-- Adds to an owner's settled spending in a day and in its month, saturating at the
-- largest INTEGER (an overflowing sum becomes a REAL in SQLite, which MIN caps) so the
-- total never wraps or stops being an integer.
INSERT INTO budget_spent (owner_id, period, spent_nanos)
VALUES (sqlc.arg(owner_id), sqlc.arg(day_key), sqlc.arg(spent)), (sqlc.arg(owner_id), sqlc.arg(month_key), sqlc.arg(spent))
ON CONFLICT (owner_id, period) DO UPDATE
SET spent_nanos = MIN(budget_spent.spent_nanos + excluded.spent_nanos, 9223372036854775807);

-- name: OwnerSpentByModel :many
-- An owner's settled spending per model in one month, and in one day of it.
SELECT model,
    CAST(COALESCE(SUM(CASE WHEN period_day = sqlc.arg(period_day) THEN 1 ELSE 0 END), 0) AS INTEGER) AS day_rows,
    CAST(COALESCE(SUM(CASE WHEN period_day = sqlc.arg(period_day) THEN spent_nanos ELSE 0 END), 0) AS INTEGER) AS day_spent,
    CAST(COALESCE(SUM(spent_nanos), 0) AS INTEGER) AS month_spent
FROM budget_closed
WHERE owner_id = sqlc.arg(owner_id) AND period_month = sqlc.arg(period_month) AND state = 'settled'
GROUP BY model
ORDER BY model;

-- name: InsertOwnerReservation :exec
INSERT INTO budget_open (owner_id, id, job_id, step_id, model, period_day, period_month, reserved_nanos, expires_at, created_at)
VALUES (sqlc.arg(owner_id), sqlc.arg(id), sqlc.arg(job_id), sqlc.arg(step_id), sqlc.arg(model), sqlc.arg(period_day),
        sqlc.arg(period_month), sqlc.arg(reserved_nanos), sqlc.arg(expires_at), sqlc.arg(created_at));

-- name: DeleteOpenOwnerReservation :one
DELETE FROM budget_open WHERE owner_id = sqlc.arg(owner_id) AND id = sqlc.arg(id)
RETURNING *;

-- name: ExpireOwnerReservations :many
-- Takes every open reservation past its expiry out of budget_open and returns it, for
-- the caller to record in budget_closed as expired (in the same transaction).
DELETE FROM budget_open WHERE expires_at < sqlc.arg(now)
RETURNING *;

-- name: InsertClosedOwnerReservation :exec
INSERT INTO budget_closed (owner_id, period_month, id, job_id, step_id, model, period_day, reserved_nanos, spent_nanos, state, expires_at, created_at, settled_at)
VALUES (sqlc.arg(owner_id), sqlc.arg(period_month), sqlc.arg(id), sqlc.arg(job_id), sqlc.arg(step_id), sqlc.arg(model),
        sqlc.arg(period_day), sqlc.arg(reserved_nanos), sqlc.arg(spent_nanos), sqlc.arg(state), sqlc.arg(expires_at),
        sqlc.arg(created_at), sqlc.arg(settled_at));

-- name: SettleExpiredOwnerReservation :one
-- An expired reservation may still be settled: the money was spent all the same.
UPDATE budget_closed SET spent_nanos = sqlc.arg(spent_nanos), state = 'settled', settled_at = sqlc.arg(settled_at)
WHERE id = sqlc.arg(id) AND state = 'expired' AND owner_id = sqlc.arg(owner_id)
RETURNING period_day, period_month;

-- name: GetOwnerLimits :one
SELECT * FROM budget_limits WHERE owner_id = sqlc.arg(owner_id);

-- name: UpsertOwnerLimits :exec
INSERT INTO budget_limits (owner_id, daily_nanos, monthly_nanos, updated_at)
VALUES (sqlc.arg(owner_id), sqlc.arg(daily_nanos), sqlc.arg(monthly_nanos), sqlc.arg(updated_at))
ON CONFLICT (owner_id) DO UPDATE
SET daily_nanos = excluded.daily_nanos, monthly_nanos = excluded.monthly_nanos, updated_at = excluded.updated_at;

-- name: DeleteOwnerLimits :exec
DELETE FROM budget_limits WHERE owner_id = sqlc.arg(owner_id);
