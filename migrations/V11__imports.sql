-- Imports: an entry of POST /v2/files with remote_uri is fetched by filegate and
-- streamed into its upload key through the same ingest as every upload through
-- filegate. The file stays pending (processing) until the import ends. Any replica's
-- import worker claims due imports (ingest_until is their lease), so an import whose
-- replica died is taken up again, at most import attempts times.
ALTER TABLE files
    ADD COLUMN remote_uri      text CHECK (remote_uri IS NULL OR octet_length(remote_uri) <= 2048),
    ADD COLUMN import_attempts int NOT NULL DEFAULT 0;

CREATE INDEX files_imports ON files (created_at) WHERE remote_uri IS NOT NULL AND status = 'pending';
