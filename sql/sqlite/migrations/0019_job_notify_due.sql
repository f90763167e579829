-- PostgreSQL's 0019 narrows its LISTEN/NOTIFY trigger to inserts of due jobs. SQLite has no
-- such trigger (see 0004); the file keeps the two engines' migration numbers in step.
SELECT 1;
