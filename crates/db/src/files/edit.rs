//! Changing a file: a PATCH of its metadata, and its deletion.

use deadpool_postgres::Pool;
use uuid::Uuid;

use super::rows::{FILE_COLUMNS, FileRow};
use crate::query::{self, FromRow, col};
use crate::{Constraint, DbError};

/// The metadata a PATCH changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct FilePatch<'a> {
    pub name: Option<&'a str>,
    pub path: Option<&'a str>,
    pub labels: Option<Vec<String>>,
    /// `Some(None)` clears the URL.
    pub public_url: Option<Option<&'a str>>,
}

/// How a PATCH ended.
#[derive(Debug, Clone)]
pub enum UpdateOutcome {
    Updated(Box<FileRow>),
    NotFound,
    /// The new name + path is held by another live file.
    Duplicate,
}

/// Applies a patch to a file of `workspace_id`; `updated_at` moves.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn update(
    pool: &Pool,
    id: Uuid,
    workspace_id: Uuid,
    patch: &FilePatch<'_>,
) -> Result<UpdateOutcome, DbError> {
    let set_url = patch.public_url.is_some();
    let url = patch.public_url.flatten();
    let result = query::query_opt(
        pool,
        &format!(
            "WITH f AS (
                UPDATE files SET
                    name = coalesce($3, name),
                    path = coalesce($4, path),
                    labels = coalesce($5, labels),
                    public_url = CASE WHEN $6 THEN $7 ELSE public_url END,
                    updated_at = now()
                 WHERE id = $1 AND workspace_id = $2
                RETURNING *
             )
             SELECT {FILE_COLUMNS} FROM f JOIN workspaces w ON w.id = f.workspace_id"
        ),
        &[
            &id,
            &workspace_id,
            &patch.name,
            &patch.path,
            &patch.labels,
            &set_url,
            &url,
        ],
    )
    .await;
    match result {
        Ok(Some(row)) => Ok(UpdateOutcome::Updated(Box::new(FileRow::from_row(&row)?))),
        Ok(None) => Ok(UpdateOutcome::NotFound),
        Err(e) if e.constraint() == Some(Constraint::LiveNamePath) => Ok(UpdateOutcome::Duplicate),
        Err(e) => Err(e),
    }
}

/// Deletes a file of `workspace_id` in one guarded statement: its bytes leave the
/// counters (usage if ready, reservation if pending), the row goes, and its objects are
/// queued for deletion: the served object at once, the upload object at once and again
/// after its URL expired plus `margin` (a PUT started in time may still land).
/// Returns the served object's key, or `None` when there was no such file.
///
/// The workspace row is locked (`counters`) after the file and the new counters are
/// computed from that locked row. When the file's lock was waited for (a settling
/// statement held it), the file reads as that statement left it, and Postgres 15 was
/// seen to update the workspace from the counters as they stood before that
/// statement (the settled bytes still reserved, none used): a check constraint
/// failed, or the counters drifted.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn delete(
    pool: &Pool,
    id: Uuid,
    workspace_id: Uuid,
    margin: std::time::Duration,
) -> Result<Option<String>, DbError> {
    query::query_opt(
        pool,
        "WITH old AS (
            SELECT id, workspace_id, status, reserved_bytes, object_key, upload_key, upload_expires_at,
                   multipart_upload_id FROM files
             WHERE id = $1 AND workspace_id = $2 FOR UPDATE
         ), counters AS (
            SELECT w.id, w.used_bytes, w.reserved_bytes, w.live_files, w.pending_files
              FROM workspaces w JOIN old ON w.id = old.workspace_id
               FOR UPDATE OF w
         ), w AS (
            UPDATE workspaces w SET
                used_bytes = counters.used_bytes - CASE WHEN old.status = 'ready' THEN old.reserved_bytes ELSE 0 END,
                reserved_bytes = counters.reserved_bytes - CASE WHEN old.status = 'pending' THEN old.reserved_bytes ELSE 0 END,
                live_files = counters.live_files - CASE WHEN old.status IN ('pending', 'ready') THEN 1 ELSE 0 END,
                pending_files = counters.pending_files - CASE WHEN old.status = 'pending' THEN 1 ELSE 0 END
              FROM old, counters WHERE w.id = old.workspace_id AND counters.id = w.id
         ), d AS (
            DELETE FROM files USING old WHERE files.id = old.id RETURNING files.object_key
         ), q AS (
            INSERT INTO object_deletions (object_key, final_after, multipart_upload_id)
            SELECT k.key, k.final_after, k.upload_id FROM old JOIN d USING (object_key),
              LATERAL (
                SELECT old.upload_key,
                       greatest(old.upload_expires_at + make_interval(secs => $3), now()),
                       CASE WHEN old.status = 'pending' THEN old.multipart_upload_id END
                UNION ALL
                SELECT old.object_key, now(), NULL WHERE old.object_key <> old.upload_key
              ) AS k(key, final_after, upload_id)
            ON CONFLICT (object_key) DO UPDATE
               SET due_at = now(), final_after = greatest(object_deletions.final_after, excluded.final_after),
                   multipart_upload_id = coalesce(excluded.multipart_upload_id, object_deletions.multipart_upload_id)
         )
         SELECT object_key FROM d",
        &[&id, &workspace_id, &margin.as_secs_f64()],
    )
    .await?
    .map(|r| col(&r, "object_key"))
    .transpose()
}
