//! Processing after `ready`: the processors the replicas registered, the job queue
//! (claimed with `SKIP LOCKED` under a lease that heartbeats extend), and the derived
//! objects a finished job leaves, owned by its file's row.
//!
//! A run's record and failure lock the file row first, then the job row, then the
//! workspace row. A deletion locks the file row first too (then the workspace, then the
//! job by its cascade): whichever takes the file row first goes first, and the other
//! waits for it rather than deadlocking.

use std::time::Duration;

use deadpool_postgres::Pool;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::DbError;
use crate::query::{self, FromRow, col};

/// Makes `processor` the processor of each of `content_types`, for every replica's
/// trigger (a type's jobs go to the processor last registered for it).
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn register(pool: &Pool, processor: &str, content_types: &[&str]) -> Result<(), DbError> {
    let types: Vec<&str> = content_types.to_vec();
    query::execute(
        pool,
        "INSERT INTO processors (content_type, processor)
         SELECT t, $2 FROM unnest($1::text[]) AS t
         ON CONFLICT (content_type) DO UPDATE
            SET processor = excluded.processor, registered_at = now()
          WHERE processors.processor IS DISTINCT FROM excluded.processor",
        &[&types, &processor],
    )
    .await
    .map(drop)
}

/// A job a worker claimed: its file and the run it is.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub file_id: Uuid,
    pub workspace_id: Uuid,
    pub processor: String,
    /// The verified version to read.
    pub etag: Option<String>,
    /// The file's object key.
    pub object_key: String,
    pub content_type: String,
    pub size_bytes: Option<i64>,
    pub name: String,
    /// Runs started, this one included.
    pub attempts: i32,
    /// This run's token: only it may finish or extend the job.
    pub run_token: Uuid,
}

impl FromRow for Claimed {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            file_id: col(row, "file_id")?,
            workspace_id: col(row, "workspace_id")?,
            processor: col(row, "processor")?,
            etag: col(row, "etag")?,
            object_key: col(row, "object_key")?,
            content_type: col(row, "content_type")?,
            size_bytes: col(row, "size_bytes")?,
            name: col(row, "name")?,
            attempts: col(row, "attempts")?,
            run_token: col(row, "run_token")?,
        })
    }
}

/// Claims up to `limit` jobs of `processors` for `worker` (the replica): queued ones
/// that are due, and running ones whose lease lapsed (their worker died), each for
/// `lease` from now.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn claim(
    pool: &Pool,
    processors: &[String],
    limit: i64,
    lease: Duration,
    worker: &str,
) -> Result<Vec<Claimed>, DbError> {
    let rows = query::query(
        pool,
        "WITH c AS (
            UPDATE processing_jobs j
               SET state = 'running', attempts = j.attempts + 1, run_token = gen_random_uuid(),
                   lease_until = now() + make_interval(secs => $3), worker = $4, updated_at = now()
             WHERE j.file_id IN (
                SELECT file_id FROM processing_jobs
                 WHERE processor = ANY($1)
                   AND ((state = 'queued' AND run_after <= now())
                        OR (state = 'running' AND lease_until < now()))
                 ORDER BY run_after
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED)
            RETURNING j.*
         )
         SELECT c.file_id, c.processor, c.etag, c.attempts, c.run_token,
                f.workspace_id, f.object_key, f.content_type, f.size_bytes, f.name
           FROM c JOIN files f ON f.id = c.file_id",
        &[&processors, &limit, &lease.as_secs_f64(), &worker],
    )
    .await?;
    query::all(&rows)
}

/// Extends a running job's lease; `false` when the run no longer holds it (another
/// worker took the job over, or the file is gone).
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn heartbeat(
    pool: &Pool,
    file_id: Uuid,
    run_token: Uuid,
    lease: Duration,
) -> Result<bool, DbError> {
    let n = query::execute(
        pool,
        "UPDATE processing_jobs SET lease_until = now() + make_interval(secs => $3), updated_at = now()
          WHERE file_id = $1 AND run_token = $2 AND state = 'running'",
        &[&file_id, &run_token, &lease.as_secs_f64()],
    )
    .await?;
    Ok(n == 1)
}

/// A derived object a run wrote, to record.
#[derive(Debug, Clone)]
pub struct NewDerived {
    pub object_key: String,
    pub kind: String,
    pub seq: i32,
    pub content_type: String,
    pub size_bytes: i64,
}

/// How finishing a run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// The file's processing is complete; its derived objects are its own.
    Completed,
    /// The workspace's quota has no room for the derived objects: the job is dead.
    QuotaFull,
    /// The run no longer holds the job (taken over, or the file is gone): nothing changed.
    Lost,
}

