//! Idempotent reservations: the record stored with a reservation, the look-up of a
//! stored response, and what replaying it needs (the files' uploads, to sign their URLs
//! again, and the longer upload window those URLs get).

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use filegate_domain::{Checksum, ContentType, FileStatus};
use tokio_postgres::Row;
use uuid::Uuid;

use super::rows::status;
use crate::DbError;
use crate::query::{self, FromRow, col, parsed, parsed_opt};

/// What is stored for an `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct IdempotencyRecord<'a> {
    pub key: &'a str,
    pub request_sha256: [u8; 32],
    pub response: &'a serde_json::Value,
}

/// A stored idempotency record younger than 24 hours.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub request_sha256: Vec<u8>,
    pub response: serde_json::Value,
}

/// The record for `(api key, Idempotency-Key)`, if one younger than 24 hours exists.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn idempotent_response(
    pool: &Pool,
    api_key_id: Uuid,
    key: &str,
) -> Result<Option<StoredResponse>, DbError> {
    let row = query::query_opt(
        pool,
        "SELECT request_sha256, response FROM idempotency_keys \
         WHERE api_key_id = $1 AND key = $2 AND created_at >= now() - interval '24 hours'",
        &[&api_key_id, &key],
    )
    .await?;
    query::one(row.as_ref())
}

impl FromRow for StoredResponse {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            request_sha256: col(row, "request_sha256")?,
            response: col(row, "response")?,
        })
    }
}

/// What a replayed reservation needs to sign a file's upload URL again.
#[derive(Debug, Clone)]
pub struct Upload {
    pub id: Uuid,
    pub status: FileStatus,
    pub content_type: ContentType,
    pub size_bytes: Option<i64>,
    pub checksum_sha256: Option<Checksum>,
    pub upload_key: String,
    /// For an upload through filegate, the key its URLs are signed with.
    pub ingest_key: Option<Vec<u8>>,
}

/// The uploads of the files `ids` (those that still exist).
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn uploads(pool: &Pool, ids: &[Uuid]) -> Result<Vec<Upload>, DbError> {
    let rows = query::query(
        pool,
        "SELECT id, status, content_type, size_bytes, checksum_sha256, upload_key, ingest_key
           FROM files WHERE id = ANY($1::uuid[])",
        &[&ids],
    )
    .await?;
    query::all(&rows)
}

impl FromRow for Upload {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            id: col(row, "id")?,
            status: status(row)?,
            content_type: parsed(row, "content_type", ContentType::from_stored)?,
            size_bytes: col(row, "size_bytes")?,
            checksum_sha256: parsed_opt(row, "checksum_sha256", Checksum::parse)?,
            upload_key: col(row, "upload_key")?,
            ingest_key: col(row, "ingest_key")?,
        })
    }
}

/// Moves the upload window of the files `ids` still pending to end no sooner than
/// `until`, before their URLs are signed again: each returned file's window ends at
/// the time returned, and no URL may outlive it. A file the reaper expired first is
/// not returned (the expiry holds its row; this statement waits and then sees it
/// settled), so no URL is signed past its final deletion.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn extend_upload_window(
    pool: &Pool,
    ids: &[Uuid],
    until: DateTime<Utc>,
) -> Result<Vec<(Uuid, DateTime<Utc>)>, DbError> {
    let rows = query::query(
        pool,
        "UPDATE files SET upload_expires_at = greatest(upload_expires_at, $2), updated_at = now()
          WHERE id = ANY($1::uuid[]) AND status = 'pending'
          RETURNING id, upload_expires_at",
        &[&ids, &until],
    )
    .await?;
    rows.iter()
        .map(|r| Ok((col(r, "id")?, col(r, "upload_expires_at")?)))
        .collect()
}
