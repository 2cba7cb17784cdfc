-- Who asked for a running execution to be cancelled (`reportd cancel`, POST
-- /api/logs/{id}/cancel): the instance running it polls this and stops the query.
ALTER TABLE executions ADD COLUMN cancel_requested_by VARCHAR(191) NULL;
