-- PostgreSQL's 0004 adds a LISTEN/NOTIFY trigger for new jobs. SQLite runs in one process,
-- where intake wakes the worker directly, so there is nothing to do here; the file keeps the
-- two engines' migration numbers in step.
SELECT 1;
