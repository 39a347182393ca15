//! The reaper's statements: expiring abandoned uploads, deleting queued objects and
//! forgetting old idempotency records. Each is safe with any number of replicas
//! running it at once (`FOR UPDATE SKIP LOCKED`, small batches, guarded updates).

use std::time::Duration;

use deadpool_postgres::Pool;

use crate::DbError;
use crate::query::{self, col};

/// Expires up to `batch` pending files whose upload window closed more than `grace`
/// ago and that no completion holds: their reservations are released and their upload
/// objects queued for deletion (now, and again once the URL expired plus `margin`), in
/// one statement. Returns how many were expired.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn expire_batch(
    pool: &Pool,
    grace: Duration,
    margin: Duration,
    batch: i64,
) -> Result<u64, DbError> {
    let n = query::query_one(
        pool,
        "WITH due AS (
            SELECT id, workspace_id, reserved_bytes FROM files
             WHERE status = 'pending' AND upload_expires_at < now() - make_interval(secs => $1)
               AND (completion_claim_until IS NULL OR completion_claim_until < now())
               -- An upload streaming through filegate that started in time may finish.
               AND (ingest_until IS NULL OR ingest_until < now())
             ORDER BY upload_expires_at
             LIMIT $2
             FOR UPDATE SKIP LOCKED
         ), per_ws AS (
            SELECT workspace_id, sum(reserved_bytes)::int8 AS held, count(*) AS n
              FROM due GROUP BY workspace_id
         ), w AS (
            UPDATE workspaces w SET reserved_bytes = w.reserved_bytes - per_ws.held,
                                    pending_files = w.pending_files - per_ws.n,
                                    live_files = w.live_files - per_ws.n
              FROM per_ws WHERE w.id = per_ws.workspace_id
         ), f AS (
            UPDATE files SET status = 'expired', reserved_bytes = 0, next_check_at = NULL,
                             completion_claim = NULL, completion_claim_until = NULL, updated_at = now()
              FROM due WHERE files.id = due.id
            RETURNING files.upload_key, files.upload_expires_at, files.multipart_upload_id
         ), d AS (
            -- Only the upload: a copy at the object key exists only if a completion
            -- died between its copy and its transition, which reconciliation finds;
            -- queuing it for every expired file would double the deletions.
            INSERT INTO object_deletions (object_key, final_after, multipart_upload_id)
            SELECT upload_key, greatest(upload_expires_at + make_interval(secs => $3), now()),
                   multipart_upload_id FROM f
            ON CONFLICT (object_key) DO UPDATE
               SET due_at = now(), final_after = greatest(object_deletions.final_after, excluded.final_after),
                   multipart_upload_id = coalesce(excluded.multipart_upload_id, object_deletions.multipart_upload_id)
         )
         SELECT count(*) AS expired FROM f",
        &[&grace.as_secs_f64(), &batch, &margin.as_secs_f64()],
    )
    .await?;
    let n: i64 = col(&n, "expired")?;
    Ok(u64::try_from(n).unwrap_or_default())
}

/// A queued deletion: the key, and the multipart upload to abort first, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub object_key: String,
    pub multipart_upload_id: Option<String>,
}

/// Claims up to `batch` due object deletions for `lease` (another replica skips them
/// meanwhile) and returns them.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn claim_deletions(
    pool: &Pool,
    batch: i64,
    lease: Duration,
) -> Result<Vec<Deletion>, DbError> {
    query::query(
        pool,
        "UPDATE object_deletions SET due_at = now() + make_interval(secs => $2), attempts = attempts + 1
          WHERE object_key IN (
            SELECT object_key FROM object_deletions WHERE due_at <= now()
             ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING object_key, multipart_upload_id",
        &[&batch, &lease.as_secs_f64()],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Deletion {
            object_key: col(r, "object_key")?,
            multipart_upload_id: col(r, "multipart_upload_id")?,
        })
    })
    .collect()
}

/// Records that the store confirmed an object's deletion: the entry goes away, unless
/// the object's upload URL is still valid, in which case one more deletion is due then.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn finish_deletion(pool: &Pool, object_key: &str) -> Result<(), DbError> {
    query::execute(
        pool,
        "WITH gone AS (
            DELETE FROM object_deletions WHERE object_key = $1 AND final_after <= now()
         )
         UPDATE object_deletions SET due_at = final_after, attempts = 0
          WHERE object_key = $1 AND final_after > now()",
        &[&object_key],
    )
    .await?;
    Ok(())
}

/// Deletes up to `batch` idempotency records older than 24 hours.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn purge_idempotency(pool: &Pool, batch: i64) -> Result<u64, DbError> {
    query::execute(
        pool,
        "DELETE FROM idempotency_keys WHERE ctid IN (
            SELECT ctid FROM idempotency_keys WHERE created_at < now() - interval '24 hours'
             LIMIT $1 FOR UPDATE SKIP LOCKED)",
        &[&batch],
    )
    .await
}

/// Deletes up to `batch` rejected or expired files settled more than `retention` ago
/// (their objects were queued for deletion when they settled; their parts go with
/// them). Returns how many were deleted.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn purge_settled(pool: &Pool, retention: Duration, batch: i64) -> Result<u64, DbError> {
    query::execute(
        pool,
        "DELETE FROM files WHERE id IN (
            SELECT id FROM files
             WHERE status IN ('expired', 'rejected')
               AND updated_at < now() - make_interval(secs => $1)
             ORDER BY updated_at
             LIMIT $2 FOR UPDATE SKIP LOCKED)",
        &[&retention.as_secs_f64(), &batch],
    )
    .await
}
