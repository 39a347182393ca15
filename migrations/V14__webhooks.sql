-- Webhooks: endpoints per workspace, and a transactional outbox of their deliveries.
--
-- A file's transition and its events are one: the triggers below write one delivery
-- per subscribed endpoint in the statement that moves the file (the settling
-- statement, the reaper's expiry, a deletion), whichever path ran it, so an event
-- exists exactly when its transition committed. The delivery workers of every replica
-- claim due rows with SKIP LOCKED.

CREATE TABLE webhook_endpoints (
    id                    uuid        PRIMARY KEY,
    workspace_id          uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    url                   text        NOT NULL CHECK (octet_length(url) BETWEEN 1 AND 2048),
    event_types           text[]      NOT NULL
                                      CHECK (cardinality(event_types) > 0
                                             AND event_types <@ ARRAY['file.ready', 'file.rejected',
                                                                      'file.expired', 'file.deleted']),
    enabled               boolean     NOT NULL DEFAULT true,
    disabled_reason       text,
    -- `whsec_` and the base64 of the key: the secret must be at hand to sign with.
    secret                text        NOT NULL,
    -- The secret a rotation replaced, still signed with until `previous_secret_until`.
    previous_secret       text,
    previous_secret_until timestamptz,
    last_success_at       timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhook_endpoints_subscribed ON webhook_endpoints (workspace_id) WHERE enabled;

-- One number per transition, shared by its deliveries: a file's transitions happen
-- under its row lock, one after the other, so their numbers order them.
CREATE SEQUENCE webhook_event_seq;

CREATE TABLE webhook_deliveries (
    -- The `webhook-id` header: the same on every attempt.
    id               uuid        PRIMARY KEY,
    endpoint_id      uuid        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type       text        NOT NULL,
    seq              bigint      NOT NULL,
    -- No foreign key: a deletion's event outlives its file.
    file_id          uuid        NOT NULL,
    workspace_id     uuid        NOT NULL,
    -- The file's row as the transition left it; the payload is drawn from it.
    file             jsonb       NOT NULL,
    occurred_at      timestamptz NOT NULL DEFAULT now(),
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    -- When the next attempt is due; while an attempt runs, when its lease runs out.
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    -- Retries stop once this is past: set by the first attempt from the worker's
    -- horizon (`FILEGATE_WEBHOOK_RETRY_HORIZON_SECS`), reset by a redelivery.
    retry_until      timestamptz,
    last_attempt_at  timestamptz,
    last_status_code integer,
    last_error       text,
    settled_at       timestamptz
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_of_endpoint ON webhook_deliveries (endpoint_id, occurred_at DESC);
CREATE INDEX webhook_deliveries_settled ON webhook_deliveries (settled_at) WHERE status <> 'pending';

CREATE FUNCTION files_webhook_events() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    f       files;
    kind    text;
    targets uuid[];
BEGIN
    IF TG_OP = 'DELETE' THEN
        f := OLD;
        kind := 'file.deleted';
    ELSE
        f := NEW;
        kind := 'file.' || NEW.status;
    END IF;
    SELECT array_agg(id) INTO targets FROM webhook_endpoints
     WHERE workspace_id = f.workspace_id AND enabled AND kind = ANY (event_types);
    IF targets IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_deliveries (id, endpoint_id, event_type, seq, file_id, workspace_id, file)
    SELECT gen_random_uuid(), t, kind, s.seq, f.id, f.workspace_id,
           -- The upload URLs' signing key stays in its row alone.
           to_jsonb(f) - 'ingest_key'
      FROM unnest(targets) AS t, (SELECT nextval('webhook_event_seq') AS seq) AS s;
    RETURN NULL;
END
$$;

-- Out of pending (ready, rejected, expired): the WHEN clause keeps every other update
-- of a file (claims, renames, schedules) from calling the function at all.
CREATE TRIGGER files_webhook_transitions
    AFTER UPDATE OF status ON files
    FOR EACH ROW
    WHEN (OLD.status = 'pending' AND NEW.status IN ('ready', 'rejected', 'expired'))
    EXECUTE FUNCTION files_webhook_events();

-- A deletion of a file in the library (pending or ready); rejected and expired files
-- already had their event, and the reaper's purge of their rows is not one.
CREATE TRIGGER files_webhook_deletions
    AFTER DELETE ON files
    FOR EACH ROW
    WHEN (OLD.status IN ('pending', 'ready'))
    EXECUTE FUNCTION files_webhook_events();
