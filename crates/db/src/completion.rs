//! Completion's statements. Three paths complete files (the client's call, the
//! finalizer's own looks, S3 event notifications); all of them go through one claim and
//! one guarded transition, so any number of them racing make exactly one transition.
//!
//! A claim is a short lease on a pending file: its holder alone verifies the object,
//! copies the verified version to the served key and moves the file. Nothing is held
//! open across the object-store calls (no transaction, no row lock), so a slow store
//! never pins database connections.
//!
//! Here too: [`claim`] and [`release`], the transitions ([`settle`], many files in one
//! statement and one commit), the finalizer's schedule of looks ([`due_for_look`],
//! [`retry_look`]), the look-up of an S3 event's files ([`pending_by_upload_key`]) and
//! the database's clock ([`now`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::DbError;
use crate::files::{FILE_COLUMNS, FileRow};
use crate::query::{self, FromRow, col};

/// What [`claim`] found.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The file as it was when the claim was tried.
    pub file: FileRow,
    /// True when this caller now holds the claim (the file is pending).
    pub held: bool,
}

/// Whose files a claim may touch; `None` fields do not restrict.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reach<'a> {
    pub organization_id: Option<Uuid>,
    pub workspaces: Option<&'a [Uuid]>,
}

/// How long a completion's claim on a file lasts: `base` for its store calls, plus
/// the time to read `bytes` at `bytes_per_sec` (a completion may stream the whole
/// object through SHA-256, and a large file must not lose its claim mid-read). A
/// claim counts the file's declared size, never a reservation held for an undeclared
/// one (the workspace's largest file): [`extend`] adds the real size once known, so a
/// crashed completion of an undeclared upload holds its file for `base` only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lease {
    pub base: Duration,
    pub bytes_per_sec: f64,
}

impl Lease {
    /// The lease of a file of `bytes`.
    #[must_use]
    pub fn of(&self, bytes: i64) -> Duration {
        #[allow(clippy::cast_precision_loss)] // A lease need not be exact to the byte.
        let read = bytes.max(0) as f64 / self.bytes_per_sec.max(1.0);
        self.base + Duration::from_secs_f64(read)
    }
}

/// Tries to claim the pending files `ids` for their [`Lease`] (of their declared
/// sizes) under `token`, in one
/// statement. Returns each of them that exists within `reach` and whether this caller
/// now holds its claim; a file claimed by another completion comes back with
/// `held: false`, one that is no longer pending too. Files out of reach are left
/// untouched and not returned.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn claim(
    pool: &Pool,
    ids: &[Uuid],
    reach: Reach<'_>,
    token: Uuid,
    lease: Lease,
) -> Result<Vec<Claimed>, DbError> {
    let request = ClaimRequest::new(ids, reach, token, lease);
    Ok(claim_many(pool, std::slice::from_ref(&request))
        .await?
        .pop()
        .unwrap_or_default())
}

/// One completion's claim, owned, so that claims of concurrent completions can be made
/// in one statement ([`claim_many`]).
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub ids: Vec<Uuid>,
    /// [`Reach::organization_id`].
    pub organization_id: Option<Uuid>,
    /// [`Reach::workspaces`].
    pub workspaces: Option<Vec<Uuid>>,
    pub token: Uuid,
    pub lease: Lease,
}

impl ClaimRequest {
    /// The claim of `ids` within `reach` under `token` for `lease`, owned.
    #[must_use]
    pub fn new(ids: &[Uuid], reach: Reach<'_>, token: Uuid, lease: Lease) -> Self {
        Self {
            ids: ids.to_vec(),
            organization_id: reach.organization_id,
            workspaces: reach.workspaces.map(<[Uuid]>::to_vec),
            token,
            lease,
        }
    }
}

