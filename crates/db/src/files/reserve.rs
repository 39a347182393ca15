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

/// A reservation's rows as the statements bind them: one array per column (the
/// statement unnests them together), owned, so that reservations of concurrent
/// requests can wait to share a statement ([`reserve_many`]).
#[derive(Debug, Clone, Default)]
pub struct ReservationRows {
    pub workspace_id: Uuid,
    pub organization_id: Uuid,
    pub created_by: Uuid,
    pub upload_expires_at: DateTime<Utc>,
    pub first_check_at: DateTime<Utc>,
    /// Bytes the files reserve together.
    pub total: i64,
    ids: Vec<Uuid>,
    names: Vec<String>,
    paths: Vec<String>,
    locals: Vec<Option<String>>,
    labels: Vec<serde_json::Value>,
    urls: Vec<Option<String>>,
    types: Vec<String>,
    sizes: Vec<Option<i64>>,
    reserved: Vec<i64>,
    sums: Vec<Option<String>>,
    keys: Vec<String>,
    upload_keys: Vec<String>,
    upload_ids: Vec<Option<String>>,
    part_sizes: Vec<Option<i64>>,
    part_counts: Vec<Option<i32>>,
    windows: Vec<Option<DateTime<Utc>>>,
    ingest_keys: Vec<Option<Vec<u8>>>,
    remote_uris: Vec<Option<String>>,
    batch_ids: Vec<Option<String>>,
    // The signed part digests, one row each.
    part_files: Vec<Uuid>,
    part_numbers: Vec<i32>,
    part_sums: Vec<String>,
}

impl ReservationRows {
    /// The rows of `r` (its idempotency record aside).
    #[must_use]
    pub fn of(r: &Reservation<'_>) -> Self {
        let files = &r.files;
        let multipart: Vec<_> = files.iter().map(|f| f.multipart.as_ref()).collect();
        let (mut part_files, mut part_numbers, mut part_sums) =
            (Vec::new(), Vec::new(), Vec::new());
        for f in files {
            if let Some(m) = &f.multipart {
                for (sum, n) in m.part_checksums.iter().zip(1i32..) {
                    part_files.push(f.id);
                    part_numbers.push(n);
                    part_sums.push(sum.clone());
                }
            }
        }
        Self {
            workspace_id: r.workspace_id,
            organization_id: r.organization_id,
            created_by: r.created_by,
            upload_expires_at: r.upload_expires_at,
            first_check_at: r.first_check_at,
            total: files
                .iter()
                .map(|f| f.reserved_bytes)
                .fold(0i64, i64::saturating_add),
            ids: files.iter().map(|f| f.id).collect(),
            names: files
                .iter()
                .map(|f| f.spec.name.as_str().to_owned())
                .collect(),
            paths: files
                .iter()
                .map(|f| f.spec.path.as_str().to_owned())
                .collect(),
            locals: files
                .iter()
                .map(|f| f.spec.local_file_path.clone())
                .collect(),
            labels: files
                .iter()
                .map(|f| serde_json::Value::from(f.spec.labels.to_strings()))
                .collect(),
            urls: files
                .iter()
                .map(|f| f.spec.public_url.as_ref().map(|u| u.as_str().to_owned()))
                .collect(),
            types: files
                .iter()
                .map(|f| f.spec.content_type.mime().to_owned())
                .collect(),
            sizes: files.iter().map(|f| f.spec.size_bytes).collect(),
            reserved: files.iter().map(|f| f.reserved_bytes).collect(),
            sums: files
                .iter()
                .map(|f| f.spec.checksum.map(|c| c.to_base64()))
                .collect(),
            keys: files.iter().map(|f| f.object_key.clone()).collect(),
            upload_keys: files.iter().map(|f| f.upload_key.clone()).collect(),
            upload_ids: multipart
                .iter()
                .map(|m| m.map(|m| m.upload_id.clone()))
                .collect(),
            part_sizes: multipart.iter().map(|m| m.map(|m| m.part_size)).collect(),
            part_counts: multipart.iter().map(|m| m.map(|m| m.part_count)).collect(),
            windows: files.iter().map(|f| f.upload_expires_at).collect(),
            ingest_keys: files
                .iter()
                .map(|f| f.ingest_key.map(|k| k.to_vec()))
                .collect(),
            remote_uris: files
                .iter()
                .map(|f| f.remote_uri.map(str::to_owned))
                .collect(),
            batch_ids: files
                .iter()
                .map(|f| f.batch_id.map(str::to_owned))
                .collect(),
            part_files,
            part_numbers,
            part_sums,
        }
    }

    /// Files in the reservation.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the reservation has no files.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Reserves a whole batch in one statement: the guarded workspace counter update, the
/// multi-row insert of the files and the idempotency record all happen or none does.
/// Two concurrent batches can never together exceed the quota, because the guarded
/// UPDATE serializes on the workspace row and re-checks the quota after the wait.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn reserve(pool: &Pool, r: &Reservation<'_>) -> Result<ReserveOutcome, DbError> {
    reserve_rows(pool, &ReservationRows::of(r), r.idempotency.as_ref()).await
}

