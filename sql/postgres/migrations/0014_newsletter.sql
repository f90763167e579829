-- Newsletter subscriptions with double opt-in (POST /api/v1/newsletter). Until it is
-- confirmed an address is known only by its keyed hash (the analytics hash secret);
-- email is filled in on confirmation. sent_at is when the last confirmation email was
-- claimed, which spaces out resends.
CREATE TABLE newsletter_subscriptions (
    email_hash   TEXT        NOT NULL PRIMARY KEY,
    status       TEXT        NOT NULL CHECK (status IN ('pending', 'confirmed')),
    email        TEXT,
    source       TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    sent_at      TIMESTAMPTZ,
    confirmed_at TIMESTAMPTZ,
    CHECK ((status = 'confirmed') = (email IS NOT NULL AND confirmed_at IS NOT NULL))
);
