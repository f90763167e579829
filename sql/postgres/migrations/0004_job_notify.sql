-- Wakes idle workers of every instance when jobs are inserted (LISTEN levqor_jobs);
-- polling remains the fallback. One notification per statement, sent at commit.
CREATE FUNCTION levqor_notify_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('levqor_jobs', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER jobs_notify AFTER INSERT ON jobs FOR EACH STATEMENT EXECUTE FUNCTION levqor_notify_jobs();
