-- Dry runs and replays (issue #19, docs/adr/0021-dry-run-and-replay.md).
--
-- dry_run (0/1, an integer like cancel_requested so both engines share one row type):
-- a rehearsed job (POST /api/v1/intake with dry_run), stored finished with example
-- outputs; it never enters the queue and is never replayed.
-- replay_of: the job a replay (POST /api/v1/jobs/{id}/replay) replays. Not a foreign
-- key: retention may delete the original first, and the replay keeps its id.
ALTER TABLE jobs ADD COLUMN dry_run INTEGER NOT NULL DEFAULT 0 CHECK (dry_run IN (0, 1));
ALTER TABLE jobs ADD COLUMN replay_of TEXT;

-- The bulk replay skips jobs that have a replay: this finds one without a scan.
CREATE INDEX jobs_replay_of ON jobs (replay_of) WHERE replay_of IS NOT NULL;
