-- Delivery to storage (issue 30): a task's storage targets (`deliver`, `deliver_failure`,
-- `links`, as JSON), and on each execution the outcome of each upload and the checksums
-- (sha256, md5) of its files.
ALTER TABLE tasks ADD COLUMN delivery TEXT NULL;
ALTER TABLE executions ADD COLUMN deliveries TEXT NULL;
ALTER TABLE executions ADD COLUMN checksums TEXT NULL;
-- Export job files keep their checksums too (shown in the download center).
ALTER TABLE export_job_files ADD COLUMN sha256 CHAR(64) NULL;
ALTER TABLE export_job_files ADD COLUMN md5 CHAR(32) NULL;
