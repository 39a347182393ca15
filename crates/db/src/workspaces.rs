//! Workspaces: their limits and their quota counters.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use filegate_domain::{ContentType, Limits};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::DbError;

/// A workspace row.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub limits: Limits,
    pub used_bytes: i64,
    pub reserved_bytes: i64,
    pub created_at: DateTime<Utc>,
}

/// A workspace's usage, as `GET /v2/workspaces/{id}/usage` reports it.
#[derive(Debug, Clone)]
pub struct Usage {
    pub workspace: Workspace,
    /// Files holding quota: pending or ready.
    pub file_count: i64,
}

const COLUMNS: &str = "id, organization_id, name, quota_bytes, max_file_bytes, allowed_content_types, \
                       used_bytes, reserved_bytes, created_at, unique_names";

fn from_row(row: &Row) -> Workspace {
    let types: Vec<String> = row.get(5);
    Workspace {
        id: row.get(0),
        organization_id: row.get(1),
        name: row.get(2),
        limits: Limits {
            quota_bytes: row.get(3),
            max_file_bytes: row.get(4),
            // Only canonical names are ever written; anything else is skipped, not trusted.
            allowed_types: types
                .iter()
                .filter_map(|t| ContentType::parse(t).ok())
                .collect(),
            unique_names: row.get(9),
        },
        used_bytes: row.get(6),
        reserved_bytes: row.get(7),
        created_at: row.get(8),
    }
}

/// Creates a workspace in an organization.
///
/// # Errors
/// [`DbError`] on database failure (including an unknown organization).
pub async fn create(
    pool: &Pool,
    organization_id: Uuid,
    name: &str,
    limits: &Limits,
) -> Result<Workspace, DbError> {
    let client = pool.get().await?;
    let types: Vec<&str> = limits.allowed_types.iter().map(|t| t.mime()).collect();
    let row = client
        .query_one(
            &format!(
                "INSERT INTO workspaces (id, organization_id, name, quota_bytes, max_file_bytes, allowed_content_types, \
                                         unique_names) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
            ),
            &[&Uuid::now_v7(), &organization_id, &name, &limits.quota_bytes, &limits.max_file_bytes, &types,
              &limits.unique_names],
        )
        .await?;
    Ok(from_row(&row))
}

/// One workspace, if it exists.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn get(pool: &Pool, id: Uuid) -> Result<Option<Workspace>, DbError> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!("SELECT {COLUMNS} FROM workspaces WHERE id = $1"))
        .await?;
    Ok(client
        .query_opt(&stmt, &[&id])
        .await?
        .as_ref()
        .map(from_row))
}

/// A workspace's counters and live file count, read in one statement so they agree.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn usage(pool: &Pool, id: Uuid) -> Result<Option<Usage>, DbError> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {COLUMNS}, (SELECT count(*) FROM files f \
                                WHERE f.workspace_id = w.id AND f.status IN ('pending', 'ready')) \
             FROM workspaces w WHERE id = $1"
        ))
        .await?;
    Ok(client.query_opt(&stmt, &[&id]).await?.map(|row| Usage {
        workspace: from_row(&row),
        file_count: row.get(10),
    }))
}

/// What `admin set-workspace` changes; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct LimitsPatch {
    pub quota_bytes: Option<i64>,
    pub max_file_bytes: Option<i64>,
    pub allowed_types: Option<Vec<ContentType>>,
    pub unique_names: Option<bool>,
}

/// Changes a workspace's limits. `Ok(None)` when there is no such workspace. A quota
/// below what the workspace already holds is refused by the schema's CHECK.
///
/// # Errors
/// [`DbError`] on database failure (including a quota below the bytes held).
pub async fn set_limits(
    pool: &Pool,
    id: Uuid,
    patch: &LimitsPatch,
) -> Result<Option<Workspace>, DbError> {
    let client = pool.get().await?;
    let types: Option<Vec<&str>> = patch
        .allowed_types
        .as_ref()
        .map(|t| t.iter().map(|t| t.mime()).collect());
    let row = client
        .query_opt(
            &format!(
                "UPDATE workspaces SET quota_bytes = coalesce($2, quota_bytes),
                        max_file_bytes = coalesce($3, max_file_bytes),
                        allowed_content_types = coalesce($4, allowed_content_types),
                        unique_names = coalesce($5, unique_names)
                  WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &patch.quota_bytes,
                &patch.max_file_bytes,
                &types,
                &patch.unique_names,
            ],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// Sets (or, with `None`, clears) a workspace's rate-limit override. Returns `false`
/// when the workspace does not exist.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn set_rate_limit(
    pool: &Pool,
    id: Uuid,
    limit: Option<(f64, i32)>,
) -> Result<bool, DbError> {
    let client = pool.get().await?;
    let (rate, burst) = (limit.map(|l| l.0), limit.map(|l| l.1));
    let n = client
        .execute(
            "UPDATE workspaces SET rate_limit_per_second = $2, rate_limit_burst = $3 WHERE id = $1",
            &[&id, &rate, &burst],
        )
        .await?;
    Ok(n == 1)
}

/// What the rate limiter needs of a workspace: whose it is and its override.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateScope {
    pub workspace_id: Uuid,
    pub organization_id: Uuid,
    /// Tokens per second and burst, when the workspace overrides the server's.
    pub rate_limit: Option<(f64, i32)>,
}

const RATE_SCOPE_COLUMNS: &str =
    "w.id, w.organization_id, w.rate_limit_per_second, w.rate_limit_burst";

fn rate_scope_from_row(row: &Row) -> RateScope {
    let rate: Option<f64> = row.get(2);
    let burst: Option<i32> = row.get(3);
    RateScope {
        workspace_id: row.get(0),
        organization_id: row.get(1),
        rate_limit: rate.zip(burst),
    }
}

/// The rate scope of a workspace, if it exists.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn rate_scope(pool: &Pool, id: Uuid) -> Result<Option<RateScope>, DbError> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {RATE_SCOPE_COLUMNS} FROM workspaces w WHERE w.id = $1"
        ))
        .await?;
    Ok(client
        .query_opt(&stmt, &[&id])
        .await?
        .as_ref()
        .map(rate_scope_from_row))
}

/// The rate scope of the workspace a file lives in, if the file exists (in any state:
/// a file never moves between workspaces).
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn rate_scope_of_file(pool: &Pool, file: Uuid) -> Result<Option<RateScope>, DbError> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {RATE_SCOPE_COLUMNS} FROM files f JOIN workspaces w ON w.id = f.workspace_id \
             WHERE f.id = $1"
        ))
        .await?;
    Ok(client
        .query_opt(&stmt, &[&file])
        .await?
        .as_ref()
        .map(rate_scope_from_row))
}
