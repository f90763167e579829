-- name: InsertNewsletterPending :exec
INSERT INTO newsletter_subscriptions (email_hash, status, source, created_at)
VALUES (sqlc.arg(email_hash), 'pending', sqlc.arg(source), sqlc.arg(created_at))
ON CONFLICT (email_hash) DO NOTHING;

-- name: ClaimNewsletterSend :execrows
-- Claims the confirmation email of a pending subscription when none was sent since
-- sent_before; concurrent requests for one address claim it once.
UPDATE newsletter_subscriptions SET sent_at = sqlc.arg(now)
WHERE email_hash = sqlc.arg(email_hash) AND status = 'pending'
  AND (sent_at IS NULL OR sent_at < sqlc.arg(sent_before));

-- name: ConfirmNewsletter :execrows
UPDATE newsletter_subscriptions
SET status = 'confirmed', email = sqlc.arg(email), confirmed_at = sqlc.arg(now)
WHERE email_hash = sqlc.arg(email_hash) AND status = 'pending';

-- name: GetNewsletterStatus :one
SELECT status FROM newsletter_subscriptions WHERE email_hash = sqlc.arg(email_hash);
