-- Jobs: the API's record of every job and, at the same time, the queue.
CREATE TABLE jobs (
    id               TEXT     NOT NULL PRIMARY KEY,
    owner_id         TEXT     NOT NULL,            -- '' for jobs of bootstrap admin keys
    workflow         TEXT     NOT NULL,
    status           TEXT     NOT NULL,            -- queued scheduled running retrying succeeded failed canceled
    priority         INTEGER  NOT NULL,            -- 0 low, 1 normal, 2 high
    run_at           TIMESTAMPTZ NOT NULL,
    attempts         INTEGER  NOT NULL DEFAULT 0,
    max_attempts     INTEGER  NOT NULL,
    timeout_s        INTEGER  NOT NULL,
    payload          JSONB    NOT NULL,
    steps            JSONB    NOT NULL,            -- JSON array of step states
    result           JSONB,
    error_code       TEXT     NOT NULL DEFAULT '',
    error_message    TEXT     NOT NULL DEFAULT '',
    guardrails       JSONB    NOT NULL DEFAULT '{}',
    callback_url     TEXT     NOT NULL DEFAULT '',
    callbacks        JSONB    NOT NULL DEFAULT '[]', -- JSON array of delivery attempts
    callback_state   TEXT     NOT NULL DEFAULT '',   -- '' none, pending, delivered, failed
    callback_next_at TIMESTAMPTZ,
    lease_token      TEXT     NOT NULL DEFAULT '',
    lease_expires_at TIMESTAMPTZ,
    cancel_requested INTEGER  NOT NULL DEFAULT 0,
    idem_scope       TEXT,
    idem_key         TEXT,
    idem_hash        TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (idem_scope, idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX jobs_due ON jobs (priority DESC, run_at, id) WHERE status IN ('queued', 'scheduled', 'retrying');
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX jobs_owner ON jobs (owner_id, created_at DESC, id DESC);
CREATE INDEX jobs_created ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_callbacks ON jobs (callback_next_at) WHERE callback_state = 'pending';

CREATE TABLE workflows (
    owner_id    TEXT     NOT NULL,
    name        TEXT     NOT NULL,
    description TEXT     NOT NULL DEFAULT '',
    steps       JSONB    NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (owner_id, name)
);

CREATE TABLE webhook_secrets (
    owner_id   TEXT     NOT NULL PRIMARY KEY,
    secret     TEXT     NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
