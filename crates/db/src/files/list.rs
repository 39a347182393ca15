//! Listing a workspace's files: one page, newest first, filtered and continued after a
//! position; each combination of filters is its own statement.

use deadpool_postgres::Pool;
use filegate_domain::FileStatus;
use uuid::Uuid;

use super::rows::{FILE_COLUMNS, FileRow, ON_THE_WAY};
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
    /// Files in any of these states; empty: any state.
    pub statuses: &'a [FileStatus],
    /// Only files whose bytes are (`true`) or are not (`false`) on their way through
    /// filegate: an ingest holds their lease, or an import fetches them.
    pub in_flight: Option<bool>,
    /// Files of any of these types (canonical MIME types); empty: any type.
    pub types: &'a [&'a str],
    /// Rows after this position (exclusive).
    pub after: Option<ListPosition>,
    /// Rows skipped (offset paging); 0: none.
    pub offset: i64,
    pub limit: i64,
}

/// Which filters a listing uses; each shape is its own prepared statement and plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListShape {
    pub name: bool,
    pub path_prefix: bool,
    pub labels: bool,
    pub status: bool,
    pub types: bool,
    pub in_flight: bool,
    pub after: bool,
    pub offset: bool,
}

/// The statement for a shape. Parameters: `$1` workspace, then in order the name, the
/// path prefix, the labels, the status, the types, in flight or not, the position (`created_at`, id) of
/// those present, and last the limit and the offset.
#[must_use]
pub fn list_sql(shape: ListShape) -> String {
    let mut sql = format!(
        "SELECT {FILE_COLUMNS} FROM files f JOIN workspaces w ON w.id = f.workspace_id WHERE f.workspace_id = $1"
    );
    let n = filters(&mut sql, shape);
    sql.push_str(&format!(
        " ORDER BY f.created_at DESC, f.id DESC LIMIT ${}",
        n + 1
    ));
    if shape.offset {
        sql.push_str(&format!(" OFFSET ${}", n + 2));
    }
    sql
}

/// The statement that counts the files a shape's filters match (its position, limit
/// and offset aside), up to a cap: the same parameters, up to the types, then the cap.
/// It reads at most the cap's rows, however many match.
#[must_use]
pub fn count_sql(shape: ListShape) -> String {
    let mut sql =
        "SELECT count(*) AS n FROM (SELECT 1 FROM files f WHERE f.workspace_id = $1".to_owned();
    let n = filters(
        &mut sql,
        ListShape {
            after: false,
            ..shape
        },
    );
    sql.push_str(&format!(" LIMIT ${}) AS matches", n + 1));
    sql
}

/// Appends the filters of `shape` to `sql`, numbering parameters from `$2`; the last
/// number used.
fn filters(sql: &mut String, shape: ListShape) -> usize {
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
        sql.push_str(&format!(" AND f.status = ANY(${}::text[])", next()));
    }
    if shape.types {
        sql.push_str(&format!(" AND f.content_type = ANY(${}::text[])", next()));
    }
    if shape.in_flight {
        sql.push_str(&format!(" AND {ON_THE_WAY} = ${}", next()));
    }
    if shape.after {
        let (at, id) = (next(), next());
        sql.push_str(&format!(" AND (f.created_at, f.id) < (${at}, ${id})"));
    }
    n
}

/// One page of a workspace's files, newest first (`created_at`, then id, descending).
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn list(pool: &Pool, q: &ListQuery<'_>) -> Result<Vec<FileRow>, DbError> {
    let status: Vec<&str> = q.statuses.iter().map(|s| s.as_str()).collect();
    let (after_at, after_id) = (q.after.map(|p| p.created_at), q.after.map(|p| p.id));
    let shape = shape(q);
    let mut params = filter_params(q, &status);
    if let (Some(at), Some(id)) = (&after_at, &after_id) {
        params.push(at);
        params.push(id);
    }
    params.push(&q.limit);
    if shape.offset {
        params.push(&q.offset);
    }
    query::all(&query::query(pool, &list_sql(shape), &params).await?)
}

/// How many files the query's filters match (its position, limit and offset aside),
/// counted up to `cap`: the count, or `cap` when at least that many match.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn count(pool: &Pool, q: &ListQuery<'_>, cap: i64) -> Result<i64, DbError> {
    let status: Vec<&str> = q.statuses.iter().map(|s| s.as_str()).collect();
    let mut params = filter_params(q, &status);
    params.push(&cap);
    let row = query::query_one(pool, &count_sql(shape(q)), &params).await?;
    crate::query::col(&row, "n")
}

fn shape(q: &ListQuery<'_>) -> ListShape {
    ListShape {
        name: q.name.is_some(),
        path_prefix: q.path_prefix.is_some(),
        labels: !q.labels.is_empty(),
        status: !q.statuses.is_empty(),
        types: !q.types.is_empty(),
        in_flight: q.in_flight.is_some(),
        after: q.after.is_some(),
        offset: q.offset > 0,
    }
}

/// `$1` and the filters' parameters, in the order [`filters`] numbers them.
fn filter_params<'a>(
    q: &'a ListQuery<'a>,
    status: &'a Vec<&'static str>,
) -> Vec<&'a (dyn tokio_postgres::types::ToSql + Sync)> {
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&q.workspace_id];
    if let Some(name) = &q.name {
        params.push(name);
    }
    if let Some(prefix) = &q.path_prefix {
        params.push(prefix);
    }
    if !q.labels.is_empty() {
        params.push(&q.labels);
    }
    if !status.is_empty() {
        params.push(status);
    }
    if !q.types.is_empty() {
        params.push(&q.types);
    }
    if let Some(in_flight) = &q.in_flight {
        params.push(in_flight);
    }
    params
}

/// How many files of one state (and, for pending files, whether their bytes are on
/// their way through filegate) a batch holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchCount {
    pub status: FileStatus,
    pub in_flight: bool,
    pub count: i64,
}

/// The files of the batch `batch_id` of a workspace, counted by state.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn batch_counts(
    pool: &Pool,
    workspace_id: Uuid,
    batch_id: &str,
) -> Result<Vec<BatchCount>, DbError> {
    let rows = query::query(
        pool,
        &format!(
            "SELECT f.status, f.status = 'pending' AND {ON_THE_WAY} AS in_flight, count(*) AS n \
               FROM files f WHERE f.workspace_id = $1 AND f.batch_id = $2 \
              GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        &[&workspace_id, &batch_id],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(BatchCount {
                status: crate::files::status(r)?,
                in_flight: query::col(r, "in_flight")?,
                count: query::col(r, "n")?,
            })
        })
        .collect()
}
