//! Reserving a batch: one statement takes the quota, inserts the files and stores the
//! idempotency record, or does none of it (an expired record of the same key is
//! deleted first). Also which names of a refused batch are taken.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use filegate_domain::FileSpec;
use uuid::Uuid;

use super::IdempotencyRecord;
use crate::query::{self, Conn, col};
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
    /// When this file's upload window closes, if not the reservation's.
    pub upload_expires_at: Option<DateTime<Utc>>,
    /// A large file's multipart upload (started before the reservation), and the
    /// digests of the parts whose URLs the reservation signs.
    pub multipart: Option<NewMultipart>,
    /// For a file whose upload streams through filegate, the key its URLs are signed
    /// with.
    pub ingest_key: Option<[u8; 32]>,
    /// For an import, the URI filegate fetches.
    pub remote_uri: Option<&'a str>,
    /// The client's batch (AI21's `batch_id`), if it named one.
    pub batch_id: Option<&'a str>,
}

/// The multipart upload of a [`NewFile`].
#[derive(Debug, Clone)]
pub struct NewMultipart {
    pub upload_id: String,
    pub part_size: i64,
    pub part_count: i32,
    /// Part 1's digest first, and so on.
    pub part_checksums: Vec<String>,
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

/// How a reservation ended; only `Reserved` changed anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    Reserved,
    /// The workspace's quota or file caps (or the workspace itself, for another
    /// organization) refused.
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
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn reserve(pool: &Pool, r: &Reservation<'_>) -> Result<ReserveOutcome, DbError> {
    let total: i64 = r
        .files
        .iter()
        .map(|f| f.reserved_bytes)
        .fold(0i64, i64::saturating_add);
    // One array per column, unnested together by the statement.
    let files = &r.files;
    let ids: Vec<_> = files.iter().map(|f| f.id).collect();
    let names: Vec<_> = files.iter().map(|f| f.spec.name.as_str()).collect();
    let paths: Vec<_> = files.iter().map(|f| f.spec.path.as_str()).collect();
    let locals: Vec<_> = files
        .iter()
        .map(|f| f.spec.local_file_path.as_deref())
        .collect();
    let labels: Vec<_> = files
        .iter()
        .map(|f| serde_json::Value::from(f.spec.labels.to_strings()))
        .collect();
    let urls: Vec<_> = files
        .iter()
        .map(|f| f.spec.public_url.as_ref().map(|u| u.as_str()))
        .collect();
    let types: Vec<_> = files.iter().map(|f| f.spec.content_type.mime()).collect();
    let sizes: Vec<_> = files.iter().map(|f| f.spec.size_bytes).collect();
    let reserved: Vec<_> = files.iter().map(|f| f.reserved_bytes).collect();
    let sums: Vec<_> = files
        .iter()
        .map(|f| f.spec.checksum.map(|c| c.to_base64()))
        .collect();
    let keys: Vec<_> = files.iter().map(|f| f.object_key.as_str()).collect();
    let upload_keys: Vec<_> = files.iter().map(|f| f.upload_key.as_str()).collect();
    let multipart: Vec<_> = files.iter().map(|f| f.multipart.as_ref()).collect();
    let upload_ids: Vec<_> = multipart
        .iter()
        .map(|m| m.map(|m| m.upload_id.as_str()))
        .collect();
    let part_sizes: Vec<_> = multipart.iter().map(|m| m.map(|m| m.part_size)).collect();
    let part_counts: Vec<_> = multipart.iter().map(|m| m.map(|m| m.part_count)).collect();
    let windows: Vec<_> = files.iter().map(|f| f.upload_expires_at).collect();
    let ingest_keys: Vec<_> = files
        .iter()
        .map(|f| f.ingest_key.as_ref().map(<[u8; 32]>::as_slice))
        .collect();
    let remote_uris: Vec<_> = files.iter().map(|f| f.remote_uri).collect();
    let batch_ids: Vec<_> = files.iter().map(|f| f.batch_id).collect();
    // The signed part digests, one row each.
    let (mut part_files, mut part_numbers, mut part_sums) = (Vec::new(), Vec::new(), Vec::new());
    for f in files {
        if let Some(m) = &f.multipart {
            for (sum, n) in m.part_checksums.iter().zip(1i32..) {
                part_files.push(f.id);
                part_numbers.push(n);
                part_sums.push(sum.as_str());
            }
        }
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
                &upload_ids,
                &part_sizes,
                &part_counts,
                &part_files,
                &part_numbers,
                &part_sums,
                &windows,
                &ingest_keys,
                &remote_uris,
                &batch_ids,
            ],
        )
        .await;
    match result {
        Ok(row) => {
            let inserted: i64 = col(&row, "inserted")?;
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
       SET reserved_bytes = reserved_bytes + $3,
           live_files = live_files + cardinality($6::uuid[]),
           pending_files = pending_files + cardinality($6::uuid[])
     WHERE id = $1 AND organization_id = $2
       AND used_bytes + reserved_bytes + $3 <= quota_bytes
       AND live_files + cardinality($6::uuid[]) <= max_files
       AND pending_files + cardinality($6::uuid[]) <= max_pending_files
    RETURNING id, unique_names
), ins AS (
    INSERT INTO files (id, workspace_id, name, path, local_file_path, labels, public_url, content_type,
                       size_bytes, reserved_bytes, checksum_sha256, object_key, upload_key, created_by,
                       upload_expires_at, next_check_at, unique_name,
                       multipart_upload_id, part_size_bytes, part_count, ingest_key, remote_uri, batch_id)
    SELECT f.id, ws.id, f.name, f.path, f.local_file_path,
           ARRAY(SELECT jsonb_array_elements_text(f.labels)), f.public_url, f.content_type,
           f.size_bytes, f.reserved_bytes, f.checksum, f.object_key, f.upload_key, $4,
           coalesce(f.upload_expires_at, $5), $21,
           ws.unique_names, f.upload_id, f.part_size, f.part_count, f.ingest_key, f.remote_uri, f.batch_id
      FROM ws,
           unnest($6::uuid[], $7::text[], $8::text[], $9::text[], $10::jsonb[], $11::text[], $12::text[],
                  $13::int8[], $14::int8[], $15::text[], $16::text[], $20::text[],
                  $22::text[], $23::int8[], $24::int4[], $28::timestamptz[], $29::bytea[], $30::text[], $31::text[])
           AS f(id, name, path, local_file_path, labels, public_url, content_type,
                size_bytes, reserved_bytes, checksum, object_key, upload_key,
                upload_id, part_size, part_count, upload_expires_at, ingest_key, remote_uri, batch_id)
    RETURNING 1
), parts AS (
    INSERT INTO file_parts (file_id, part_number, checksum_sha256)
    SELECT p.file_id, p.part_number, p.checksum
      FROM ws, unnest($25::uuid[], $26::int4[], $27::text[]) AS p(file_id, part_number, checksum)
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
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn live_names(
    pool: &Pool,
    workspace_id: Uuid,
    pairs: &[(&str, &str)],
) -> Result<Vec<(String, String)>, DbError> {
    let (paths, names): (Vec<&str>, Vec<&str>) = pairs.iter().copied().unzip();
    query::query(
        pool,
        "SELECT f.path, f.name FROM files f \
         JOIN unnest($2::text[], $3::text[]) AS q(path, name) ON q.path = f.path AND q.name = f.name \
         WHERE f.workspace_id = $1 AND f.status IN ('pending', 'ready') AND f.unique_name",
        &[&workspace_id, &paths, &names],
    )
    .await?
    .iter()
    .map(|r| Ok((col(r, "path")?, col(r, "name")?)))
    .collect()
}
