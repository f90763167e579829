-- Users: one row per person, unique by (lower-cased) email.
CREATE TABLE users (
    id         TEXT     NOT NULL PRIMARY KEY,
    email      TEXT     NOT NULL UNIQUE,
    name       TEXT     NOT NULL DEFAULT '',
    locale     TEXT     NOT NULL DEFAULT '',
    currency   TEXT     NOT NULL DEFAULT '',
    plan       TEXT     NOT NULL DEFAULT '',
    meta       TEXT     NOT NULL DEFAULT '{}',
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
