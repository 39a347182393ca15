-- Files whose size was not declared cannot have their length signed into a presigned
-- PUT, so the store would take any length. Their upload URL is filegate's own: a PUT
-- that streams through filegate into the upload key and is cut off at the file's
-- reservation. ingest_key signs those URLs (a random key per file, so deleting the
-- row revokes every URL signed with it); ingest_claim and ingest_until lease the one
-- upload that may stream through a replica at a time, so what a file's uploads hold
-- in the store never passes its reservation.
ALTER TABLE files
    ADD COLUMN ingest_key   bytea CHECK (ingest_key IS NULL OR octet_length(ingest_key) = 32),
    ADD COLUMN ingest_claim uuid,
    ADD COLUMN ingest_until timestamptz;
