-- Console and API accounts, their logins and API tokens, and the audit log.
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- A login (kind 'login', expires) or an API token (kind 'api'); only the SHA-256 of the token is kept.
CREATE TABLE sessions (
    token_hash TEXT NOT NULL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    via TEXT NOT NULL,
    address TEXT,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_at ON audit (at);

-- The execution log filtered by status, newest first.
CREATE INDEX executions_status_started ON executions (status, started_at);
