-- jobs_owner and jobs_created (0003) in ascending order, as on SQLite (its 0021 says why):
-- a B-tree page that takes the largest key splits to leave the left page full only when
-- the insert is at the right end; with DESC every new job's key was the leftmost, and the
-- pages split in half. PostgreSQL scans an index backward for ORDER BY created_at DESC,
-- id DESC.
DROP INDEX jobs_owner;
CREATE INDEX jobs_owner ON jobs (owner_id, created_at, id);
DROP INDEX jobs_created;
CREATE INDEX jobs_created ON jobs (created_at, id);
