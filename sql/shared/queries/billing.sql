-- name: GetBillingAccount :one
SELECT * FROM billing_accounts WHERE user_id = sqlc.arg(user_id);

-- name: GetBillingAccountByCustomer :one
SELECT * FROM billing_accounts WHERE customer_id = sqlc.arg(customer_id);

-- name: ListBillingAccounts :many
SELECT * FROM billing_accounts ORDER BY user_id;

-- name: InsertBillingCustomer :execrows
-- A user's Stripe customer is stored once: the first writer wins.
INSERT INTO billing_accounts (user_id, customer_id, updated_at)
VALUES (sqlc.arg(user_id), sqlc.arg(customer_id), sqlc.arg(updated_at))
ON CONFLICT (user_id) DO NOTHING;

-- name: UpdateBillingAccount :execrows
UPDATE billing_accounts
SET subscription_id = sqlc.arg(subscription_id), plan = sqlc.arg(plan), status = sqlc.arg(status),
    price_id = sqlc.arg(price_id), current_period_end = sqlc.arg(current_period_end),
    payment_failed_at = sqlc.arg(payment_failed_at), latest_invoice_id = sqlc.arg(latest_invoice_id),
    latest_invoice_status = sqlc.arg(latest_invoice_status), updated_at = sqlc.arg(updated_at)
WHERE user_id = sqlc.arg(user_id);

-- name: InsertBillingEvent :execrows
-- Records a Stripe event once; no row affected means it was applied already.
INSERT INTO billing_events (id, type, received_at)
VALUES (sqlc.arg(id), sqlc.arg(type), sqlc.arg(received_at))
ON CONFLICT (id) DO NOTHING;

-- name: SetUserPlan :execrows
UPDATE users SET plan = sqlc.arg(plan), updated_at = sqlc.arg(updated_at)
WHERE id = sqlc.arg(user_id) AND plan <> sqlc.arg(plan);
