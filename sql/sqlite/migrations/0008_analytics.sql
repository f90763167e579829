-- Product analytics (docs/adr/0007-analytics-rollups.md): the raw events, and rollups
-- kept current in the transaction that inserts the events, so a summary reads a
-- bounded number of rows however many events are stored. Events flagged as bots are
-- stored but left out of every rollup.

-- One row per tracked event. email_hash is the hex HMAC-SHA-256 of the normalised
-- email under the hash secret ('' without an email); the email itself is never stored.
-- path is the page path without query or fragment; referrer_host the referrer's host.
CREATE TABLE analytics_events (
    id            TEXT     NOT NULL PRIMARY KEY,
    type          TEXT     NOT NULL CHECK (type IN ('page_view', 'cta_click', 'newsletter', 'conversion')),
    created_at    DATETIME NOT NULL,
    path          TEXT     NOT NULL,
    ref           TEXT     NOT NULL,
    referrer      TEXT     NOT NULL,
    referrer_host TEXT     NOT NULL,
    utm_source    TEXT     NOT NULL,
    utm_medium    TEXT     NOT NULL,
    utm_campaign  TEXT     NOT NULL,
    email_hash    TEXT     NOT NULL,
    payload       TEXT,              -- a compact JSON object, NULL without one
    bot           INTEGER  NOT NULL CHECK (bot IN (0, 1))
);

-- Counts per UTC day and type, in 15-minute quarters: counts holds 96 big-endian
-- uint32 running totals, entry i counting the events of quarters 0..i of the day (so
-- entry 95 is the day's total). Quarters let the daily breakdown be re-cut in Go into
-- the days of any time zone (all current UTC offsets are whole quarters); packing a
-- day in one row keeps a year to 366 rows per type, and running totals let a long
-- range read just the entries at the zone's midnight.
CREATE TABLE analytics_quarters (
    day    INTEGER NOT NULL, -- days since 1970-01-01 (UTC)
    type   TEXT    NOT NULL,
    counts BLOB    NOT NULL,
    PRIMARY KEY (day, type)
);

-- All-time counts per type.
CREATE TABLE analytics_totals (
    type TEXT    NOT NULL PRIMARY KEY,
    n    INTEGER NOT NULL
) WITHOUT ROWID;

-- Counts per (kind, UTC day, value) for the top lists: kind is 'referrer' (the
-- referrer's host), 'path' or 'utm_source'. About 1000 distinct values per kind and day
-- are kept; later new values of that day are counted under '(other)'.
CREATE TABLE analytics_top (
    kind  TEXT    NOT NULL CHECK (kind IN ('referrer', 'path', 'utm_source')),
    day   INTEGER NOT NULL,
    value TEXT    NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (kind, day, value)
) WITHOUT ROWID;
