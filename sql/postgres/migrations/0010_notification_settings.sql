-- Which emails an owner's user opted into (PUT /api/v1/notifications). No row: none.
CREATE TABLE notification_settings (
    owner_id   TEXT        NOT NULL PRIMARY KEY,
    job_failed BOOLEAN     NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
