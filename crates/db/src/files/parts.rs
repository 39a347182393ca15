//! The part digests of multipart files: what filegate signed into each part's URL,
//! and so what completion holds the store's parts to.

use deadpool_postgres::Pool;
use uuid::Uuid;

use crate::DbError;
use crate::query::{self, col};

/// Records the digests of parts about to be signed (replacing earlier ones of the same
/// numbers), while the file is a pending multipart file of `workspace_id`. `false`
/// when it is not (anymore): no URL may then be signed.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn record_parts(
    pool: &Pool,
    file_id: Uuid,
    workspace_id: Uuid,
    parts: &[(i32, String)],
) -> Result<bool, DbError> {
    let (numbers, sums): (Vec<i32>, Vec<&str>) =
        parts.iter().map(|(n, s)| (*n, s.as_str())).unzip();
    let row = query::query_one(
        pool,
        "WITH f AS (
            SELECT id FROM files
             WHERE id = $1 AND workspace_id = $2 AND status = 'pending'
               AND multipart_upload_id IS NOT NULL
             FOR SHARE
         ), ins AS (
            INSERT INTO file_parts (file_id, part_number, checksum_sha256)
            SELECT f.id, p.n, p.sum FROM f, unnest($3::int4[], $4::text[]) AS p(n, sum)
            ON CONFLICT (file_id, part_number) DO UPDATE SET checksum_sha256 = excluded.checksum_sha256
         )
         SELECT EXISTS (SELECT 1 FROM f) AS pending",
        &[&file_id, &workspace_id, &numbers, &sums],
    )
    .await?;
    col(&row, "pending")
}

/// The signed digest of each part of a file, by part number.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn part_digests(pool: &Pool, file_id: Uuid) -> Result<Vec<(i32, String)>, DbError> {
    query::query(
        pool,
        "SELECT part_number, checksum_sha256 FROM file_parts WHERE file_id = $1 ORDER BY part_number",
        &[&file_id],
    )
    .await?
    .iter()
    .map(|r| Ok((col(r, "part_number")?, col(r, "checksum_sha256")?)))
    .collect()
}

/// Of multipart uploads the store lists, the ones a pending file still owns: its own
/// (`upload_ids`), or, of `streaming` (an upload id under a file's upload key), one an
/// upload through filegate is writing under the file's lease.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn owned_uploads(
    pool: &Pool,
    upload_ids: &[&str],
    streaming: &[(Uuid, &str)],
) -> Result<Vec<String>, DbError> {
    let (files, ids): (Vec<Uuid>, Vec<&str>) = streaming.iter().copied().unzip();
    query::query(
        pool,
        "SELECT multipart_upload_id AS owned FROM files
          WHERE multipart_upload_id = ANY($1::text[]) AND status = 'pending'
         UNION ALL
         SELECT u.upload_id FROM unnest($2::uuid[], $3::text[]) AS u(file_id, upload_id)
           JOIN files f ON f.id = u.file_id
          WHERE f.status = 'pending' AND f.ingest_until > now()",
        &[&upload_ids, &files, &ids],
    )
    .await?
    .iter()
    .map(|r| col(r, "owned"))
    .collect()
}
