-- Objects to delete from the bucket: written in the same statement that rejects,
-- expires or deletes a file, and removed only once the store confirmed the deletion,
-- so an object-store outage can delay a deletion but never lose it.
CREATE TABLE object_deletions (
    object_key   text        PRIMARY KEY,
    -- When the next attempt is due (also a lease: claiming pushes it forward).
    due_at       timestamptz NOT NULL DEFAULT now(),
    -- Until then the file's presigned PUT URL still works, so the object can come back:
    -- a deletion before this time is repeated at this time.
    final_after  timestamptz NOT NULL DEFAULT now(),
    attempts     integer     NOT NULL DEFAULT 0
);
CREATE INDEX object_deletions_due ON object_deletions (due_at);
