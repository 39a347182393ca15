-- filegate's foundation schema: tenants, keys and the file library.
-- Counters live on the workspace row so that a reservation is one guarded UPDATE;
-- the CHECK makes over-commitment impossible even for a buggy statement.

CREATE TABLE organizations (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workspaces (
    id                     uuid        PRIMARY KEY,
    organization_id        uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                   text        NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    quota_bytes            bigint      NOT NULL CHECK (quota_bytes >= 0),
    max_file_bytes         bigint      NOT NULL CHECK (max_file_bytes > 0),
    allowed_content_types  text[]      NOT NULL,
    used_bytes             bigint      NOT NULL DEFAULT 0 CHECK (used_bytes >= 0),
    reserved_bytes         bigint      NOT NULL DEFAULT 0 CHECK (reserved_bytes >= 0),
    created_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workspaces_within_quota CHECK (used_bytes + reserved_bytes <= quota_bytes)
);
CREATE INDEX workspaces_organization ON workspaces (organization_id);

CREATE TABLE api_keys (
    id                    uuid        PRIMARY KEY,
    organization_id       uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- NULL: every workspace of the organization; otherwise only these.
    workspace_scope       uuid[],
    default_workspace_id  uuid        REFERENCES workspaces (id) ON DELETE SET NULL,
    -- SHA-256 of the whole key; the secret itself is never stored.
    secret_sha256         bytea       NOT NULL CHECK (length(secret_sha256) = 32),
    created_at            timestamptz NOT NULL DEFAULT now(),
    revoked_at            timestamptz
);
CREATE INDEX api_keys_organization ON api_keys (organization_id);

CREATE TABLE files (
    id                 uuid        PRIMARY KEY,
    workspace_id       uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name               text        NOT NULL,
    path               text        NOT NULL DEFAULT '',
    local_file_path    text,
    labels             text[]      NOT NULL DEFAULT '{}',
    public_url         text,
    content_type       text        NOT NULL,
    -- Declared size while pending (NULL if undeclared), real size once ready.
    size_bytes         bigint      CHECK (size_bytes >= 0),
    -- What this file holds against the quota: reserved while pending, used once ready, 0 after.
    reserved_bytes     bigint      NOT NULL CHECK (reserved_bytes >= 0),
    checksum_sha256    text,
    status             text        NOT NULL DEFAULT 'pending'
                                   CHECK (status IN ('pending', 'ready', 'rejected', 'expired')),
    rejection_reason   text,
    object_key         text        NOT NULL,
    created_by         uuid        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    completed_at       timestamptz,
    upload_expires_at  timestamptz NOT NULL
);
-- Live files (pending or ready) are unique by name within a path. The name of this
-- index is how a unique violation becomes 422 duplicate_file.
CREATE UNIQUE INDEX files_live_name_path ON files (workspace_id, path, name)
    WHERE status IN ('pending', 'ready');
-- Newest-first keyset listing.
CREATE INDEX files_workspace_newest ON files (workspace_id, created_at DESC, id DESC);
-- The reaper's scan for abandoned uploads.
CREATE INDEX files_pending_expiry ON files (upload_expires_at) WHERE status = 'pending';
