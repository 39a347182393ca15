//! Idempotent reservations: the record stored with a reservation, the look-up of a
//! stored response, and what replaying it needs (the files' uploads, to sign their URLs
//! again, and the longer upload window those URLs get).

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use filegate_domain::FileStatus;
use tokio_postgres::Row;
use uuid::Uuid;

use super::rows::status;
use crate::DbError;
use crate::query;

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
pub async fn idempotent_response(
    pool: &Pool,
    api_key_id: Uuid,
    key: &str,
) -> Result<Option<StoredResponse>, DbError> {
    Ok(query::query_opt(
        pool,
        "SELECT request_sha256, response FROM idempotency_keys \
         WHERE api_key_id = $1 AND key = $2 AND created_at >= now() - interval '24 hours'",
        &[&api_key_id, &key],
    )
    .await?
    .as_ref()
    .map(StoredResponse::from_row))
}

impl StoredResponse {
    fn from_row(row: &Row) -> Self {
        Self {
            request_sha256: row.get("request_sha256"),
            response: row.get("response"),
        }
    }
}

/// What a replayed reservation needs to sign a file's upload URL again.
#[derive(Debug, Clone)]
pub struct Upload {
    pub id: Uuid,
    pub status: FileStatus,
    pub content_type: String,
    pub size_bytes: Option<i64>,
    pub checksum_sha256: Option<String>,
    pub upload_key: String,
}

/// The uploads of the files `ids` (those that still exist).
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn uploads(pool: &Pool, ids: &[Uuid]) -> Result<Vec<Upload>, DbError> {
    Ok(query::query(
        pool,
        "SELECT id, status, content_type, size_bytes, checksum_sha256, upload_key
           FROM files WHERE id = ANY($1::uuid[])",
        &[&ids],
    )
    .await?
    .iter()
    .map(Upload::from_row)
    .collect())
}

impl Upload {
    fn from_row(row: &Row) -> Self {
        Self {
            id: row.get("id"),
            status: status(row),
            content_type: row.get("content_type"),
            size_bytes: row.get("size_bytes"),
            checksum_sha256: row.get("checksum_sha256"),
            upload_key: row.get("upload_key"),
        }
    }
}

/// Moves the upload window of the pending files `ids` to end no sooner than `until`
/// (their URLs were signed again).
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn extend_upload_window(
    pool: &Pool,
    ids: &[Uuid],
    until: DateTime<Utc>,
) -> Result<(), DbError> {
    query::execute(
        pool,
        "UPDATE files SET upload_expires_at = greatest(upload_expires_at, $2), updated_at = now()
          WHERE id = ANY($1::uuid[]) AND status = 'pending'",
        &[&ids, &until],
    )
    .await?;
    Ok(())
}
