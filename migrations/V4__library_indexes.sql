-- Indexes for the library's filters. Newest-first paging uses files_workspace_newest
-- (V1); an exact name look-up and a label filter get their own.
CREATE INDEX files_workspace_name ON files (workspace_id, name);
CREATE INDEX files_labels ON files USING gin (labels);
