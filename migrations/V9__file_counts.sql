-- Limits on rows, not only on bytes: a workspace may hold at most max_files live
-- (pending or ready) files, of which at most max_pending_files pending. An empty file
-- reserves no bytes, and a never-uploaded reservation costs the finalizer and reaper
-- work however small it is; the counts bound both. The counters move in the same
-- statements as the quota counters (reserve, settle, expire, delete).
ALTER TABLE workspaces
    ADD COLUMN max_files         bigint NOT NULL DEFAULT 100000 CHECK (max_files >= 0),
    ADD COLUMN max_pending_files bigint NOT NULL DEFAULT 10000 CHECK (max_pending_files >= 0),
    ADD COLUMN live_files        bigint NOT NULL DEFAULT 0,
    ADD COLUMN pending_files     bigint NOT NULL DEFAULT 0;

UPDATE workspaces w
   SET live_files = c.live, pending_files = c.pending
  FROM (SELECT workspace_id,
               count(*) FILTER (WHERE status IN ('pending', 'ready')) AS live,
               count(*) FILTER (WHERE status = 'pending') AS pending
          FROM files GROUP BY workspace_id) c
 WHERE c.workspace_id = w.id;

ALTER TABLE workspaces ADD CONSTRAINT workspaces_file_counts
    CHECK (pending_files >= 0 AND live_files >= pending_files);

-- The reaper deletes rejected and expired rows after a retention, oldest first.
CREATE INDEX files_settled ON files (updated_at) WHERE status IN ('expired', 'rejected');