/// [`reserve`] of rows made before, with the request's idempotency record if any.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, fields(files = r.len()), err(Display, level = "warn"))]
pub async fn reserve_rows(
    pool: &Pool,
    r: &ReservationRows,
    idempotency: Option<&IdempotencyRecord<'_>>,
) -> Result<ReserveOutcome, DbError> {
    let (idem_key, idem_hash, idem_response) = match idempotency {
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
                &r.total,
                &r.created_by,
                &r.upload_expires_at,
                &r.ids,
                &r.names,
                &r.paths,
                &r.locals,
                &r.labels,
                &r.urls,
                &r.types,
                &r.sizes,
                &r.reserved,
                &r.sums,
                &r.keys,
                &idem_key,
                &idem_hash,
                &idem_response,
                &r.upload_keys,
                &r.first_check_at,
                &r.upload_ids,
                &r.part_sizes,
                &r.part_counts,
                &r.part_files,
                &r.part_numbers,
                &r.part_sums,
                &r.windows,
                &r.ingest_keys,
                &r.remote_uris,
                &r.batch_ids,
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

/// Reserves several requests' batches in one statement and one commit, each
/// all-or-nothing: returns, in their order, whether each was reserved. A request the
/// statement could not settle by itself is left out whole (`false`), to be reserved
/// alone ([`reserve_rows`]), which gives it its own answer: one whose workspace does
/// not have room for it after the requests before it in the group (a workspace's
/// requests are taken in their order, and the first that does not fit leaves out
/// those after it), or names a workspace of another organization. Workspaces are
/// locked in id order, so two such statements never deadlock over them. Fails as a
/// whole (reserving nothing) when any row breaks a constraint, a name taken or two
/// requests of the group naming one file: the caller then reserves each alone.
///
/// # Errors
/// [`DbError`] on database failure, or a constraint any of the rows broke.
#[tracing::instrument(skip_all, fields(requests = requests.len()), err(Display, level = "debug"))]
pub async fn reserve_many(pool: &Pool, requests: &[ReservationRows]) -> Result<Vec<bool>, DbError> {
    let (mut reqs, mut workspaces, mut orgs, mut totals, mut counts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut creators, mut expiries, mut first_checks) = (Vec::new(), Vec::new(), Vec::new());
    let mut file_reqs: Vec<i32> = Vec::new();
    // Every request's file rows, one after the other.
    let mut all = ReservationRows::default();
    for (n, r) in (0i32..).zip(requests) {
        reqs.push(n);
        workspaces.push(r.workspace_id);
        orgs.push(r.organization_id);
        totals.push(r.total);
        counts.push(i64::try_from(r.len()).unwrap_or(i64::MAX));
        creators.push(r.created_by);
        expiries.push(r.upload_expires_at);
        first_checks.push(r.first_check_at);
        file_reqs.extend(std::iter::repeat_n(n, r.len()));
        all.append(r);
    }
    let rows = query::query(
        pool,
        RESERVE_MANY_SQL,
        &[
            &reqs,
            &workspaces,
            &orgs,
            &totals,
            &counts,
            &creators,
            &expiries,
            &first_checks,
            &file_reqs,
            &all.ids,
            &all.names,
            &all.paths,
            &all.locals,
            &all.labels,
            &all.urls,
            &all.types,
            &all.sizes,
            &all.reserved,
            &all.sums,
            &all.keys,
            &all.upload_keys,
            &all.upload_ids,
            &all.part_sizes,
            &all.part_counts,
            &all.windows,
            &all.ingest_keys,
            &all.remote_uris,
            &all.batch_ids,
            &all.part_files,
            &all.part_numbers,
            &all.part_sums,
        ],
    )
    .await?;
    let mut reserved = vec![false; requests.len()];
    for row in &rows {
        let req: i32 = col(row, "req")?;
        if let Some(slot) = usize::try_from(req).ok().and_then(|n| reserved.get_mut(n)) {
            *slot = true;
        }
    }
    Ok(reserved)
}

impl ReservationRows {
    /// Adds `r`'s file rows after these.
    fn append(&mut self, r: &Self) {
        self.ids.extend_from_slice(&r.ids);
        self.names.extend_from_slice(&r.names);
        self.paths.extend_from_slice(&r.paths);
        self.locals.extend_from_slice(&r.locals);
        self.labels.extend_from_slice(&r.labels);
        self.urls.extend_from_slice(&r.urls);
        self.types.extend_from_slice(&r.types);
        self.sizes.extend_from_slice(&r.sizes);
        self.reserved.extend_from_slice(&r.reserved);
        self.sums.extend_from_slice(&r.sums);
        self.keys.extend_from_slice(&r.keys);
        self.upload_keys.extend_from_slice(&r.upload_keys);
        self.upload_ids.extend_from_slice(&r.upload_ids);
        self.part_sizes.extend_from_slice(&r.part_sizes);
        self.part_counts.extend_from_slice(&r.part_counts);
        self.windows.extend_from_slice(&r.windows);
        self.ingest_keys.extend_from_slice(&r.ingest_keys);
        self.remote_uris.extend_from_slice(&r.remote_uris);
        self.batch_ids.extend_from_slice(&r.batch_ids);
        self.part_files.extend_from_slice(&r.part_files);
        self.part_numbers.extend_from_slice(&r.part_numbers);
        self.part_sums.extend_from_slice(&r.part_sums);
    }
}

/// The grouped reservation statement ([`reserve_many`]).
const RESERVE_MANY_SQL: &str = "\
WITH r AS (
    SELECT * FROM unnest($1::int4[], $2::uuid[], $3::uuid[], $4::int8[], $5::int8[], $6::uuid[],
                         $7::timestamptz[], $8::timestamptz[])
        AS r(req, workspace_id, organization_id, total, n, created_by, expires_at, first_check_at)
), locked AS (
    SELECT id, organization_id, used_bytes, reserved_bytes, quota_bytes, live_files, max_files,
           pending_files, max_pending_files
      FROM workspaces WHERE id IN (SELECT workspace_id FROM r)
     ORDER BY id
       FOR UPDATE
), running AS (
    -- Each workspace's requests in their order, with what they take up to each one.
    SELECT r.*, l.used_bytes + l.reserved_bytes + sum(r.total) OVER upto <= l.quota_bytes
                AND l.live_files + sum(r.n) OVER upto <= l.max_files
                AND l.pending_files + sum(r.n) OVER upto <= l.max_pending_files AS fits
      FROM r JOIN locked l ON l.id = r.workspace_id AND l.organization_id = r.organization_id
    WINDOW upto AS (PARTITION BY r.workspace_id ORDER BY r.req)
), fits AS (
    SELECT * FROM running WHERE fits
), per_ws AS (
    SELECT workspace_id, sum(total)::int8 AS bytes, sum(n)::int8 AS files FROM fits GROUP BY workspace_id
), ws AS (
    UPDATE workspaces w
       SET reserved_bytes = w.reserved_bytes + p.bytes,
           live_files = w.live_files + p.files,
           pending_files = w.pending_files + p.files
      FROM per_ws p
     WHERE w.id = p.workspace_id
       AND w.used_bytes + w.reserved_bytes + p.bytes <= w.quota_bytes
       AND w.live_files + p.files <= w.max_files
       AND w.pending_files + p.files <= w.max_pending_files
    RETURNING w.id, w.unique_names
), ok AS (
    SELECT fits.*, ws.unique_names FROM fits JOIN ws ON ws.id = fits.workspace_id
), ins AS (
    INSERT INTO files (id, workspace_id, name, path, local_file_path, labels, public_url, content_type,
                       size_bytes, reserved_bytes, checksum_sha256, object_key, upload_key, created_by,
                       upload_expires_at, next_check_at, unique_name,
                       multipart_upload_id, part_size_bytes, part_count, ingest_key, remote_uri, batch_id)
    SELECT f.id, ok.workspace_id, f.name, f.path, f.local_file_path,
           ARRAY(SELECT jsonb_array_elements_text(f.labels)), f.public_url, f.content_type,
           f.size_bytes, f.reserved_bytes, f.checksum, f.object_key, f.upload_key, ok.created_by,
           coalesce(f.upload_expires_at, ok.expires_at), ok.first_check_at,
           ok.unique_names, f.upload_id, f.part_size, f.part_count, f.ingest_key, f.remote_uri, f.batch_id
      FROM unnest($9::int4[], $10::uuid[], $11::text[], $12::text[], $13::text[], $14::jsonb[], $15::text[],
                  $16::text[], $17::int8[], $18::int8[], $19::text[], $20::text[], $21::text[],
                  $22::text[], $23::int8[], $24::int4[], $25::timestamptz[], $26::bytea[], $27::text[],
                  $28::text[])
           AS f(req, id, name, path, local_file_path, labels, public_url, content_type,
                size_bytes, reserved_bytes, checksum, object_key, upload_key,
                upload_id, part_size, part_count, upload_expires_at, ingest_key, remote_uri, batch_id)
      JOIN ok ON ok.req = f.req
    RETURNING id
), parts AS (
    INSERT INTO file_parts (file_id, part_number, checksum_sha256)
    SELECT p.file_id, p.part_number, p.checksum
      FROM unnest($29::uuid[], $30::int4[], $31::text[]) AS p(file_id, part_number, checksum)
     WHERE p.file_id IN (SELECT id FROM ins)
)
SELECT req FROM ok";

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
