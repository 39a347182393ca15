-- Batches: AI21's library create call may name a batch (`batch_id`), and its status
-- route counts the batch's files by status. The id is the client's, unique within a
-- workspace; a file belongs to at most one batch.
ALTER TABLE files
    ADD COLUMN batch_id text CHECK (batch_id IS NULL OR octet_length(batch_id) BETWEEN 1 AND 255);

CREATE INDEX files_batches ON files (workspace_id, batch_id) WHERE batch_id IS NOT NULL;
