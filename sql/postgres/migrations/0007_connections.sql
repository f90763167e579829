-- Connector credentials per owner (credentials.Store). sealed is the connection's
-- secrets as AES-256-GCM ciphertext bound to (owner_id, connector, name), so a row
-- copied under another key does not decrypt; fields is the clear metadata, a JSON
-- array of {"name", "last4"}. See docs/adr/0009-connector-credentials.md.
CREATE TABLE connections (
    owner_id   TEXT        NOT NULL,
    connector  TEXT        NOT NULL,
    name       TEXT        NOT NULL,
    fields     JSONB       NOT NULL,
    sealed     BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (owner_id, connector, name)
);
