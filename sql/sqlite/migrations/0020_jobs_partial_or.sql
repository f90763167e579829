-- jobs_due and jobs_finished (0003, 0013, 0016) with their statuses as comparisons
-- joined by OR instead of an IN list. SQLite tests an IN list of more than two
-- constants against a temporary table that it builds anew on every run of a statement,
-- and every insert and update of a job tests both indexes' conditions, for the old row
-- and the new: four such tables for each completion, two for each insert, about a
-- tenth of a job's store cost (docs/benchmarks.md). Queries that use these indexes
-- spell the statuses the same way (sql/shared/queries/jobs.sql), since SQLite matches a
-- query's condition to a partial index's by its form.
DROP INDEX jobs_due;
CREATE INDEX jobs_due ON jobs (priority DESC, run_at, id)
    WHERE status = 'queued' OR status = 'scheduled' OR status = 'retrying' OR status = 'waiting';
DROP INDEX jobs_finished;
CREATE INDEX jobs_finished ON jobs (finished_at)
    WHERE status = 'succeeded' OR status = 'failed' OR status = 'canceled';
