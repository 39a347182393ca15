-- Per-workspace naming: a document library wants one live file per name and path; an
-- eval-file store takes the same name again as a new file. Each file carries the rule
-- of its workspace at reservation, so the unique index can stay one partial index.
ALTER TABLE workspaces ADD COLUMN unique_names boolean NOT NULL DEFAULT true;
ALTER TABLE files ADD COLUMN unique_name boolean NOT NULL DEFAULT true;

DROP INDEX files_live_name_path;
CREATE UNIQUE INDEX files_live_name_path ON files (workspace_id, path, name)
    WHERE status IN ('pending', 'ready') AND unique_name;
