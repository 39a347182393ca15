//! Uploads that stream through filegate (files of undeclared size, form uploads,
//! imports): what the upload route reads of its file, and the lease that lets one such
//! upload run per file at a time. The lease is taken only while the file is pending
//! and no completion holds it (and a completion cannot claim a file whose lease is
//! live: nothing is inspected half-written, nothing written while inspected), renewed
//! while bytes arrive, and given back when the upload ends; a renewal that finds the
//! file settled or gone stops the upload.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use filegate_domain::{ContentType, FileStatus};
use tokio_postgres::Row;
use uuid::Uuid;

use super::rows::status;
use crate::DbError;
use crate::query::{self, FromRow, col, parsed};

/// What an upload through filegate needs of its file.
#[derive(Debug, Clone)]
pub struct IngestTarget {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub status: FileStatus,
    pub content_type: ContentType,
    /// The most bytes the upload may carry (the file's reservation).
    pub reserved_bytes: i64,
    pub upload_key: String,
    /// The key that signs the file's upload URLs.
    pub ingest_key: Vec<u8>,
}

/// The file `id` when its uploads go through filegate.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn ingest_target(pool: &Pool, id: Uuid) -> Result<Option<IngestTarget>, DbError> {
    let row = query::query_opt(
        pool,
        "SELECT id, workspace_id, status, content_type, reserved_bytes, upload_key, ingest_key
           FROM files WHERE id = $1 AND ingest_key IS NOT NULL",
        &[&id],
    )
    .await?;
    query::one(row.as_ref())
}

impl FromRow for IngestTarget {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            id: col(row, "id")?,
            workspace_id: col(row, "workspace_id")?,
            status: status(row)?,
            content_type: parsed(row, "content_type", ContentType::from_stored)?,
            reserved_bytes: col(row, "reserved_bytes")?,
            upload_key: col(row, "upload_key")?,
            ingest_key: col(row, "ingest_key")?,
        })
    }
}

/// Why an upload's lease was not had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Held under the token, until the time returned.
    Held(DateTime<Utc>),
    /// Another upload, or a completion, of the file holds it.
    Busy,
    /// The file is no longer pending (it is, with this status).
    Settled(FileStatus),
    /// The file is gone.
    Gone,
}

/// Takes (or, with the same `token`, renews) the lease of the upload of pending file
/// `id` for `length`.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn lease_ingest(
    pool: &Pool,
    id: Uuid,
    token: Uuid,
    length: Duration,
) -> Result<Lease, DbError> {
    let row = query::query_opt(
        pool,
        "WITH f AS (
            SELECT id, status, ingest_claim, ingest_until FROM files WHERE id = $1
         ), taken AS (
            UPDATE files SET ingest_claim = $2, ingest_until = now() + make_interval(secs => $3)
              FROM f
             WHERE files.id = f.id AND files.status = 'pending'
               AND (files.ingest_claim IS NULL OR files.ingest_claim = $2 OR files.ingest_until < now())
               -- Nothing is written while a completion inspects the file.
               AND (files.completion_claim_until IS NULL OR files.completion_claim_until < now())
            RETURNING files.ingest_until
         )
         SELECT f.status, (SELECT ingest_until FROM taken) AS until FROM f",
        &[&id, &token, &length.as_secs_f64()],
    )
    .await?;
    let Some(row) = row else {
        return Ok(Lease::Gone);
    };
    if let Some(until) = col::<Option<DateTime<Utc>>>(&row, "until")? {
        return Ok(Lease::Held(until));
    }
    Ok(match status(&row)? {
        FileStatus::Pending => Lease::Busy,
        settled => Lease::Settled(settled),
    })
}

/// Gives the lease `token` holds back; returns where the file stands (`None`: gone).
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn release_ingest(
    pool: &Pool,
    id: Uuid,
    token: Uuid,
) -> Result<Option<FileStatus>, DbError> {
    let row = query::query_opt(
        pool,
        "WITH released AS (
            UPDATE files SET ingest_claim = NULL, ingest_until = NULL
             WHERE id = $1 AND ingest_claim = $2
         )
         SELECT status FROM files WHERE id = $1",
        &[&id, &token],
    )
    .await?;
    row.as_ref().map(status).transpose()
}

/// An import due to run: a pending file reserved with a `remote_uri`, whose ingest
/// lease this claim now holds.
#[derive(Debug, Clone)]
pub struct DueImport {
    pub target: IngestTarget,
    pub remote_uri: String,
    /// Attempts made, this one included.
    pub attempts: i32,
}

/// Claims up to `batch` imports nobody runs (new ones, and ones whose replica died
/// with their lease), oldest first, under `token` for `lease`, counting an attempt.
/// Other replicas skip the rows this one holds.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn claim_imports(
    pool: &Pool,
    token: Uuid,
    lease: Duration,
    batch: i64,
) -> Result<Vec<DueImport>, DbError> {
    let rows = query::query(
        pool,
        "UPDATE files SET import_attempts = import_attempts + 1, ingest_claim = $1,
                          ingest_until = now() + make_interval(secs => $2)
          WHERE id IN (
            SELECT id FROM files
             WHERE remote_uri IS NOT NULL AND status = 'pending'
               AND (ingest_until IS NULL OR ingest_until < now())
               AND (completion_claim_until IS NULL OR completion_claim_until < now())
             ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING id, workspace_id, status, content_type, reserved_bytes, upload_key, ingest_key,
                   remote_uri, import_attempts",
        &[&token, &lease.as_secs_f64(), &batch],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DueImport {
                target: IngestTarget::from_row(r)?,
                remote_uri: col(r, "remote_uri")?,
                attempts: col(r, "import_attempts")?,
            })
        })
        .collect()
}