/// Records a run's derived objects and `metadata`, counts their bytes against the
/// workspace's quota (as part of the file's held bytes), and ends the job `done`, in
/// one transaction, if the run still holds it.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, fields(derived = derived.len()), err(Display, level = "warn"))]
pub async fn complete(
    pool: &Pool,
    file_id: Uuid,
    run_token: Uuid,
    metadata: &serde_json::Value,
    derived: &[NewDerived],
) -> Result<Finished, DbError> {
    let bytes: i64 = derived.iter().map(|d| d.size_bytes).sum();
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let Some(file) = tx
        .query_opt(
            "SELECT workspace_id FROM files WHERE id = $1 AND status = 'ready' FOR UPDATE",
            &[&file_id],
        )
        .await?
    else {
        return Ok(Finished::Lost);
    };
    let workspace_id: Uuid = col(&file, "workspace_id")?;
    if !holds(&tx, file_id, run_token).await? {
        return Ok(Finished::Lost);
    }
    let room = tx
        .execute(
            "UPDATE workspaces SET used_bytes = used_bytes + $2
              WHERE id = $1 AND used_bytes + reserved_bytes + $2 <= quota_bytes",
            &[&workspace_id, &bytes],
        )
        .await?;
    if room == 0 {
        let reason = format!(
            "the workspace's quota has no room for the {} derived files ({bytes} bytes)",
            derived.len()
        );
        end_dead(&tx, file_id, &reason).await?;
        tx.commit().await?;
        return Ok(Finished::QuotaFull);
    }
    let keys: Vec<&str> = derived.iter().map(|d| d.object_key.as_str()).collect();
    let kinds: Vec<&str> = derived.iter().map(|d| d.kind.as_str()).collect();
    let seqs: Vec<i32> = derived.iter().map(|d| d.seq).collect();
    let types: Vec<&str> = derived.iter().map(|d| d.content_type.as_str()).collect();
    let sizes: Vec<i64> = derived.iter().map(|d| d.size_bytes).collect();
    tx.execute(
        "INSERT INTO derived_objects (object_key, file_id, kind, seq, content_type, size_bytes)
         SELECT k, $1, kind, seq, t, size
           FROM unnest($2::text[], $3::text[], $4::int4[], $5::text[], $6::int8[]) AS d(k, kind, seq, t, size)",
        &[&file_id, &keys, &kinds, &seqs, &types, &sizes],
    )
    .await?;
    tx.execute(
        "UPDATE files SET reserved_bytes = reserved_bytes + $2, processing = 'completed',
                          processing_error = NULL, media_metadata = $3, updated_at = now()
          WHERE id = $1",
        &[&file_id, &bytes, metadata],
    )
    .await?;
    tx.execute(
        "UPDATE processing_jobs SET state = 'done', run_token = NULL, lease_until = NULL,
                                    last_error = NULL, finished_at = now(), updated_at = now()
          WHERE file_id = $1",
        &[&file_id],
    )
    .await?;
    tx.commit().await?;
    Ok(Finished::Completed)
}

/// Whether run `run_token` still holds the file's job (running under it), which it
/// then locks, after the file row the caller's transaction locked.
async fn holds(
    tx: &deadpool_postgres::Transaction<'_>,
    file_id: Uuid,
    run_token: Uuid,
) -> Result<bool, DbError> {
    let row = tx
        .query_opt(
            "SELECT 1 FROM processing_jobs WHERE file_id = $1 AND run_token = $2 AND state = 'running' FOR UPDATE",
            &[&file_id, &run_token],
        )
        .await?;
    Ok(row.is_some())
}

/// Ends a job dead with `reason` and marks its file's processing failed (the job and
/// file rows are locked by the caller's transaction).
async fn end_dead(
    tx: &deadpool_postgres::Transaction<'_>,
    file_id: Uuid,
    reason: &str,
) -> Result<(), DbError> {
    tx.execute(
        "UPDATE processing_jobs SET state = 'dead', run_token = NULL, lease_until = NULL,
                                    last_error = $2, finished_at = now(), updated_at = now()
          WHERE file_id = $1",
        &[&file_id, &reason],
    )
    .await?;
    tx.execute(
        "UPDATE files SET processing = 'failed', processing_error = $2, updated_at = now() WHERE id = $1",
        &[&file_id, &reason],
    )
    .await?;
    Ok(())
}

/// What became of a failed run's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// Queued again, due after the backoff.
    Retried,
    /// Dead: the file's processing failed with the reason.
    Dead,
    /// The run no longer held the job: nothing changed.
    Lost,
}

