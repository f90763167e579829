-- Triggers (issue #22): schedules and inbound webhooks start jobs of saved workflows.
--
-- schedule_slots is the once-per-cluster claim of periodic work (workflow schedules,
-- daily backups): whoever inserts (key, slot) first runs it; everyone else sees the
-- conflict and does nothing.
CREATE TABLE schedule_slots (
    key        TEXT     NOT NULL,
    slot       TIMESTAMPTZ NOT NULL,
    claimed_by TEXT     NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key, slot)
);

-- A cron schedule of a saved workflow. next_at is the next slot not yet handled
-- (NULL: the expression never fires again); the scheduler reads the due ones.
CREATE TABLE workflow_schedules (
    owner_id        TEXT     NOT NULL,
    workflow        TEXT     NOT NULL,
    id              TEXT     NOT NULL,
    cron            TEXT     NOT NULL,
    time_zone       TEXT     NOT NULL,
    payload         JSONB    NOT NULL,
    enabled         BOOLEAN  NOT NULL,
    misfire_policy  TEXT     NOT NULL,
    misfire_grace_s INTEGER  NOT NULL,
    next_at         TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (owner_id, workflow, id),
    FOREIGN KEY (owner_id, workflow) REFERENCES workflows (owner_id, name) ON DELETE CASCADE
);
CREATE INDEX workflow_schedules_due ON workflow_schedules (next_at) WHERE enabled;

-- An inbound webhook of a saved workflow: POST /hooks/{id} signed with the secret,
-- which is kept only sealed (credentials.Key, bound to owner and trigger id).
CREATE TABLE workflow_triggers (
    id         TEXT     NOT NULL PRIMARY KEY,
    owner_id   TEXT     NOT NULL,
    workflow   TEXT     NOT NULL,
    sealed     BYTEA    NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    rolled_at  TIMESTAMPTZ NOT NULL,
    FOREIGN KEY (owner_id, workflow) REFERENCES workflows (owner_id, name) ON DELETE CASCADE
);
CREATE INDEX workflow_triggers_workflow ON workflow_triggers (owner_id, workflow);
