-- Identity is by id (issue 24): an export job belongs to the account id that asked for it
-- (a removed and re-created account of the same name is someone else); jobs queued before
-- this version take the id of the account of their name, if it still exists. And user names
-- are compared by a key (NFKC, lower case; filled by the daemon for older rows), unique.
ALTER TABLE export_jobs ADD COLUMN created_by_id BIGINT NULL, ADD KEY export_jobs_owner_id (created_by_id, status);
UPDATE export_jobs SET created_by_id = (SELECT u.id FROM users u WHERE u.name = export_jobs.created_by);
ALTER TABLE users ADD COLUMN name_key VARCHAR(191) NULL, ADD UNIQUE KEY users_name_fold (name_key);
