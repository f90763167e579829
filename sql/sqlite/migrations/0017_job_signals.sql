-- Durable waits and signals (issue #22): a job parked by core.wait or
-- core.wait_for_signal has status 'waiting' and is due again at run_at, its wake
-- time, so the due-jobs index covers it.
DROP INDEX jobs_due;
CREATE INDEX jobs_due ON jobs (priority DESC, run_at, id) WHERE status IN ('queued', 'scheduled', 'retrying', 'waiting');

-- A job's signals (POST /api/v1/jobs/{id}/signals/{name}): the key holds each once,
-- so a second delivery of a name finds the first and changes nothing. data is JSON.
CREATE TABLE job_signals (
    job_id     TEXT     NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    name       TEXT     NOT NULL,
    data       TEXT     NOT NULL,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (job_id, name)
);
