-- Split reads (issue 28): what a split read did (ranges, readers, rows per reader), as JSON.
ALTER TABLE executions ADD COLUMN split TEXT;
