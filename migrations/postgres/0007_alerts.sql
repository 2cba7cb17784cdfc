-- A task's alert (alert.condition, sql, repeat) as JSON, and the state each execution
-- recorded for it: ok | triggered | error (null without an alert).
ALTER TABLE tasks ADD COLUMN alert TEXT;
ALTER TABLE executions ADD COLUMN alert VARCHAR(16);
