//! Listing a workspace's files: one page, newest first, filtered and continued after a
//! position; each combination of filters is its own statement.

use deadpool_postgres::Pool;
use filegate_domain::FileStatus;
use uuid::Uuid;

use super::rows::{FILE_COLUMNS, FileRow};
use crate::DbError;
use crate::query;

/// A position in a newest-first listing: the last row of the previous page.
pub use filegate_domain::listing::Position as ListPosition;

/// What `GET /v2/files` asks for; every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct ListQuery<'a> {
    pub workspace_id: Uuid,
    /// Exact name.
    pub name: Option<&'a str>,
    /// Path prefix, matched literally and case-sensitively.
    pub path_prefix: Option<&'a str>,
    /// Files carrying any of these labels.
    pub labels: &'a [String],
    pub status: Option<FileStatus>,
    /// Rows after this position (exclusive).
    pub after: Option<ListPosition>,
    pub limit: i64,
}

/// Which filters a listing uses; each shape is its own prepared statement and plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListShape {
    pub name: bool,
    pub path_prefix: bool,
    pub labels: bool,
    pub status: bool,
    pub after: bool,
}

/// The statement for a shape. Parameters: `$1` workspace, then in order the name, the
/// path prefix, the labels, the status, the position (`created_at`, id) of those
/// present, and last the limit.
#[must_use]
pub fn list_sql(shape: ListShape) -> String {
    let mut sql = format!(
        "SELECT {FILE_COLUMNS} FROM files f JOIN workspaces w ON w.id = f.workspace_id WHERE f.workspace_id = $1"
    );
    let mut n = 1;
    let mut next = || {
        n += 1;
        n
    };
    if shape.name {
        sql.push_str(&format!(" AND f.name = ${}", next()));
    }
    if shape.path_prefix {
        // starts_with compares literally: %, _ and \ have no special meaning.
        sql.push_str(&format!(" AND starts_with(f.path, ${})", next()));
    }
    if shape.labels {
        sql.push_str(&format!(" AND f.labels && ${}::text[]", next()));
    }
    if shape.status {
        sql.push_str(&format!(" AND f.status = ${}", next()));
    }
    if shape.after {
        let (at, id) = (next(), next());
        sql.push_str(&format!(" AND (f.created_at, f.id) < (${at}, ${id})"));
    }
    sql.push_str(&format!(
        " ORDER BY f.created_at DESC, f.id DESC LIMIT ${}",
        next()
    ));
    sql
}

/// One page of a workspace's files, newest first (`created_at`, then id, descending).
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn list(pool: &Pool, q: &ListQuery<'_>) -> Result<Vec<FileRow>, DbError> {
    let status = q.status.map(FileStatus::as_str);
    let (after_at, after_id) = (q.after.map(|p| p.created_at), q.after.map(|p| p.id));
    let shape = ListShape {
        name: q.name.is_some(),
        path_prefix: q.path_prefix.is_some(),
        labels: !q.labels.is_empty(),
        status: status.is_some(),
        after: q.after.is_some(),
    };
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&q.workspace_id];
    if let Some(name) = &q.name {
        params.push(name);
    }
    if let Some(prefix) = &q.path_prefix {
        params.push(prefix);
    }
    if shape.labels {
        params.push(&q.labels);
    }
    if let Some(status) = &status {
        params.push(status);
    }
    if let (Some(at), Some(id)) = (&after_at, &after_id) {
        params.push(at);
        params.push(id);
    }
    params.push(&q.limit);
    query::all(&query::query(pool, &list_sql(shape), &params).await?)
}
