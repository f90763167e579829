-- Fewer pages written per AI step on SQLite (docs/adr/0006-budgets.md): an open
-- reservation is a row of a small table keyed by owner, its settlement one row appended
-- to the ledger, and the running totals keep spending only — what an owner has reserved
-- is the sum of its open rows (as many as its AI calls in flight). A reserve and its
-- settle then write about 4 pages to the WAL instead of 8, so checkpoints come half as
-- often. All three tables are clustered on their keys (WITHOUT ROWID): no second index.

-- Open reservations; the expiry sweep moves those past expires_at to the ledger.
CREATE TABLE budget_open (
    owner_id       TEXT     NOT NULL,
    id             TEXT     NOT NULL,
    job_id         TEXT     NOT NULL,
    step_id        TEXT     NOT NULL,
    model          TEXT     NOT NULL,
    period_day     TEXT     NOT NULL,
    period_month   TEXT     NOT NULL,
    reserved_nanos INTEGER  NOT NULL,
    expires_at     DATETIME NOT NULL,
    created_at     DATETIME NOT NULL,
    PRIMARY KEY (owner_id, id)
) WITHOUT ROWID;

INSERT INTO budget_open (owner_id, id, job_id, step_id, model, period_day, period_month, reserved_nanos, expires_at, created_at)
SELECT owner_id, id, job_id, step_id, model, period_day, period_month, reserved_nanos, expires_at, created_at
FROM budget_ledger WHERE state = 'open';

-- Closed reservations, in (owner, month) order for the usage per model.
CREATE TABLE budget_closed (
    owner_id       TEXT     NOT NULL,
    period_month   TEXT     NOT NULL,
    id             TEXT     NOT NULL,
    job_id         TEXT     NOT NULL,
    step_id        TEXT     NOT NULL,
    model          TEXT     NOT NULL,
    period_day     TEXT     NOT NULL,
    reserved_nanos INTEGER  NOT NULL,
    spent_nanos    INTEGER  NOT NULL,
    state          TEXT     NOT NULL CHECK (state IN ('settled', 'expired')),
    expires_at     DATETIME NOT NULL,
    created_at     DATETIME NOT NULL,
    settled_at     DATETIME,
    PRIMARY KEY (owner_id, period_month, id)
) WITHOUT ROWID;

INSERT INTO budget_closed (owner_id, period_month, id, job_id, step_id, model, period_day, reserved_nanos, spent_nanos, state, expires_at, created_at, settled_at)
SELECT owner_id, period_month, id, job_id, step_id, model, period_day, reserved_nanos, spent_nanos, state, expires_at, created_at, settled_at
FROM budget_ledger WHERE state <> 'open';

-- A late settle finds an expired reservation by id; settled rows stay out of this index.
CREATE INDEX budget_closed_expired ON budget_closed (id) WHERE state = 'expired';

DROP TABLE budget_ledger;

-- Settled spending per owner and period ('D' + day, 'M' + month).
CREATE TABLE budget_spent (
    owner_id    TEXT    NOT NULL,
    period      TEXT    NOT NULL,
    spent_nanos INTEGER NOT NULL,
    PRIMARY KEY (owner_id, period)
) WITHOUT ROWID;

INSERT INTO budget_spent (owner_id, period, spent_nanos)
SELECT owner_id, period, spent_nanos FROM budget_totals;

DROP TABLE budget_totals;
