//! File rows: [`FileRow`], the columns it is read from, and the reads of one file.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use filegate_domain::{Checksum, ContentType, FileStatus};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::DbError;
use crate::query::{self, FromRow, col, parsed, parsed_opt};

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
    pub content_type: ContentType,
    pub size_bytes: Option<i64>,
    /// What the file holds against the quota (reserved while pending, used once ready).
    pub reserved_bytes: i64,
    /// The declared SHA-256, when one was.
    pub checksum_sha256: Option<Checksum>,
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
    /// The URI filegate imports the file from (`remote_uri` in its reservation).
    pub remote_uri: Option<String>,
    /// Its bytes are streaming through filegate now (an upload or an import holds the
    /// file's ingest lease).
    pub in_flight: bool,
    /// Where its derived files are (`None`: its type has no processor).
    pub processing: Option<Processing>,
    /// Why processing failed.
    pub processing_error: Option<String>,
    /// What the processor learnt of the file (a video's duration, fps, size, codec).
    pub media_metadata: Option<serde_json::Value>,
}

/// A ready file's processing (the derived files its type's processor makes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processing {
    /// Its job is queued or running.
    Processing,
    Completed,
    /// Its job ended dead (`processing_error` says why).
    Failed,
}

impl Processing {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "processing" => Ok(Self::Processing),
            "completed" => Ok(Self::Completed),
            "failed" => Ok(Self::Failed),
            other => Err(format!("unknown processing state {other:?}")),
        }
    }
}

impl FileRow {
    /// Its bytes are on their way through filegate: an upload streams them, or an
    /// import will fetch them (a pending file with a `remote_uri`). Such a file is
    /// not looked at for an upload of its own; [`ON_THE_WAY`] is the same test in SQL.
    #[must_use]
    pub fn on_the_way(&self) -> bool {
        self.in_flight || self.remote_uri.is_some()
    }
}

/// [`FileRow::on_the_way`] of a file row `f`, in SQL.
pub(crate) const ON_THE_WAY: &str =
    "(coalesce(f.ingest_until > now(), false) OR f.remote_uri IS NOT NULL)";

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
     f.remote_uri, coalesce(f.ingest_until > now(), false) AS in_flight, \
     f.upload_key, f.etag, f.multipart_upload_id, f.part_size_bytes, f.part_count, \
     f.processing, f.processing_error, f.media_metadata";

impl FromRow for FileRow {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            id: col(row, "id")?,
            workspace_id: col(row, "workspace_id")?,
            organization_id: col(row, "organization_id")?,
            name: col(row, "name")?,
            path: col(row, "path")?,
            local_file_path: col(row, "local_file_path")?,
            labels: col(row, "labels")?,
            public_url: col(row, "public_url")?,
            content_type: parsed(row, "content_type", ContentType::from_stored)?,
            size_bytes: col(row, "size_bytes")?,
            reserved_bytes: col(row, "reserved_bytes")?,
            checksum_sha256: parsed_opt(row, "checksum_sha256", Checksum::parse)?,
            status: status(row)?,
            rejection_reason: col(row, "rejection_reason")?,
            object_key: col(row, "object_key")?,
            created_by: col(row, "created_by")?,
            created_at: col(row, "created_at")?,
            updated_at: col(row, "updated_at")?,
            completed_at: col(row, "completed_at")?,
            upload_expires_at: col(row, "upload_expires_at")?,
            upload_key: col(row, "upload_key")?,
            etag: col(row, "etag")?,
            remote_uri: col(row, "remote_uri")?,
            in_flight: col(row, "in_flight")?,
            processing: parsed_opt(row, "processing", Processing::parse)?,
            processing_error: col(row, "processing_error")?,
            media_metadata: col(row, "media_metadata")?,
            multipart: match (
                col::<Option<String>>(row, "multipart_upload_id")?,
                col::<Option<i64>>(row, "part_size_bytes")?,
                col::<Option<i32>>(row, "part_count")?,
            ) {
                (Some(upload_id), Some(part_size), Some(part_count)) => Some(Multipart {
                    upload_id,
                    part_size,
                    part_count,
                }),
                _ => None,
            },
        })
    }
}

/// The `status` column of a file row.
pub(crate) fn status(row: &Row) -> Result<FileStatus, DbError> {
    parsed(row, "status", str::parse::<FileStatus>)
}

/// A file, whoever's it is (for background work, never for a caller's request).
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn find(pool: &Pool, id: Uuid) -> Result<Option<FileRow>, DbError> {
    let row = query::query_opt(
        pool,
        &format!(
            "SELECT {FILE_COLUMNS} FROM files f JOIN workspaces w ON w.id = f.workspace_id WHERE f.id = $1"
        ),
        &[&id],
    )
    .await?;
    query::one(row.as_ref())
}

/// A file of an organization, if it exists there.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn get(pool: &Pool, id: Uuid, organization_id: Uuid) -> Result<Option<FileRow>, DbError> {
    let row = query::query_opt(
        pool,
        &format!(
            "SELECT {FILE_COLUMNS} FROM files f JOIN workspaces w ON w.id = f.workspace_id \
             WHERE f.id = $1 AND w.organization_id = $2"
        ),
        &[&id, &organization_id],
    )
    .await?;
    query::one(row.as_ref())
}
