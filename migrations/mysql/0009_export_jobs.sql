-- Export jobs (the download center, DESIGN.md "Export jobs"): one row per job, queued in a
-- lane, claimed by one daemon instance (compare-and-set on status), its files downloaded
-- (counted) until expires_at. `spec` is the JobSpec as JSON; `callback` the WebhookNotify as
-- JSON with its url and secret sealed (enc:v1:).
CREATE TABLE export_jobs (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    status VARCHAR(16) NOT NULL,
    lane VARCHAR(8) NOT NULL,
    estimate BIGINT NULL,
    spec MEDIUMTEXT NOT NULL,
    callback TEXT NULL,
    created_by VARCHAR(191) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    started_at DATETIME(6) NULL,
    finished_at DATETIME(6) NULL,
    expires_at DATETIME(6) NULL,
    rows_count BIGINT NULL,
    bytes BIGINT NULL,
    error MEDIUMTEXT NULL,
    execution_id BIGINT NULL,
    instance VARCHAR(191) NULL,
    heartbeat_at DATETIME(6) NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    cancel_requested_by VARCHAR(191) NULL,
    KEY export_jobs_queue (status, lane, id),
    KEY export_jobs_owner (created_by, status),
    KEY export_jobs_expiry (status, expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The files of a done job. A file is found by its path through path_hash (lowercase hex
-- SHA-256 of path): a TEXT path cannot be indexed whole (utf8mb4 key length limits).
CREATE TABLE export_job_files (
    job_id BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    path_hash CHAR(64) NOT NULL,
    bytes BIGINT NOT NULL,
    downloads BIGINT NOT NULL DEFAULT 0,
    last_download_at DATETIME(6) NULL,
    PRIMARY KEY (job_id, idx),
    KEY export_job_files_path (path_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
