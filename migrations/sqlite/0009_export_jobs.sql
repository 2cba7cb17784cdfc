-- Export jobs (the download center, DESIGN.md "Export jobs"): one row per job, queued in a
-- lane, claimed by one daemon instance (compare-and-set on status), its files downloaded
-- (counted) until expires_at. `spec` is the JobSpec as JSON; `callback` the WebhookNotify as
-- JSON with its url and secret sealed (enc:v1:).
CREATE TABLE export_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    status VARCHAR(16) NOT NULL,
    lane VARCHAR(8) NOT NULL,
    estimate BIGINT,
    spec TEXT NOT NULL,
    callback TEXT,
    created_by VARCHAR(191) NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    expires_at TEXT,
    rows_count BIGINT,
    bytes BIGINT,
    error TEXT,
    execution_id BIGINT,
    instance VARCHAR(191),
    heartbeat_at TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    cancel_requested_by VARCHAR(191)
);
CREATE INDEX export_jobs_queue ON export_jobs (status, lane, id);
CREATE INDEX export_jobs_owner ON export_jobs (created_by, status);
CREATE INDEX export_jobs_expiry ON export_jobs (status, expires_at);

-- The files of a done job. A file is found by its path through path_hash (lowercase hex
-- SHA-256 of path): MySQL cannot index a TEXT path whole, and one way on every backend.
CREATE TABLE export_job_files (
    job_id BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    path_hash CHAR(64) NOT NULL,
    bytes BIGINT NOT NULL,
    downloads BIGINT NOT NULL DEFAULT 0,
    last_download_at TEXT,
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX export_job_files_path ON export_job_files (path_hash);
