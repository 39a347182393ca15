//! Files: the reservation, and reads of file rows.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use filegate_domain::{FileSpec, FileStatus};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::query::{self, Conn};
use crate::{Constraint, DbError};

/// One file of a reservation, with the ids and object key the server chose.
#[derive(Debug, Clone)]
pub struct NewFile<'a> {
    pub id: Uuid,
    /// Where downloads are served from (`remote_file_path`); no URL can write it.
    pub object_key: String,
    /// Where the client's presigned PUT writes.
    pub upload_key: String,
    pub spec: &'a FileSpec,
    /// Bytes held against the quota until completion.
    pub reserved_bytes: i64,
}

/// A batch to reserve in one statement.
#[derive(Debug, Clone)]
pub struct Reservation<'a> {
    pub workspace_id: Uuid,
    pub organization_id: Uuid,
    pub created_by: Uuid,
    pub upload_expires_at: DateTime<Utc>,
    /// When the finalizer first looks for the uploads without being asked.
    pub first_check_at: DateTime<Utc>,
    pub files: Vec<NewFile<'a>>,
    /// `Idempotency-Key` with the request digest and the response to replay.
    pub idempotency: Option<IdempotencyRecord<'a>>,
}

/// What is stored for an `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct IdempotencyRecord<'a> {
    pub key: &'a str,
    pub request_sha256: [u8; 32],
    pub response: &'a serde_json::Value,
}

/// How a reservation ended; only `Reserved` changed anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    Reserved,
    /// The workspace's quota (or the workspace itself, for another organization) refused.
    QuotaExceeded,
    /// A live file already has one of the batch's name + path.
    Duplicate,
    /// The `Idempotency-Key` was used already (concurrently, or within 24 h).
    IdempotencyKeyTaken,
}

/// Reserves a whole batch in one statement: the guarded workspace counter update, the
/// multi-row insert of the files and the idempotency record all happen or none does.
/// Two concurrent batches can never together exceed the quota, because the guarded
/// UPDATE serializes on the workspace row and re-checks the quota after the wait.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn reserve(pool: &Pool, r: &Reservation<'_>) -> Result<ReserveOutcome, DbError> {
    let total: i64 = r
        .files
        .iter()
        .map(|f| f.reserved_bytes)
        .fold(0i64, i64::saturating_add);
    let n = r.files.len();
    let (
        mut ids,
        mut names,
        mut paths,
        mut locals,
        mut labels,
        mut urls,
        mut types,
        mut sizes,
        mut reserved,
        mut sums,
        mut keys,
        mut upload_keys,
    ) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for f in &r.files {
        ids.push(f.id);
        names.push(f.spec.name.as_str());
        paths.push(f.spec.path.as_str());
        locals.push(f.spec.local_file_path.as_deref());
        labels.push(serde_json::Value::from(f.spec.labels.to_strings()));
        urls.push(f.spec.public_url.as_ref().map(|u| u.as_str()));
        types.push(f.spec.content_type.mime());
        sizes.push(f.spec.size_bytes);
        reserved.push(f.reserved_bytes);
        sums.push(f.spec.checksum.map(|c| c.to_base64()));
        keys.push(f.object_key.as_str());
        upload_keys.push(f.upload_key.as_str());
    }
    let (idem_key, idem_hash, idem_response) = match &r.idempotency {
        Some(i) => (
            Some(i.key),
            Some(i.request_sha256.as_slice()),
            Some(i.response),
        ),
        None => (None, None, None),
    };
    let conn = Conn::get(pool).await?;
    if let Some(key) = idem_key {
        // A record past its 24-hour horizon no longer blocks the key.
        conn.execute(
            "DELETE FROM idempotency_keys WHERE api_key_id = $1 AND key = $2 \
             AND created_at < now() - interval '24 hours'",
            &[&r.created_by, &key],
        )
        .await?;
    }
    let result = conn
        .query_one(
            RESERVE_SQL,
            &[
                &r.workspace_id,
                &r.organization_id,
                &total,
                &r.created_by,
                &r.upload_expires_at,
                &ids,
                &names,
                &paths,
                &locals,
                &labels,
                &urls,
                &types,
                &sizes,
                &reserved,
                &sums,
                &keys,
                &idem_key,
                &idem_hash,
                &idem_response,
                &upload_keys,
                &r.first_check_at,
            ],
        )
        .await;
    match result {
        Ok(row) => {
            let inserted: i64 = row.get("inserted");
            Ok(if inserted == 0 {
                ReserveOutcome::QuotaExceeded
            } else {
                ReserveOutcome::Reserved
            })
        }
        Err(e) => match e.constraint() {
            Some(Constraint::LiveNamePath) => Ok(ReserveOutcome::Duplicate),
            Some(Constraint::IdempotencyKey) => Ok(ReserveOutcome::IdempotencyKeyTaken),
            Some(Constraint::WithinQuota) => Ok(ReserveOutcome::QuotaExceeded),
            None => Err(e),
        },
    }
}

