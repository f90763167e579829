-- Owners' budgets: optional per-owner limit overrides, and a ledger with one row per
-- reserved AI call. Amounts are in nanodollars (budget.Nanos) so sums are exact.
CREATE TABLE budget_limits (
    owner_id      TEXT        NOT NULL PRIMARY KEY,
    daily_nanos   BIGINT      NOT NULL,
    monthly_nanos BIGINT      NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- period_day ('YYYY-MM-DD') and period_month ('YYYY-MM') are the UTC periods of
-- created_at, kept as text so a period's rows are found by equality on an index.
CREATE TABLE budget_ledger (
    id             TEXT        NOT NULL PRIMARY KEY,
    owner_id       TEXT        NOT NULL,
    job_id         TEXT        NOT NULL,
    step_id        TEXT        NOT NULL,
    model          TEXT        NOT NULL,
    period_day     TEXT        NOT NULL,
    period_month   TEXT        NOT NULL,
    reserved_nanos BIGINT      NOT NULL,
    spent_nanos    BIGINT      NOT NULL DEFAULT 0,
    state          TEXT        NOT NULL CHECK (state IN ('open', 'settled', 'expired')),
    expires_at     TIMESTAMPTZ NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    settled_at     TIMESTAMPTZ
);
CREATE INDEX budget_ledger_owner_period ON budget_ledger (owner_id, period_month, state);
-- ExpireOwnerReservations scans only open rows.
CREATE INDEX budget_ledger_open_expiry ON budget_ledger (expires_at) WHERE state = 'open';
