-- reportd system store, MySQL / MariaDB. Timestamps are UTC in DATETIME(6).
CREATE TABLE data_sources (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(191) NOT NULL,
    kind VARCHAR(32) NOT NULL,
    spec TEXT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    UNIQUE KEY data_sources_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE tasks (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(191) NOT NULL,
    description TEXT NULL,
    data_source VARCHAR(191) NOT NULL,
    cron VARCHAR(255) NOT NULL,
    timezone VARCHAR(64) NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    sheets MEDIUMTEXT NOT NULL,
    output TEXT NOT NULL,
    notify MEDIUMTEXT NOT NULL,
    timeout_secs BIGINT NULL,
    retries BIGINT NOT NULL DEFAULT 0,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    UNIQUE KEY tasks_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE executions (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    task_id BIGINT NULL,
    task_name VARCHAR(191) NOT NULL,
    trigger_kind VARCHAR(16) NOT NULL,
    attempt BIGINT NOT NULL DEFAULT 1,
    scheduled_at DATETIME(6) NULL,
    started_at DATETIME(6) NOT NULL,
    finished_at DATETIME(6) NULL,
    status VARCHAR(16) NOT NULL,
    rows_count BIGINT NULL,
    bytes BIGINT NULL,
    files MEDIUMTEXT NULL,
    error MEDIUMTEXT NULL,
    notifications MEDIUMTEXT NULL,
    instance VARCHAR(191) NULL,
    heartbeat_at DATETIME(6) NULL,
    KEY executions_task_started (task_id, started_at),
    KEY executions_started (started_at),
    KEY executions_status (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE fire_claims (
    task_id BIGINT NOT NULL,
    scheduled_at DATETIME(6) NOT NULL,
    instance VARCHAR(191) NOT NULL,
    claimed_at DATETIME(6) NOT NULL,
    lease_until DATETIME(6) NOT NULL,
    execution_id BIGINT NULL,
    PRIMARY KEY (task_id, scheduled_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
