-- Ready bytes never change, completion without a callback, and reconciliation.
--
-- A client PUTs to a file's upload key; completion verifies that object and copies the
-- verified version (ETag-pinned) to the file's object key, which is what downloads
-- serve and what no presigned URL can write. Files reserved before this migration
-- uploaded to their object key itself: their upload key is the object key, and their
-- completion needs no copy.
ALTER TABLE files ADD COLUMN upload_key text;
UPDATE files SET upload_key = object_key;
ALTER TABLE files ALTER COLUMN upload_key SET NOT NULL;

-- The ETag of the object version that was verified (ready files).
ALTER TABLE files ADD COLUMN etag text;

-- One completion at a time per file: whoever holds an unexpired claim verifies,
-- copies and makes the transition; the others wait for its outcome or skip the file.
ALTER TABLE files
    ADD COLUMN completion_claim uuid,
    ADD COLUMN completion_claim_until timestamptz;

-- The finalizer's schedule: when filegate next looks for a pending file's object
-- without being asked (NULL: no more looks).
ALTER TABLE files ADD COLUMN next_check_at timestamptz;
UPDATE files SET next_check_at = now() WHERE status = 'pending';
CREATE INDEX files_pending_next_check ON files (next_check_at) WHERE status = 'pending';

-- Reconciliation walks ready files in the order the bucket lists their keys
-- ({workspace}/{file}: the order of (workspace_id, id)) to find objects that went
-- missing. Keys name their file, so every other look-up by key is one by id; only
-- ready files are indexed here, so reservations do not pay for it.
CREATE INDEX files_ready_by_key ON files (workspace_id, id) WHERE status = 'ready';
