-- Idempotency-Key: a successful POST /v2/files response, replayed for 24 hours to the
-- same API key sending the same key and body. Written in the reservation statement
-- itself, so a response is stored exactly when its reservation happened.
CREATE TABLE idempotency_keys (
    api_key_id      uuid        NOT NULL,
    key             text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_sha256  bytea       NOT NULL,
    response        jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
