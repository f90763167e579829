-- SQLite's 0020 respells two partial indexes' conditions for speed; PostgreSQL tests an
-- IN list without building a table, and proves the shared queries' OR conditions imply
-- its IN conditions, so it keeps its indexes. The file keeps the two engines' migration
-- numbers in step.
SELECT 1;