/// Makes the claims of several completions in one statement (one round trip, one
/// commit): each request's answer is what [`claim`] would have answered it, in the
/// order of `requests`. When two requests name one free file, the earlier one holds
/// it and the later one finds it claimed, as if their statements had run one after
/// the other.
///
/// # Errors
/// [`DbError`] on database failure (no claim was made).
#[tracing::instrument(skip_all, fields(requests = requests.len()), err(Display, level = "warn"))]
pub async fn claim_many(
    pool: &Pool,
    requests: &[ClaimRequest],
) -> Result<Vec<Vec<Claimed>>, DbError> {
    // One row per (request, file), and one per (request, workspace it may touch).
    let (mut reqs, mut ids, mut orgs, mut tokens) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut bases, mut rates, mut limited) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ws_reqs, mut ws_ids) = (Vec::new(), Vec::new());
    for (n, r) in (0i32..).zip(requests) {
        for id in &r.ids {
            reqs.push(n);
            ids.push(*id);
            orgs.push(r.organization_id);
            tokens.push(r.token);
            bases.push(r.lease.base.as_secs_f64());
            rates.push(r.lease.bytes_per_sec);
            limited.push(r.workspaces.is_some());
        }
        for ws in r.workspaces.iter().flatten() {
            ws_reqs.push(n);
            ws_ids.push(*ws);
        }
    }
    let rows = query::query(
        pool,
        &format!(
            "WITH q AS (
                SELECT * FROM unnest($1::int4[], $2::uuid[], $3::uuid[], $4::uuid[], $5::float8[],
                                     $6::float8[], $7::bool[])
                    AS q(req, id, org, token, base, rate, limited)
             ), reach AS (
                SELECT * FROM unnest($8::int4[], $9::uuid[]) AS r(req, ws)
             ), target AS (
                SELECT q.* FROM q JOIN files f ON f.id = q.id JOIN workspaces w ON w.id = f.workspace_id
                 WHERE f.id = ANY($2) AND (q.org IS NULL OR w.organization_id = q.org)
                   AND (NOT q.limited OR EXISTS (
                        SELECT 1 FROM reach r WHERE r.req = q.req AND r.ws = f.workspace_id))
             ), first AS (
                -- A row is updated once a statement: the earliest request naming a
                -- file is the one that may claim it.
                SELECT DISTINCT ON (id) * FROM target ORDER BY id, req
             ), claimed AS (
                UPDATE files SET completion_claim = first.token,
                                 completion_claim_until = now() + make_interval(secs =>
                                     first.base + greatest(coalesce(files.size_bytes, 0), 0)::float8
                                                  / greatest(first.rate, 1.0))
                  FROM first
                 -- By primary key: joined to `first` alone, the planner may walk every
                 -- pending file.
                 WHERE files.id = ANY($2) AND files.id = first.id AND files.status = 'pending'
                   AND (files.completion_claim_until IS NULL OR files.completion_claim_until < now())
                   -- Bytes streaming through filegate are not inspected half-written.
                   AND (files.ingest_until IS NULL OR files.ingest_until < now())
                RETURNING files.id, first.req
             )
             SELECT t.req, {FILE_COLUMNS},
                    EXISTS (SELECT 1 FROM claimed c WHERE c.id = t.id AND c.req = t.req) AS held
               FROM target t JOIN files f ON f.id = t.id JOIN workspaces w ON w.id = f.workspace_id
              WHERE f.id = ANY($2)"
        ),
        &[&reqs, &ids, &orgs, &tokens, &bases, &rates, &limited, &ws_reqs, &ws_ids],
    )
    .await?;
    let mut answers: Vec<Vec<Claimed>> = vec![Vec::new(); requests.len()];
    for row in &rows {
        let req: i32 = col(row, "req")?;
        let slot = usize::try_from(req)
            .ok()
            .and_then(|n| answers.get_mut(n))
            .ok_or_else(|| DbError::Decode {
                column: "req",
                source: format!("no claim request {req}").into(),
            })?;
        slot.push(Claimed::from_row(row)?);
    }
    Ok(answers)
}

impl FromRow for Claimed {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            file: FileRow::from_row(row)?,
            held: col(row, "held")?,
        })
    }
}

