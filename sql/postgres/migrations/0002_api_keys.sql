-- API keys: only a SHA-256 hash of the secret is kept, plus its prefix and last four characters.
CREATE TABLE api_keys (
    id           TEXT        NOT NULL PRIMARY KEY,
    owner_id     TEXT        NOT NULL REFERENCES users (id),
    name         TEXT        NOT NULL DEFAULT '',
    prefix       TEXT        NOT NULL,
    last4        TEXT        NOT NULL,
    hash         BYTEA       NOT NULL UNIQUE,
    scopes       TEXT        NOT NULL, -- space-separated
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX api_keys_owner ON api_keys (owner_id, created_at);
