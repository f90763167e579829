-- rescues counts how often a job was returned to the queue because the worker running
-- it stopped (expired lease); at jobs.MaxRescues the job fails "crashed" instead, so a
-- job that kills its worker cannot kill the next one.
-- input_bytes (payload and guardrails, fixed at intake) and steps_bytes (steps and
-- result as last written) are the sizes of a job's JSON columns, so that a page of
-- GET /api/v1/jobs can stop at a byte budget without reading those columns.
ALTER TABLE jobs
    ADD COLUMN rescues     INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN input_bytes BIGINT  NOT NULL DEFAULT 0,
    ADD COLUMN steps_bytes BIGINT  NOT NULL DEFAULT 0;
UPDATE jobs SET input_bytes = octet_length(payload::text) + octet_length(guardrails::text),
                steps_bytes = octet_length(steps::text) + COALESCE(octet_length(result::text), 0);