/// Gives the claims `token` holds on `ids` back without a transition (the object was
/// not there yet, or the store failed), so the next completion need not wait for the
/// lease to run out.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn release(pool: &Pool, ids: &[Uuid], token: Uuid) -> Result<(), DbError> {
    query::execute(
        pool,
        "UPDATE files SET completion_claim = NULL, completion_claim_until = NULL
          WHERE id = ANY($1) AND completion_claim = $2",
        &[&ids, &token],
    )
    .await?;
    Ok(())
}

/// Extends the claim `token` holds on the pending file `id` to `lease` from now (never
/// shortening it): a file of undeclared size is claimed for the base lease only, and
/// its completion holds it for its real size once a HEAD told it. `false` when the
/// claim is no longer this one.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn extend(pool: &Pool, id: Uuid, token: Uuid, lease: Duration) -> Result<bool, DbError> {
    let n = query::execute(
        pool,
        "UPDATE files SET completion_claim_until =
                greatest(completion_claim_until, now() + make_interval(secs => $3))
          WHERE id = $1 AND completion_claim = $2 AND status = 'pending'",
        &[&id, &token, &lease.as_secs_f64()],
    )
    .await?;
    Ok(n == 1)
}

/// Where a claimed file goes out of pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Its upload passed every check: `size` bytes, served as the version `etag`.
    Ready { size: i64, etag: String },
    /// Its upload failed a check, for `reason`.
    Rejected { reason: String },
}

/// One file's transition: out of `pending`, under the claim `token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub id: Uuid,
    pub token: Uuid,
    pub target: Target,
}

/// A file a settling statement moved, and the claim whose transition moved it. One
/// statement may carry two transitions of one file (a lapsed claim's and the new
/// claim's): only the one under the file's claim moves it, and only its completion
/// may act on the result.
#[derive(Debug, Clone)]
pub struct Settled {
    pub token: Uuid,
    pub file: FileRow,
}

impl FromRow for Settled {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            token: col(row, "settled_by")?,
            file: FileRow::from_row(row)?,
        })
    }
}

