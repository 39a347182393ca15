//! API keys. Only the SHA-256 of a key is stored.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::DbError;
use crate::query::{self, FromRow, col};

/// An API key row.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: Uuid,
    pub organization_id: Uuid,
    /// `None`: every workspace of the organization.
    pub workspace_scope: Option<Vec<Uuid>>,
    pub default_workspace_id: Option<Uuid>,
    pub secret_sha256: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The rate-limit override (per second, burst) of the key's default workspace.
    pub rate_limit: Option<(f64, i32)>,
    /// Whether another workspace of the organization has a rate-limit override (when
    /// none has, a request's workspace never changes what it is charged).
    pub overrides_elsewhere: bool,
}

/// What a new key is allowed to reach.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub workspace_scope: Option<Vec<Uuid>>,
    pub default_workspace_id: Option<Uuid>,
    pub secret_sha256: [u8; 32],
}

/// Stores a key.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn create(pool: &Pool, key: &NewKey) -> Result<(), DbError> {
    query::execute(
        pool,
        "INSERT INTO api_keys (id, organization_id, workspace_scope, default_workspace_id, secret_sha256) \
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &key.id,
            &key.organization_id,
            &key.workspace_scope,
            &key.default_workspace_id,
            &key.secret_sha256.as_slice(),
        ],
    )
    .await?;
    Ok(())
}

/// A key by id, revoked or not.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn find(pool: &Pool, id: Uuid) -> Result<Option<ApiKey>, DbError> {
    let row = query::query_opt(
        pool,
        "SELECT k.id, k.organization_id, k.workspace_scope, k.default_workspace_id, k.secret_sha256, \
                k.created_at, k.revoked_at, w.rate_limit_per_second, w.rate_limit_burst, \
                EXISTS (SELECT 1 FROM workspaces o WHERE o.organization_id = k.organization_id \
                          AND o.rate_limit_per_second IS NOT NULL \
                          AND o.id IS DISTINCT FROM k.default_workspace_id) AS overrides_elsewhere \
         FROM api_keys k LEFT JOIN workspaces w ON w.id = k.default_workspace_id WHERE k.id = $1",
        &[&id],
    )
    .await?;
    query::one(row.as_ref())
}

impl FromRow for ApiKey {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        let rate: Option<f64> = col(row, "rate_limit_per_second")?;
        let burst: Option<i32> = col(row, "rate_limit_burst")?;
        Ok(Self {
            id: col(row, "id")?,
            organization_id: col(row, "organization_id")?,
            workspace_scope: col(row, "workspace_scope")?,
            default_workspace_id: col(row, "default_workspace_id")?,
            secret_sha256: col(row, "secret_sha256")?,
            created_at: col(row, "created_at")?,
            revoked_at: col(row, "revoked_at")?,
            rate_limit: rate.zip(burst),
            overrides_elsewhere: col(row, "overrides_elsewhere")?,
        })
    }
}

/// Revokes a key. Returns `false` when no such key exists; revoking twice keeps the
/// first revocation time.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn revoke(pool: &Pool, id: Uuid) -> Result<bool, DbError> {
    let n = query::execute(
        pool,
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1",
        &[&id],
    )
    .await?;
    Ok(n == 1)
}
