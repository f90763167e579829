-- jobs_owner and jobs_created (0003) in ascending order, as on SQLite (its 0021 says why).
-- PostgreSQL, too, leaves the left page full only when it splits the rightmost leaf; with
-- DESC every new job's key went to the leftmost and its pages split in half: 100,000 rows
-- in increasing created_at took 1,483 pages of (owner_id, created_at DESC, id DESC) and
-- 833 of the same index ascending (docs/benchmarks.md). PostgreSQL scans an index backward
-- for ORDER BY created_at DESC, id DESC.
DROP INDEX jobs_owner;
CREATE INDEX jobs_owner ON jobs (owner_id, created_at, id);
DROP INDEX jobs_created;
CREATE INDEX jobs_created ON jobs (created_at, id);
