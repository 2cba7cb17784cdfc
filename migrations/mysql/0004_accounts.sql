-- Console and API accounts, their logins and API tokens, and the audit log.
CREATE TABLE users (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(191) NOT NULL,
    role VARCHAR(16) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    UNIQUE KEY users_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A login (kind 'login', expires) or an API token (kind 'api'); only the SHA-256 of the token is kept.
CREATE TABLE sessions (
    token_hash CHAR(64) NOT NULL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    kind VARCHAR(8) NOT NULL,
    csrf CHAR(64) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NULL,
    KEY sessions_user (user_id),
    KEY sessions_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE audit (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at DATETIME(6) NOT NULL,
    actor VARCHAR(191) NOT NULL,
    via VARCHAR(8) NOT NULL,
    address VARCHAR(64) NULL,
    action VARCHAR(64) NOT NULL,
    object VARCHAR(255) NOT NULL,
    detail MEDIUMTEXT NULL,
    KEY audit_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The execution log filtered by status, newest first.
CREATE INDEX executions_status_started ON executions (status, started_at);
