-- Users: one row per person, unique by (lower-cased) email.
CREATE TABLE users (
    id         TEXT        NOT NULL PRIMARY KEY,
    email      TEXT        NOT NULL UNIQUE,
    name       TEXT        NOT NULL DEFAULT '',
    locale     TEXT        NOT NULL DEFAULT '',
    currency   TEXT        NOT NULL DEFAULT '',
    plan       TEXT        NOT NULL DEFAULT '',
    meta       JSONB       NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