/// Settles claimed files in one guarded statement (one commit however many):
///
/// - pending → ready: the reservation becomes usage settled to the real size, and the
///   upload object is queued for one deletion once its URL has expired plus `margin`
///   (until then a PUT could bring it back);
/// - pending → rejected: the reservation is released, and the upload (with any copy at
///   the object key) is queued for deletion now and again once its URL has expired
///   plus `margin`.
///
/// A file moves only while it is still pending under its transition's claim (and, to
/// become ready, only when its real size fits what it reserved): the rows returned are
/// the files that moved, as they are now, each with the claim that moved it. Files are locked in id order; settlements
/// whose files span several workspaces can still meet in opposite orders there, and a
/// deadlock Postgres breaks is retried (the statement is atomic, so a retry is safe).
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, fields(files = transitions.len()), err(Display, level = "warn"))]
pub async fn settle(
    pool: &Pool,
    transitions: &[Transition],
    margin: Duration,
) -> Result<Vec<Settled>, DbError> {
    if transitions.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = transitions.iter().map(|t| t.id).collect();
    let tokens: Vec<Uuid> = transitions.iter().map(|t| t.token).collect();
    let (mut sizes, mut etags, mut reasons) = (Vec::new(), Vec::new(), Vec::new());
    for t in transitions {
        let (size, etag, reason) = match &t.target {
            Target::Ready { size, etag } => (Some(*size), Some(etag.as_str()), None),
            Target::Rejected { reason } => (None, None, Some(reason.as_str())),
        };
        sizes.push(size);
        etags.push(etag);
        reasons.push(reason);
    }
    let sql = format!(
        "WITH t AS (
                SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int8[], $4::text[], $5::text[])
                    AS t(id, token, size, etag, reason)
             ), locked AS (
                SELECT id, workspace_id, reserved_bytes, completion_claim FROM files
                 WHERE id = ANY($1) AND status = 'pending'
                 ORDER BY id
                 FOR UPDATE
             ), old AS (
                SELECT l.id, l.workspace_id, l.reserved_bytes AS held, t.token, t.size, t.etag, t.reason
                  FROM locked l JOIN t ON t.id = l.id
                 WHERE l.completion_claim = t.token
                   AND (t.reason IS NOT NULL OR t.size <= l.reserved_bytes)
             ), per_ws AS (
                SELECT workspace_id, sum(held)::int8 AS held,
                       coalesce(sum(size) FILTER (WHERE reason IS NULL), 0)::int8 AS used,
                       count(*) AS settled, count(*) FILTER (WHERE reason IS NOT NULL) AS rejected
                  FROM old GROUP BY workspace_id
             ), w AS (
                UPDATE workspaces w
                   SET reserved_bytes = w.reserved_bytes - per_ws.held,
                       used_bytes = w.used_bytes + per_ws.used,
                       pending_files = w.pending_files - per_ws.settled,
                       live_files = w.live_files - per_ws.rejected
                  FROM per_ws
                 WHERE w.id = per_ws.workspace_id
                RETURNING w.id, w.organization_id
             ), f AS (
                UPDATE files
                   SET status = CASE WHEN old.reason IS NULL THEN 'ready' ELSE 'rejected' END,
                       size_bytes = coalesce(old.size, files.size_bytes),
                       reserved_bytes = coalesce(old.size, 0),
                       etag = coalesce(old.etag, files.etag),
                       rejection_reason = old.reason,
                       completion_claim = NULL, completion_claim_until = NULL, next_check_at = NULL,
                       completed_at = now(), updated_at = now()
                  -- Only files whose workspace took the change: counters and rows
                  -- move together or not at all.
                  FROM old JOIN w ON w.id = old.workspace_id
                 WHERE files.id = ANY($1) AND files.id = old.id
                RETURNING files.*, old.token AS settled_by
             ), ready_deletions AS (
                -- A ready file's upload, once its URL can no longer bring it back.
                INSERT INTO object_deletions (object_key, due_at, final_after)
                SELECT upload_key, t, t FROM f,
                       greatest(f.upload_expires_at + make_interval(secs => $6), now()) AS t
                 WHERE f.status = 'ready' AND f.upload_key <> f.object_key
                ON CONFLICT (object_key) DO UPDATE
                   SET final_after = greatest(object_deletions.final_after, excluded.final_after)
             ), rejected_deletions AS (
                -- A rejected file's upload, and a copy an earlier attempt may have made
                -- to the object key.
                INSERT INTO object_deletions (object_key, final_after, multipart_upload_id)
                SELECT k.key, k.final_after, k.upload_id FROM f,
                  LATERAL (
                    SELECT f.upload_key, greatest(f.upload_expires_at + make_interval(secs => $6), now()),
                           f.multipart_upload_id
                    UNION ALL
                    SELECT f.object_key, now(), NULL WHERE f.object_key <> f.upload_key
                  ) AS k(key, final_after, upload_id)
                 WHERE f.status = 'rejected'
                ON CONFLICT (object_key) DO UPDATE
                   SET due_at = now(), final_after = greatest(object_deletions.final_after, excluded.final_after),
                       multipart_upload_id = coalesce(excluded.multipart_upload_id, object_deletions.multipart_upload_id)
             )
             SELECT {FILE_COLUMNS}, f.settled_by FROM f JOIN w ON w.id = f.workspace_id"
    );
    let margin = margin.as_secs_f64();
    let mut attempt = 1;
    loop {
        match query::query(
            pool,
            &sql,
            &[&ids, &tokens, &sizes, &etags, &reasons, &margin],
        )
        .await
        {
            Ok(rows) => return query::all(&rows),
            Err(e) if e.is_deadlock() && attempt < SETTLE_ATTEMPTS => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Runs of a settling statement Postgres chose as a deadlock's victim, at most.
const SETTLE_ATTEMPTS: usize = 3;

/// How the finalizer paces its looks at one pending file.
#[derive(Debug, Clone, Copy)]
pub struct LookSchedule {
    /// The shortest gap between two looks (and the delay of the first).
    pub min_interval: Duration,
    /// The longest gap: looks back off as the file ages, up to this.
    pub max_interval: Duration,
    /// The last look happens this long after the upload URL expired.
    pub after_expiry: Duration,
}

/// A pending file due for a look.
#[derive(Debug, Clone)]
pub struct DueFile {
    pub id: Uuid,
    pub upload_key: String,
    /// A multipart file's upload and part count (its parts are looked at instead of
    /// the object).
    pub multipart: Option<(String, i32)>,
}

/// Claims up to `batch` pending files whose look is due and schedules each one's next
/// look in the same statement: the gap is the file's age, kept between `min_interval`
/// and `max_interval`; a look that would fall past the URL's expiry happens
/// `after_expiry` past it instead, and is the last. Another replica skips the rows this
/// one holds.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn due_for_look(
    pool: &Pool,
    batch: i64,
    schedule: LookSchedule,
) -> Result<Vec<DueFile>, DbError> {
    query::query(
        pool,
        "UPDATE files f SET next_check_at = CASE
                WHEN now() >= f.upload_expires_at THEN NULL
                WHEN now() + make_interval(secs => least(greatest(
                         extract(epoch FROM now() - f.created_at)::float8, $2), $3))
                     < f.upload_expires_at
                    THEN now() + make_interval(secs => least(greatest(
                         extract(epoch FROM now() - f.created_at)::float8, $2), $3))
                ELSE f.upload_expires_at + make_interval(secs => $4)
            END
          WHERE f.id IN (
            SELECT id FROM files WHERE status = 'pending' AND next_check_at <= now()
             ORDER BY next_check_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING f.id, f.upload_key, f.multipart_upload_id, f.part_count",
        &[
            &batch,
            &schedule.min_interval.as_secs_f64(),
            &schedule.max_interval.as_secs_f64(),
            &schedule.after_expiry.as_secs_f64(),
        ],
    )
    .await
    .and_then(|rows| query::all(&rows))
}

impl FromRow for DueFile {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            id: col(row, "id")?,
            upload_key: col(row, "upload_key")?,
            multipart: col::<Option<String>>(row, "multipart_upload_id")?
                .zip(col::<Option<i32>>(row, "part_count")?),
        })
    }
}

