-- Rows per sheet of an execution (issue 26), as JSON: [{"name": "订单明细", "rows": 888}, …];
-- null for runs recorded before this version and for runs that wrote nothing.
ALTER TABLE executions ADD COLUMN sheet_rows TEXT;
