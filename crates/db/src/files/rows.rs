//! File rows: [`FileRow`], the columns it is read from, and the reads of one file.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use filegate_domain::FileStatus;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::DbError;
use crate::query;

/// A file row with its workspace's organization.
#[derive(Debug, Clone)]
pub struct FileRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub path: String,
    pub local_file_path: Option<String>,
    pub labels: Vec<String>,
    pub public_url: Option<String>,
    pub content_type: String,
    pub size_bytes: Option<i64>,
    /// What the file holds against the quota (reserved while pending, used once ready).
    pub reserved_bytes: i64,
    pub checksum_sha256: Option<String>,
    pub status: FileStatus,
    pub rejection_reason: Option<String>,
    /// Where downloads are served from (`remote_file_path`).
    pub object_key: String,
    /// Where the client's presigned PUT writes (the object key for files reserved
    /// before uploads were staged).
    pub upload_key: String,
    /// The ETag of the verified object version (ready files).
    pub etag: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub upload_expires_at: DateTime<Utc>,
    /// The multipart upload a large file's parts go to (`None`: one PUT).
    pub multipart: Option<Multipart>,
}

/// A multipart file's upload and how it is cut into parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    pub upload_id: String,
    pub part_size: i64,
    pub part_count: i32,
}

/// The columns [`FileRow::from_row`] reads, of a file `f` and its workspace `w`: a
/// `files f JOIN workspaces w`, or CTEs by those names that return a file row and its
/// workspace's `id` and `organization_id`.
pub(crate) const FILE_COLUMNS: &str = "f.id, f.workspace_id, w.organization_id, f.name, f.path, f.local_file_path, \
     f.labels, f.public_url, f.content_type, f.size_bytes, f.reserved_bytes, f.checksum_sha256, f.status, \
     f.rejection_reason, f.object_key, f.created_by, f.created_at, f.updated_at, f.completed_at, f.upload_expires_at, \
     f.upload_key, f.etag, f.multipart_upload_id, f.part_size_bytes, f.part_count";

impl FileRow {
    pub(crate) fn from_row(row: &Row) -> Self {
        Self {
            id: row.get("id"),
            workspace_id: row.get("workspace_id"),
            organization_id: row.get("organization_id"),
            name: row.get("name"),
            path: row.get("path"),
            local_file_path: row.get("local_file_path"),
            labels: row.get("labels"),
            public_url: row.get("public_url"),
            content_type: row.get("content_type"),
            size_bytes: row.get("size_bytes"),
            reserved_bytes: row.get("reserved_bytes"),
            checksum_sha256: row.get("checksum_sha256"),
            status: status(row),
            rejection_reason: row.get("rejection_reason"),
            object_key: row.get("object_key"),
            created_by: row.get("created_by"),
            created_at: row.get("created_at"),
            updated_at: row.get("updated_at"),
            completed_at: row.get("completed_at"),
            upload_expires_at: row.get("upload_expires_at"),
            upload_key: row.get("upload_key"),
            etag: row.get("etag"),
            multipart: match (
                row.get::<_, Option<String>>("multipart_upload_id"),
                row.get::<_, Option<i64>>("part_size_bytes"),
                row.get::<_, Option<i32>>("part_count"),
            ) {
                (Some(upload_id), Some(part_size), Some(part_count)) => Some(Multipart {
                    upload_id,
                    part_size,
                    part_count,
                }),
                _ => None,
            },
        }
    }
}

/// The `status` column of a file row.
pub(super) fn status(row: &Row) -> FileStatus {
    // The CHECK constraint admits only the four names.
    FileStatus::from_name(row.get("status")).unwrap_or(FileStatus::Rejected)
}

/// A file, whoever's it is (for background work, never for a caller's request).
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn find(pool: &Pool, id: Uuid) -> Result<Option<FileRow>, DbError> {
    Ok(query::query_opt(
        pool,
        &format!(
            "SELECT {FILE_COLUMNS} FROM files f JOIN workspaces w ON w.id = f.workspace_id WHERE f.id = $1"
        ),
        &[&id],
    )
    .await?
    .as_ref()
    .map(FileRow::from_row))
}

/// A file of an organization, if it exists there.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn get(pool: &Pool, id: Uuid, organization_id: Uuid) -> Result<Option<FileRow>, DbError> {
    Ok(query::query_opt(
        pool,
        &format!(
            "SELECT {FILE_COLUMNS} FROM files f JOIN workspaces w ON w.id = f.workspace_id \
             WHERE f.id = $1 AND w.organization_id = $2"
        ),
        &[&id, &organization_id],
    )
    .await?
    .as_ref()
    .map(FileRow::from_row))
}
