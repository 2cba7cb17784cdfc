-- reportd system store, SQLite. Timestamps are UTC, written by sqlx as RFC 3339 text.
CREATE TABLE data_sources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    data_source TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT,
    enabled BOOLEAN NOT NULL DEFAULT 1,
    sheets TEXT NOT NULL,
    output TEXT NOT NULL,
    notify TEXT NOT NULL,
    timeout_secs BIGINT,
    retries BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE executions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id BIGINT,
    task_name TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    attempt BIGINT NOT NULL DEFAULT 1,
    scheduled_at TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    rows_count BIGINT,
    bytes BIGINT,
    files TEXT,
    error TEXT,
    notifications TEXT,
    instance TEXT,
    heartbeat_at TEXT
);
CREATE INDEX executions_task_started ON executions (task_id, started_at);
CREATE INDEX executions_started ON executions (started_at);
CREATE INDEX executions_status ON executions (status);

CREATE TABLE fire_claims (
    task_id BIGINT NOT NULL,
    scheduled_at TEXT NOT NULL,
    instance TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    lease_until TEXT NOT NULL,
    execution_id BIGINT,
    PRIMARY KEY (task_id, scheduled_at)
);
