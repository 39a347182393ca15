-- Per-workspace rate-limit overrides (NULL: the service's settings), and the token
-- buckets of the `postgres` rate-limit store, shared by every replica.
ALTER TABLE workspaces
    ADD COLUMN rate_limit_per_second double precision CHECK (rate_limit_per_second > 0),
    ADD COLUMN rate_limit_burst integer CHECK (rate_limit_burst > 0),
    ADD CONSTRAINT workspaces_rate_limit_pair
        CHECK ((rate_limit_per_second IS NULL) = (rate_limit_burst IS NULL));

CREATE UNLOGGED TABLE rate_limit_buckets (
    key          text             PRIMARY KEY,
    tokens       double precision NOT NULL,
    updated_at   timestamptz      NOT NULL,
    -- When the bucket will be full again; a full bucket is the same as no bucket.
    full_at      timestamptz      NOT NULL,
    last_allowed boolean          NOT NULL
);
CREATE INDEX rate_limit_buckets_full_at ON rate_limit_buckets (full_at);
