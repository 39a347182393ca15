-- Large files: multipart uploads with a checksum on every part.
--
-- A multipart file's upload goes straight to its object key: only filegate can
-- assemble it (CompleteMultipartUpload), and once it has, no URL it signed can write
-- the key again, so there is nothing to stage and copy (its upload_key is its
-- object_key). The plan (part size and count) is fixed at reservation.
ALTER TABLE files
    ADD COLUMN multipart_upload_id text,
    ADD COLUMN part_size_bytes bigint CHECK (part_size_bytes > 0),
    ADD COLUMN part_count integer CHECK (part_count BETWEEN 1 AND 10000),
    ADD CONSTRAINT files_multipart_plan CHECK (
        (multipart_upload_id IS NULL) = (part_size_bytes IS NULL)
        AND (multipart_upload_id IS NULL) = (part_count IS NULL));

-- Each part's SHA-256 as filegate signed it into the part's URL: what completion holds
-- the store's parts to. Re-signing a part replaces its digest.
CREATE TABLE file_parts (
    file_id          uuid    NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    part_number      integer NOT NULL CHECK (part_number BETWEEN 1 AND 10000),
    checksum_sha256  text    NOT NULL,
    PRIMARY KEY (file_id, part_number)
);

-- A queued deletion of a multipart file's key also aborts its upload (which frees the
-- parts the store holds; an aborted or completed upload is no longer there to abort).
ALTER TABLE object_deletions ADD COLUMN multipart_upload_id text;

-- Sweeps of uploads in progress ask which ones a pending file owns.
CREATE INDEX files_pending_multipart ON files (multipart_upload_id)
    WHERE multipart_upload_id IS NOT NULL AND status = 'pending';
