-- Which emails an owner's user opted into (PUT /api/v1/notifications). No row: none.
CREATE TABLE notification_settings (
    owner_id   TEXT     NOT NULL PRIMARY KEY,
    job_failed BOOLEAN  NOT NULL CHECK (job_failed IN (0, 1)),
    updated_at DATETIME NOT NULL
) WITHOUT ROWID;
