//! API keys. Only the SHA-256 of a key is stored.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use uuid::Uuid;

use crate::DbError;

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
pub async fn create(pool: &Pool, key: &NewKey) -> Result<(), DbError> {
    let client = pool.get().await?;
    client
        .execute(
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
pub async fn find(pool: &Pool, id: Uuid) -> Result<Option<ApiKey>, DbError> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT k.id, k.organization_id, k.workspace_scope, k.default_workspace_id, k.secret_sha256, \
                    k.created_at, k.revoked_at, w.rate_limit_per_second, w.rate_limit_burst \
             FROM api_keys k LEFT JOIN workspaces w ON w.id = k.default_workspace_id WHERE k.id = $1",
        )
        .await?;
    Ok(client.query_opt(&stmt, &[&id]).await?.map(|row| ApiKey {
        id: row.get(0),
        organization_id: row.get(1),
        workspace_scope: row.get(2),
        default_workspace_id: row.get(3),
        secret_sha256: row.get(4),
        created_at: row.get(5),
        revoked_at: row.get(6),
        rate_limit: row
            .get::<_, Option<f64>>(7)
            .zip(row.get::<_, Option<i32>>(8)),
    }))
}

/// Revokes a key. Returns `false` when no such key exists; revoking twice keeps the
/// first revocation time.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn revoke(pool: &Pool, id: Uuid) -> Result<bool, DbError> {
    let client = pool.get().await?;
    let n = client
        .execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(n == 1)
}
