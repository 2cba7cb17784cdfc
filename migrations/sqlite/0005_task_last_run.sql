-- A task's latest execution (GET /api/tasks: last_run; the log of one task, newest first) is
-- read from the end of this index: (task_id, started_at, id) orders ties of started_at too.
CREATE INDEX executions_task_started_id ON executions (task_id, started_at, id);
DROP INDEX executions_task_started;
