-- jobs_owner and jobs_created (0003) in ascending order. Both were declared DESC so that
-- the newest job came first, but a new job's key is always the largest, so with DESC it
-- went to the leftmost leaf of each index. SQLite splits a full page in half unless the
-- insert is at the right end of the tree, and nothing is ever inserted behind the new
-- left half again: both indexes stayed about half empty (51 % of their pages unused after
-- 40,000 intakes against 12 % ascending), which is twice the pages to split and to write
-- to the WAL. Ascending, every insert appends and fills its page. SQLite reads an
-- index backwards for ORDER BY created_at DESC, id DESC just as well (the plans of
-- ListJobs are the same), and ListReplayCandidates reads oldest first.
DROP INDEX jobs_owner;
CREATE INDEX jobs_owner ON jobs (owner_id, created_at, id);
DROP INDEX jobs_created;
CREATE INDEX jobs_created ON jobs (created_at, id);
