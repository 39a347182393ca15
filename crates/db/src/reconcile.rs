//! Reconciliation's reads: which listed objects a live file owns, and which ready files
//! have no object in a stretch of the bucket's listing. filegate's keys name their
//! file (`{workspace}/{file}`, `uploads/{workspace}/{file}`), so every look-up is by id,
//! and the bucket's byte order of object keys is the order of `(workspace_id, id)`.
//! Also the advisory lock that lets one reconciliation run at a time ([`exclusively`]).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use filegate_domain::FileStatus;
use filegate_domain::keys::KeyKind;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::DbError;
use crate::query::{self, FromRow, col};

/// A listed object of filegate's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedKey<'a> {
    pub key: &'a str,
    pub file: Uuid,
    /// An object, upload or derived key.
    pub kind: KeyKind,
}

/// The keys among `keys` that a live file owns: the object key of a pending or ready
/// file, the upload key of a pending one, or a derived object its row records (or
/// that its running job is making).
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn owned<'a>(pool: &Pool, keys: &[ListedKey<'a>]) -> Result<HashSet<&'a str>, DbError> {
    let ids: Vec<Uuid> = keys.iter().map(|k| k.file).collect();
    let derived: Vec<&str> = keys
        .iter()
        .filter(|k| k.kind == KeyKind::Derived)
        .map(|k| k.key)
        .collect();
    let mut owned = HashSet::new();
    if !derived.is_empty() {
        // Recorded, or of a file whose job runs now (its run uploads before it records;
        // however long it takes, its frames are not orphans yet).
        let derived_files: Vec<Uuid> = keys
            .iter()
            .filter(|k| k.kind == KeyKind::Derived)
            .map(|k| k.file)
            .collect();
        let rows = query::query(
            pool,
            "SELECT object_key, NULL::uuid AS running FROM derived_objects WHERE object_key = ANY($1::text[])
             UNION ALL
             SELECT NULL, file_id FROM processing_jobs WHERE file_id = ANY($2::uuid[]) AND state = 'running'",
            &[&derived, &derived_files],
        )
        .await?;
        for row in &rows {
            let (key, running): (Option<&str>, Option<Uuid>) =
                (col(row, "object_key")?, col(row, "running")?);
            for k in keys.iter().filter(|k| k.kind == KeyKind::Derived) {
                if Some(k.key) == key || Some(k.file) == running {
                    owned.insert(k.key);
                }
            }
        }
    }
    let rows = query::query(
        pool,
        "SELECT id, status, object_key, upload_key FROM files WHERE id = ANY($1::uuid[])",
        &[&ids],
    )
    .await?;
    for row in &rows {
        let (id, status, object_key, upload_key): (Uuid, FileStatus, &str, &str) = (
            col(row, "id")?,
            crate::files::status(row)?,
            col(row, "object_key")?,
            col(row, "upload_key")?,
        );
        for k in keys.iter().filter(|k| k.file == id) {
            let live = match k.kind {
                KeyKind::Upload => status == FileStatus::Pending && k.key == upload_key,
                KeyKind::Object => {
                    matches!(status, FileStatus::Pending | FileStatus::Ready) && k.key == object_key
                }
                KeyKind::Derived | KeyKind::Foreign => false,
            };
            if live {
                owned.insert(k.key);
            }
        }
    }
    Ok(owned)
}

/// A ready file whose served object the bucket does not hold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MissingObject {
    pub file_uuid: Uuid,
    pub workspace_uuid: Uuid,
    pub remote_file_path: String,
}

/// A position in the listing of object keys: `(workspace, file)`.
pub type KeyPosition = (Uuid, Uuid);

/// Before every key.
pub const FIRST: KeyPosition = (Uuid::nil(), Uuid::nil());
/// After every key.
pub const LAST: KeyPosition = (Uuid::from_u128(u128::MAX), Uuid::from_u128(u128::MAX));

/// Ready files completed before `before` whose object key lies in `(after, through]`
/// but whose id is not among `listed` (the files whose object keys the bucket listed in
/// that stretch); at most `limit` of them.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn missing_in_range(
    pool: &Pool,
    after: KeyPosition,
    through: KeyPosition,
    listed: &[Uuid],
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<MissingObject>, DbError> {
    query::query(
        pool,
        "SELECT f.id, f.workspace_id, f.object_key FROM files f
          WHERE f.status = 'ready'
            AND (f.workspace_id, f.id) > ($1, $2) AND (f.workspace_id, f.id) <= ($3, $4)
            AND f.completed_at < $6 AND NOT (f.id = ANY($5::uuid[]))
          ORDER BY f.workspace_id, f.id
          LIMIT $7",
        &[
            &after.0, &after.1, &through.0, &through.1, &listed, &before, &limit,
        ],
    )
    .await
    .and_then(|rows| query::all(&rows))
}

impl FromRow for MissingObject {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            file_uuid: col(row, "id")?,
            workspace_uuid: col(row, "workspace_id")?,
            remote_file_path: col(row, "object_key")?,
        })
    }
}

/// An arbitrary constant: the advisory lock that lets one reconciliation run at a time.
pub const RECONCILE_LOCK: i64 = 0x72_65_63_6f_6e_63_69_6c; // "reconcil"

/// Runs `pass` while holding the reconciliation lock on a connection of its own (so the
/// pool needs at least two); `Ok(None)` without running it when another process holds
/// the lock. The lock belongs to a transaction: if the pass is dropped half-way (a
/// shutdown), the transaction rolls back and the lock goes with it.
///
/// # Errors
/// [`DbError`] when the lock cannot be taken or released; `pass`'s own error type is
/// returned inside `Ok(Some(..))`.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn exclusively<T, F>(pool: &Pool, pass: F) -> Result<Option<T>, DbError>
where
    F: Future<Output = T>,
{
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let locked: bool = col(
        &tx.query_one(
            "SELECT pg_try_advisory_xact_lock($1) AS locked",
            &[&RECONCILE_LOCK],
        )
        .await?,
        "locked",
    )?;
    if !locked {
        return Ok(None);
    }
    let out = pass.await;
    tx.rollback().await?;
    Ok(Some(out))
}