/// The reservation statement (also driven by `scripts/bench` through pgbench).
pub const RESERVE_SQL: &str = "\
WITH ws AS (
    UPDATE workspaces
       SET reserved_bytes = reserved_bytes + $3
     WHERE id = $1 AND organization_id = $2
       AND used_bytes + reserved_bytes + $3 <= quota_bytes
    RETURNING id, unique_names
), ins AS (
    INSERT INTO files (id, workspace_id, name, path, local_file_path, labels, public_url, content_type,
                       size_bytes, reserved_bytes, checksum_sha256, object_key, upload_key, created_by,
                       upload_expires_at, next_check_at, unique_name)
    SELECT f.id, ws.id, f.name, f.path, f.local_file_path,
           ARRAY(SELECT jsonb_array_elements_text(f.labels)), f.public_url, f.content_type,
           f.size_bytes, f.reserved_bytes, f.checksum, f.object_key, f.upload_key, $4, $5, $21,
           ws.unique_names
      FROM ws,
           unnest($6::uuid[], $7::text[], $8::text[], $9::text[], $10::jsonb[], $11::text[], $12::text[],
                  $13::int8[], $14::int8[], $15::text[], $16::text[], $20::text[])
           AS f(id, name, path, local_file_path, labels, public_url, content_type,
                size_bytes, reserved_bytes, checksum, object_key, upload_key)
    RETURNING 1
), idem AS (
    INSERT INTO idempotency_keys (api_key_id, key, request_sha256, response)
    SELECT $4, $17, $18, $19 FROM ws WHERE $17::text IS NOT NULL
)
SELECT count(*) AS inserted FROM ins";

/// Which of `(path, name)` pairs are held by live files of a workspace; used to say
/// which entries of a refused batch collided.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn live_names(
    pool: &Pool,
    workspace_id: Uuid,
    pairs: &[(&str, &str)],
) -> Result<Vec<(String, String)>, DbError> {
    let (paths, names): (Vec<&str>, Vec<&str>) = pairs.iter().copied().unzip();
    Ok(query::query(
        pool,
        "SELECT f.path, f.name FROM files f \
         JOIN unnest($2::text[], $3::text[]) AS q(path, name) ON q.path = f.path AND q.name = f.name \
         WHERE f.workspace_id = $1 AND f.status IN ('pending', 'ready') AND f.unique_name",
        &[&workspace_id, &paths, &names],
    )
    .await?
    .iter()
    .map(|r| (r.get("path"), r.get("name")))
    .collect())
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
}

/// The columns [`FileRow::from_row`] reads, of a file `f` and its workspace `w`: a
/// `files f JOIN workspaces w`, or CTEs by those names that return a file row and its
/// workspace's `id` and `organization_id`.
pub(crate) const FILE_COLUMNS: &str = "f.id, f.workspace_id, w.organization_id, f.name, f.path, f.local_file_path, \
     f.labels, f.public_url, f.content_type, f.size_bytes, f.reserved_bytes, f.checksum_sha256, f.status, \
     f.rejection_reason, f.object_key, f.created_by, f.created_at, f.updated_at, f.completed_at, f.upload_expires_at, \
     f.upload_key, f.etag";

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
        }
    }
}

/// The `status` column of a file row.
fn status(row: &Row) -> FileStatus {
    // The CHECK constraint admits only the four names.
    FileStatus::from_name(row.get("status")).unwrap_or(FileStatus::Rejected)
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
    Ok(query::query(pool, &list_sql(shape), &params)
        .await?
        .iter()
        .map(FileRow::from_row)
        .collect())
}

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
        Ok(Some(row)) => Ok(UpdateOutcome::Updated(Box::new(FileRow::from_row(&row)))),
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
/// # Errors
/// [`DbError`] on database failure.
pub async fn delete(
    pool: &Pool,
    id: Uuid,
    workspace_id: Uuid,
    margin: std::time::Duration,
) -> Result<Option<String>, DbError> {
    Ok(query::query_opt(
        pool,
        "WITH old AS (
            SELECT id, workspace_id, status, reserved_bytes, object_key, upload_key, upload_expires_at FROM files
             WHERE id = $1 AND workspace_id = $2 FOR UPDATE
         ), w AS (
            UPDATE workspaces w SET
                used_bytes = w.used_bytes - CASE WHEN old.status = 'ready' THEN old.reserved_bytes ELSE 0 END,
                reserved_bytes = w.reserved_bytes - CASE WHEN old.status = 'pending' THEN old.reserved_bytes ELSE 0 END
              FROM old WHERE w.id = old.workspace_id
         ), d AS (
            DELETE FROM files USING old WHERE files.id = old.id RETURNING files.object_key
         ), q AS (
            INSERT INTO object_deletions (object_key, final_after)
            SELECT k.key, k.final_after FROM old JOIN d USING (object_key),
              LATERAL (
                SELECT old.upload_key,
                       greatest(old.upload_expires_at + make_interval(secs => $3), now())
                UNION ALL
                SELECT old.object_key, now() WHERE old.object_key <> old.upload_key
              ) AS k(key, final_after)
            ON CONFLICT (object_key) DO UPDATE
               SET due_at = now(), final_after = greatest(object_deletions.final_after, excluded.final_after)
         )
         SELECT object_key FROM d",
        &[&id, &workspace_id, &margin.as_secs_f64()],
    )
    .await?
    .map(|r| r.get("object_key")))
}
