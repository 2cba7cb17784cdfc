-- Identity is by id (issue 24): an export job belongs to the account id that asked for it
-- (a removed and re-created account of the same name is someone else); jobs queued before
-- this version take the id of the account of their name, if it still exists. And user names
-- are compared by a key (NFKC, lower case; filled by the daemon for older rows), unique.
ALTER TABLE export_jobs ADD COLUMN created_by_id BIGINT;
UPDATE export_jobs SET created_by_id = (SELECT u.id FROM users u WHERE u.name = export_jobs.created_by);
CREATE INDEX export_jobs_owner_id ON export_jobs (created_by_id, status);
ALTER TABLE users ADD COLUMN name_key TEXT;
CREATE UNIQUE INDEX users_name_fold ON users (name_key);
