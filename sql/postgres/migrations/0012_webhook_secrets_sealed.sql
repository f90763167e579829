-- Webhook signing secrets are sealed at rest like connector credentials (issue #13):
-- sealed is the secret as AES-256-GCM ciphertext bound to its owner (credentials.Key),
-- and secret is '' for every row written since. Rows written before keep their clear
-- secret (SQL has no key to seal them with); `levqor serve` seals them at start-up
-- (jobs.SealWebhookSecrets) and reads accept both until then.
ALTER TABLE webhook_secrets ADD COLUMN sealed BYTEA;
