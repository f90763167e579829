-- Billing (issue 16): one account per user that ever started a Stripe checkout, and
-- every Stripe event applied, recorded once in the transaction that applied it.
CREATE TABLE billing_accounts (
    user_id               TEXT        NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    customer_id           TEXT        NOT NULL UNIQUE, -- Stripe customer, created once per user
    subscription_id       TEXT        NOT NULL DEFAULT '',
    plan                  TEXT        NOT NULL DEFAULT 'free',
    status                TEXT        NOT NULL DEFAULT '', -- Stripe's subscription status; '' before one exists
    price_id              TEXT        NOT NULL DEFAULT '',
    current_period_end    TIMESTAMPTZ,
    payment_failed_at     TIMESTAMPTZ, -- first failed payment not yet followed by a paid invoice
    latest_invoice_id     TEXT        NOT NULL DEFAULT '',
    latest_invoice_status TEXT        NOT NULL DEFAULT '',
    updated_at            TIMESTAMPTZ NOT NULL
);

CREATE TABLE billing_events (
    id          TEXT        NOT NULL PRIMARY KEY, -- Stripe's event id (evt_…)
    type        TEXT        NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);
