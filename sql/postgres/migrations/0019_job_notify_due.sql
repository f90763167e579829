-- Wake workers of every instance (LISTEN levqor_jobs) only when an insert adds jobs that are
-- due now (status queued). A job handed over to a free worker at intake (ADR 0023) is stored
-- running and needs nobody, and a scheduled one is found by polling when it is due; before,
-- every insert woke every listener, the inserting instance's own worker included, which then
-- also stopped handing over until its next claim.
DROP TRIGGER jobs_notify ON jobs;
CREATE OR REPLACE FUNCTION levqor_notify_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows WHERE status = 'queued') THEN
        PERFORM pg_notify('levqor_jobs', '');
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER jobs_notify AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION levqor_notify_jobs();