/// After a failed look, looks at a pending file again within `delay` if its schedule
/// had no look left (the one that failed was its last), as long as the file is pending.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn retry_look(pool: &Pool, id: Uuid, delay: Duration) -> Result<(), DbError> {
    query::execute(
        pool,
        "UPDATE files SET next_check_at = now() + make_interval(secs => $2)
          WHERE id = $1 AND status = 'pending' AND next_check_at IS NULL",
        &[&id, &delay.as_secs_f64()],
    )
    .await?;
    Ok(())
}

/// Of the files `ids`, the pending ones whose upload key is among `keys` (an S3 event
/// names objects; a key names its file, so the look-up is by id).
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn pending_by_upload_key(
    pool: &Pool,
    ids: &[Uuid],
    keys: &[String],
) -> Result<Vec<Uuid>, DbError> {
    query::query(
        pool,
        "SELECT id FROM files WHERE id = ANY($1::uuid[]) AND status = 'pending'
            AND upload_key = ANY($2::text[])",
        &[&ids, &keys],
    )
    .await?
    .iter()
    .map(|r| col(r, "id"))
    .collect()
}

/// The database's clock (claims and schedules are judged by it, not by replicas').
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn now(pool: &Pool) -> Result<DateTime<Utc>, DbError> {
    col(
        &query::query_one(pool, "SELECT now() AS now", &[]).await?,
        "now",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large file keeps its claim for as long as reading it whole may take.
    #[test]
    fn a_lease_grows_with_the_bytes_a_completion_may_read() {
        let lease = Lease {
            base: Duration::from_secs(24),
            bytes_per_sec: 8.0 * 1024.0 * 1024.0,
        };
        assert_eq!(lease.of(0), Duration::from_secs(24));
        assert_eq!(lease.of(-5), Duration::from_secs(24));
        assert_eq!(lease.of(200 << 20), Duration::from_secs(49));
        assert_eq!(lease.of(5 << 40), Duration::from_secs(24 + 640 * 1024));
    }
}
