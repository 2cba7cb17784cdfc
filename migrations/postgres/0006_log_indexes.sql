-- The execution log is listed newest first (started_at DESC, id DESC), whole or by status,
-- and paged at any offset (GET /api/logs). PostgreSQL indexes do not carry the primary key
-- the way InnoDB and SQLite (rowid) indexes do: with `id` as the last column, the order comes
-- from the index and the skipped rows are read by an index-only scan. (The per-task index
-- got its `id` in 0005.) MySQL/MariaDB and SQLite need no change.
CREATE INDEX executions_started_id ON executions (started_at, id);
CREATE INDEX executions_status_started_id ON executions (status, started_at, id);
DROP INDEX executions_started;
DROP INDEX executions_status_started;