/// Ends a run that failed with `reason`: the job is queued again `retry_in` from now,
/// or (`retry_in` `None`) ends dead and the file's processing failed.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn fail(
    pool: &Pool,
    file_id: Uuid,
    run_token: Uuid,
    reason: &str,
    retry_in: Option<Duration>,
) -> Result<Failed, DbError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let file = tx
        .query_opt("SELECT 1 FROM files WHERE id = $1 FOR UPDATE", &[&file_id])
        .await?;
    if file.is_none() || !holds(&tx, file_id, run_token).await? {
        return Ok(Failed::Lost);
    }
    let outcome = if let Some(delay) = retry_in {
        tx.execute(
            "UPDATE processing_jobs SET state = 'queued', run_token = NULL, lease_until = NULL, last_error = $2,
                                        run_after = now() + make_interval(secs => $3), updated_at = now()
              WHERE file_id = $1",
            &[&file_id, &reason, &delay.as_secs_f64()],
        )
        .await?;
        Failed::Retried
    } else {
        end_dead(&tx, file_id, reason).await?;
        Failed::Dead
    };
    tx.commit().await?;
    Ok(outcome)
}

/// The bytes a workspace's quota has room for now.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn room(pool: &Pool, workspace_id: Uuid) -> Result<i64, DbError> {
    let row = query::query_one(
        pool,
        "SELECT greatest(quota_bytes - used_bytes - reserved_bytes, 0) AS room FROM workspaces WHERE id = $1",
        &[&workspace_id],
    )
    .await?;
    col(&row, "room")
}

/// Gives the running jobs `worker` holds back to the queue, due now, the run not
/// counted; how many.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn release(pool: &Pool, worker: &str) -> Result<u64, DbError> {
    query::execute(
        pool,
        "UPDATE processing_jobs SET state = 'queued', attempts = greatest(attempts - 1, 0), run_token = NULL,
                                    lease_until = NULL, run_after = now(), updated_at = now()
          WHERE worker = $1 AND state = 'running'",
        &[&worker],
    )
    .await
}

/// Queues processing again for the ready files of processed types, in `workspace` (or
/// all), whose processing failed or never ran (ready before their type had a
/// processor); how many. Their jobs start over, with all their attempts.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn requeue(pool: &Pool, workspace: Option<Uuid>) -> Result<u64, DbError> {
    query::execute(
        pool,
        "WITH f AS (
            SELECT f.id, f.etag, p.processor FROM files f JOIN processors p ON p.content_type = f.content_type
             WHERE f.status = 'ready' AND (f.processing IS NULL OR f.processing = 'failed')
               AND ($1::uuid IS NULL OR f.workspace_id = $1)
             FOR UPDATE OF f
         ), j AS (
            INSERT INTO processing_jobs (file_id, processor, etag)
            SELECT id, processor, etag FROM f
            ON CONFLICT (file_id) DO UPDATE
               SET state = 'queued', attempts = 0, run_after = now(), run_token = NULL, lease_until = NULL,
                   last_error = NULL, finished_at = NULL, processor = excluded.processor, updated_at = now()
             WHERE processing_jobs.state = 'dead'
         )
         UPDATE files SET processing = 'processing', processing_error = NULL, updated_at = now()
           FROM f WHERE files.id = f.id",
        &[&workspace],
    )
    .await
}

/// The keys among `keys` that derived-object rows record.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn recorded(pool: &Pool, keys: &[String]) -> Result<Vec<String>, DbError> {
    let rows = query::query(
        pool,
        "SELECT object_key FROM derived_objects WHERE object_key = ANY($1::text[])",
        &[&keys],
    )
    .await?;
    rows.iter().map(|r| col(r, "object_key")).collect()
}

/// A derived object of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub object_key: String,
    pub seq: i32,
    pub content_type: String,
    pub size_bytes: i64,
}

impl FromRow for Derived {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            object_key: col(row, "object_key")?,
            seq: col(row, "seq")?,
            content_type: col(row, "content_type")?,
            size_bytes: col(row, "size_bytes")?,
        })
    }
}

/// A file's derived objects of `kind`, in order.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn derived(pool: &Pool, file_id: Uuid, kind: &str) -> Result<Vec<Derived>, DbError> {
    let rows = query::query(
        pool,
        "SELECT object_key, seq, content_type, size_bytes FROM derived_objects
          WHERE file_id = $1 AND kind = $2 ORDER BY seq",
        &[&file_id, &kind],
    )
    .await?;
    query::all(&rows)
}

/// The queue's size: jobs queued and jobs running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub queued: i64,
    pub running: i64,
}

/// Counts the jobs not finished (each count reads its partial index, never the done
/// jobs).
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn depth(pool: &Pool) -> Result<QueueDepth, DbError> {
    let row = query::query_one(
        pool,
        "SELECT (SELECT count(*) FROM processing_jobs WHERE state = 'queued') AS queued,
                (SELECT count(*) FROM processing_jobs WHERE state = 'running') AS running",
        &[],
    )
    .await?;
    Ok(QueueDepth {
        queued: col(&row, "queued")?,
        running: col(&row, "running")?,
    })
}
