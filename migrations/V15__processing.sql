-- Processing after `ready`: derived files (a video's frames today) made by a
-- processor for the file's type, from a job queue every replica claims with SKIP LOCKED.
--
-- The job is written by the statement that makes the file ready (a trigger, whichever
-- path settled it), so no ready file of a processed type is ever without its job. The
-- file stays ready throughout: processing never un-verifies bytes; `processing` tells
-- where its derived files are (NULL: its type has no processor).

-- The processor of each type, as the replicas that run one registered it at start.
CREATE TABLE processors (
    content_type  text        PRIMARY KEY,
    processor     text        NOT NULL CHECK (processor ~ '^[a-z][a-z0-9_-]{0,31}$'),
    registered_at timestamptz NOT NULL DEFAULT now()
);

-- Nullable columns without defaults: added without rewriting or scanning `files`. The
-- check is NOT VALID so that adding it does not scan the table under the ALTER's lock
-- either: every existing row holds NULL, and new and updated rows are checked.
ALTER TABLE files
    ADD COLUMN processing       text,
    ADD COLUMN processing_error text,
    -- What the processor learnt of the file (a video's duration, fps, size, codec).
    ADD COLUMN media_metadata   jsonb;
ALTER TABLE files ADD CONSTRAINT files_processing_state
    CHECK (processing IN ('processing', 'completed', 'failed')) NOT VALID;

CREATE TABLE processing_jobs (
    file_id     uuid        PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
    processor   text        NOT NULL,
    -- The verified version the job reads; another version is not this job's input.
    etag        text,
    state       text        NOT NULL DEFAULT 'queued'
                            CHECK (state IN ('queued', 'running', 'done', 'dead')),
    -- Runs started so far (each claim is one).
    attempts    integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    run_after   timestamptz NOT NULL DEFAULT now(),
    -- The running attempt's token and how long its claim holds without a heartbeat.
    run_token   uuid,
    -- The replica that claimed it last (`host/pid`), for operators.
    worker      text,
    lease_until timestamptz,
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CONSTRAINT processing_jobs_running CHECK ((state = 'running') = (run_token IS NOT NULL AND lease_until IS NOT NULL))
);

-- What a worker claims: queued jobs that are due, and running ones whose lease lapsed.
CREATE INDEX processing_jobs_due ON processing_jobs (processor, run_after) WHERE state = 'queued';
CREATE INDEX processing_jobs_leased ON processing_jobs (lease_until) WHERE state = 'running';

-- A file's derived objects, owned by its row: deleted with it, counted in its
-- `reserved_bytes` (so in the workspace's `used_bytes`), listed by reconciliation.
CREATE TABLE derived_objects (
    object_key   text        PRIMARY KEY,
    file_id      uuid        NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    kind         text        NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_-]{0,31}$'),
    seq          integer     NOT NULL CHECK (seq >= 1),
    content_type text        NOT NULL,
    size_bytes   bigint      NOT NULL CHECK (size_bytes >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (file_id, kind, seq)
);

CREATE FUNCTION files_processing_queue() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    p text;
BEGIN
    SELECT processor INTO p FROM processors WHERE content_type = NEW.content_type;
    IF p IS NOT NULL THEN
        NEW.processing := 'processing';
        NEW.processing_error := NULL;
        INSERT INTO processing_jobs (file_id, processor, etag)
        VALUES (NEW.id, p, NEW.etag)
        ON CONFLICT (file_id) DO NOTHING;
    END IF;
    RETURN NEW;
END
$$;

-- Into ready: the WHEN clause keeps every other update of a file from calling it.
CREATE TRIGGER files_processing
    BEFORE UPDATE OF status ON files
    FOR EACH ROW
    WHEN (OLD.status = 'pending' AND NEW.status = 'ready')
    EXECUTE FUNCTION files_processing_queue();

-- A derived object goes when its row goes (with its file, by the cascade, which sees
-- rows a concurrent job committed): its deletion is queued as the row is deleted.
CREATE FUNCTION derived_objects_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO object_deletions (object_key) VALUES (OLD.object_key)
    ON CONFLICT (object_key) DO UPDATE SET due_at = now();
    RETURN NULL;
END
$$;

CREATE TRIGGER derived_objects_deletions
    AFTER DELETE ON derived_objects
    FOR EACH ROW
    EXECUTE FUNCTION derived_objects_deleted();
