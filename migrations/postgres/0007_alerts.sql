-- A task's alert (alert.condition, sql, repeat) as JSON, and the state each execution
-- recorded for it: ok | triggered | error (null without an alert), and whether the alert's
-- message (trigger or recovery) reached someone: what `on_change` compares with.
ALTER TABLE tasks ADD COLUMN alert TEXT;
ALTER TABLE executions ADD COLUMN alert VARCHAR(16);
ALTER TABLE executions ADD COLUMN alert_notified BOOLEAN NOT NULL DEFAULT FALSE;
