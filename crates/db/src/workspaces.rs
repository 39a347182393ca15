//! Workspaces: creating one, its limits and quota counters, its usage, and its
//! rate-limit override with the scope the rate limiter reads.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use filegate_domain::{ContentType, Limits};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::DbError;
use crate::query::{self, FromRow, col};

/// A workspace row.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub limits: Limits,
    pub used_bytes: i64,
    pub reserved_bytes: i64,
    /// Pending or ready files.
    pub live_files: i64,
    /// Pending files.
    pub pending_files: i64,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, organization_id, name, quota_bytes, max_file_bytes, allowed_content_types, \
                       used_bytes, reserved_bytes, created_at, unique_names, max_files, max_pending_files, \
                       live_files, pending_files";

impl FromRow for Workspace {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        let types: Vec<&str> = col(row, "allowed_content_types")?;
        Ok(Self {
            id: col(row, "id")?,
            organization_id: col(row, "organization_id")?,
            name: col(row, "name")?,
            limits: Limits {
                quota_bytes: col(row, "quota_bytes")?,
                max_file_bytes: col(row, "max_file_bytes")?,
                // Only canonical names are ever written; anything else is skipped, not trusted.
                allowed_types: types
                    .iter()
                    .filter_map(|t| ContentType::parse(t).ok())
                    .collect(),
                unique_names: col(row, "unique_names")?,
                max_files: col(row, "max_files")?,
                max_pending_files: col(row, "max_pending_files")?,
            },
            used_bytes: col(row, "used_bytes")?,
            reserved_bytes: col(row, "reserved_bytes")?,
            live_files: col(row, "live_files")?,
            pending_files: col(row, "pending_files")?,
            created_at: col(row, "created_at")?,
        })
    }
}

/// Creates a workspace in an organization.
///
/// # Errors
/// [`DbError`] on database failure (including an unknown organization).
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn create(
    pool: &Pool,
    organization_id: Uuid,
    name: &str,
    limits: &Limits,
) -> Result<Workspace, DbError> {
    let types: Vec<&str> = limits.allowed_types.iter().map(|t| t.mime()).collect();
    let row = query::query_one(
        pool,
        &format!(
            "INSERT INTO workspaces (id, organization_id, name, quota_bytes, max_file_bytes, allowed_content_types, \
                                     unique_names, max_files, max_pending_files) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
        ),
        &[
            &Uuid::now_v7(),
            &organization_id,
            &name,
            &limits.quota_bytes,
            &limits.max_file_bytes,
            &types,
            &limits.unique_names,
            &limits.max_files,
            &limits.max_pending_files,
        ],
    )
    .await?;
    Workspace::from_row(&row)
}

/// One workspace, if it exists.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn get(pool: &Pool, id: Uuid) -> Result<Option<Workspace>, DbError> {
    let row = query::query_opt(
        pool,
        &format!("SELECT {COLUMNS} FROM workspaces WHERE id = $1"),
        &[&id],
    )
    .await?;
    query::one(row.as_ref())
}

/// What `admin set-workspace` changes; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct LimitsPatch {
    pub quota_bytes: Option<i64>,
    pub max_file_bytes: Option<i64>,
    pub allowed_types: Option<Vec<ContentType>>,
    pub unique_names: Option<bool>,
    pub max_files: Option<i64>,
    pub max_pending_files: Option<i64>,
}

/// Changes a workspace's limits. `Ok(None)` when there is no such workspace. A quota
/// below what the workspace already holds is refused by the schema's CHECK.
///
/// # Errors
/// [`DbError`] on database failure (including a quota below the bytes held).
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn set_limits(
    pool: &Pool,
    id: Uuid,
    patch: &LimitsPatch,
) -> Result<Option<Workspace>, DbError> {
    let types: Option<Vec<&str>> = patch
        .allowed_types
        .as_ref()
        .map(|t| t.iter().map(|t| t.mime()).collect());
    let row = query::query_opt(
        pool,
        &format!(
            "UPDATE workspaces SET quota_bytes = coalesce($2, quota_bytes),
                    max_file_bytes = coalesce($3, max_file_bytes),
                    allowed_content_types = coalesce($4, allowed_content_types),
                    unique_names = coalesce($5, unique_names),
                    max_files = coalesce($6, max_files),
                    max_pending_files = coalesce($7, max_pending_files)
              WHERE id = $1 RETURNING {COLUMNS}"
        ),
        &[
            &id,
            &patch.quota_bytes,
            &patch.max_file_bytes,
            &types,
            &patch.unique_names,
            &patch.max_files,
            &patch.max_pending_files,
        ],
    )
    .await?;
    query::one(row.as_ref())
}

/// Sets (or, with `None`, clears) a workspace's rate-limit override. Returns `false`
/// when the workspace does not exist.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn set_rate_limit(
    pool: &Pool,
    id: Uuid,
    limit: Option<(f64, i32)>,
) -> Result<bool, DbError> {
    let (rate, burst) = (limit.map(|l| l.0), limit.map(|l| l.1));
    let n = query::execute(
        pool,
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

impl FromRow for RateScope {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        let rate: Option<f64> = col(row, "rate_limit_per_second")?;
        let burst: Option<i32> = col(row, "rate_limit_burst")?;
        Ok(Self {
            workspace_id: col(row, "id")?,
            organization_id: col(row, "organization_id")?,
            rate_limit: rate.zip(burst),
        })
    }
}

/// The rate scope of a workspace, if it exists.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn rate_scope(pool: &Pool, id: Uuid) -> Result<Option<RateScope>, DbError> {
    let row = query::query_opt(
        pool,
        &format!("SELECT {RATE_SCOPE_COLUMNS} FROM workspaces w WHERE w.id = $1"),
        &[&id],
    )
    .await?;
    query::one(row.as_ref())
}

/// The rate scope of the workspace a file lives in, if the file exists (in any state:
/// a file never moves between workspaces).
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn rate_scope_of_file(pool: &Pool, file: Uuid) -> Result<Option<RateScope>, DbError> {
    let row = query::query_opt(
        pool,
        &format!(
            "SELECT {RATE_SCOPE_COLUMNS} FROM files f JOIN workspaces w ON w.id = f.workspace_id \
             WHERE f.id = $1"
        ),
        &[&file],
    )
    .await?;
    query::one(row.as_ref())
}
