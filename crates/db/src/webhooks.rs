//! Webhooks: endpoints per workspace, and the outbox of their deliveries.
//!
//! Deliveries are written by triggers on `files` (migration V14) in the statement that
//! moves a file, one per subscribed endpoint; nothing here writes an event. The
//! delivery workers claim due deliveries ([`claim_due`]) with `SKIP LOCKED` under a
//! lease (a worker that dies leaves its deliveries due again once the lease ran out),
//! and settle each attempt ([`delivered`], [`attempt_failed`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::DbError;
use crate::files::{FILE_COLUMNS, FileRow};
use crate::query::{self, FromRow, col};

/// Most endpoints one workspace may have.
pub const MAX_ENDPOINTS: i64 = 16;

/// An endpoint's row (its secrets are read only by the delivery worker and rotation).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ENDPOINT_COLUMNS: &str = "id, workspace_id, url, event_types, enabled, disabled_reason, \
     CASE WHEN previous_secret_until > now() THEN previous_secret_until END AS previous_secret_until, \
     last_success_at, created_at, updated_at";

impl FromRow for Endpoint {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            id: col(row, "id")?,
            workspace_id: col(row, "workspace_id")?,
            url: col(row, "url")?,
            event_types: col(row, "event_types")?,
            enabled: col(row, "enabled")?,
            disabled_reason: col(row, "disabled_reason")?,
            previous_secret_until: col(row, "previous_secret_until")?,
            last_success_at: col(row, "last_success_at")?,
            created_at: col(row, "created_at")?,
            updated_at: col(row, "updated_at")?,
        })
    }
}

/// A new endpoint.
#[derive(Debug, Clone)]
pub struct NewEndpoint<'a> {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub url: &'a str,
    pub event_types: &'a [String],
    pub enabled: bool,
    pub secret: &'a str,
}

/// Creates an endpoint; `None` when the workspace has [`MAX_ENDPOINTS`] already.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn create(pool: &Pool, new: &NewEndpoint<'_>) -> Result<Option<Endpoint>, DbError> {
    let row = query::query_opt(
        pool,
        &format!(
            "INSERT INTO webhook_endpoints (id, workspace_id, url, event_types, enabled, secret)
             SELECT $1, $2, $3, $4, $5, $6
              WHERE (SELECT count(*) FROM webhook_endpoints WHERE workspace_id = $2) < $7
             RETURNING {ENDPOINT_COLUMNS}"
        ),
        &[
            &new.id,
            &new.workspace_id,
            &new.url,
            &new.event_types,
            &new.enabled,
            &new.secret,
            &MAX_ENDPOINTS,
        ],
    )
    .await?;
    query::one(row.as_ref())
}

/// The endpoints of a workspace, oldest first.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn list(pool: &Pool, workspace_id: Uuid) -> Result<Vec<Endpoint>, DbError> {
    let rows = query::query(
        pool,
        &format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE workspace_id = $1
              ORDER BY created_at, id"
        ),
        &[&workspace_id],
    )
    .await?;
    query::all(&rows)
}

/// One endpoint of a workspace.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn get(pool: &Pool, workspace_id: Uuid, id: Uuid) -> Result<Option<Endpoint>, DbError> {
    let row = query::query_opt(
        pool,
        &format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1 AND workspace_id = $2"
        ),
        &[&id, &workspace_id],
    )
    .await?;
    query::one(row.as_ref())
}

/// What an update changes (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch<'a> {
    pub url: Option<&'a str>,
    pub event_types: Option<&'a [String]>,
    pub enabled: Option<bool>,
}

/// Changes an endpoint; enabling it clears its `disabled_reason`. `None` when the
/// workspace has no such endpoint.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn update(
    pool: &Pool,
    workspace_id: Uuid,
    id: Uuid,
    patch: &EndpointPatch<'_>,
) -> Result<Option<Endpoint>, DbError> {
    let row = query::query_opt(
        pool,
        &format!(
            "UPDATE webhook_endpoints
                SET url = coalesce($3, url), event_types = coalesce($4, event_types),
                    enabled = coalesce($5, enabled),
                    disabled_reason = CASE WHEN coalesce($5, enabled) THEN NULL ELSE disabled_reason END,
                    updated_at = now()
              WHERE id = $1 AND workspace_id = $2
             RETURNING {ENDPOINT_COLUMNS}"
        ),
        &[&id, &workspace_id, &patch.url, &patch.event_types, &patch.enabled],
    )
    .await?;
    query::one(row.as_ref())
}

/// Deletes an endpoint and its deliveries; `false` when there was none.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn delete(pool: &Pool, workspace_id: Uuid, id: Uuid) -> Result<bool, DbError> {
    let n = query::execute(
        pool,
        "DELETE FROM webhook_endpoints WHERE id = $1 AND workspace_id = $2",
        &[&id, &workspace_id],
    )
    .await?;
    Ok(n == 1)
}

/// Gives an endpoint the secret `secret`; the one it replaces keeps signing deliveries
/// (beside the new one) for `grace`. `None` when the workspace has no such endpoint.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn rotate(
    pool: &Pool,
    workspace_id: Uuid,
    id: Uuid,
    secret: &str,
    grace: Duration,
) -> Result<Option<Endpoint>, DbError> {
    let row = query::query_opt(
        pool,
        &format!(
            "UPDATE webhook_endpoints
                SET previous_secret = secret, secret = $3,
                    previous_secret_until = now() + make_interval(secs => $4), updated_at = now()
              WHERE id = $1 AND workspace_id = $2
             RETURNING {ENDPOINT_COLUMNS}"
        ),
        &[&id, &workspace_id, &secret, &grace.as_secs_f64()],
    )
    .await?;
    query::one(row.as_ref())
}

/// A delivery as the inspection routes show it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_type: String,
    pub seq: i64,
    pub file_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub settled_at: Option<DateTime<Utc>>,
}

const DELIVERY_COLUMNS: &str = "d.id, d.endpoint_id, d.event_type, d.seq, d.file_id, d.occurred_at, \
     d.status, d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_status_code, d.last_error, \
     d.settled_at";

impl FromRow for Delivery {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            id: col(row, "id")?,
            endpoint_id: col(row, "endpoint_id")?,
            event_type: col(row, "event_type")?,
            seq: col(row, "seq")?,
            file_id: col(row, "file_id")?,
            occurred_at: col(row, "occurred_at")?,
            status: col(row, "status")?,
            attempts: col(row, "attempts")?,
            next_attempt_at: col(row, "next_attempt_at")?,
            last_attempt_at: col(row, "last_attempt_at")?,
            last_status_code: col(row, "last_status_code")?,
            last_error: col(row, "last_error")?,
            settled_at: col(row, "settled_at")?,
        })
    }
}

/// An endpoint's most recent deliveries (newest first), of one status or all.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn deliveries(
    pool: &Pool,
    endpoint_id: Uuid,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<Delivery>, DbError> {
    let rows = query::query(
        pool,
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
              WHERE d.endpoint_id = $1 AND ($2::text IS NULL OR d.status = $2)
              ORDER BY d.occurred_at DESC, d.seq DESC LIMIT $3"
        ),
        &[&endpoint_id, &status, &limit],
    )
    .await?;
    query::all(&rows)
}

/// Queues one delivery of an endpoint again (whatever its status): due now, its
/// attempts counted afresh (from the first retry's delay) within a new horizon. `None` when the endpoint has no such delivery.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn redeliver(
    pool: &Pool,
    endpoint_id: Uuid,
    id: Uuid,
) -> Result<Option<Delivery>, DbError> {
    let row = query::query_opt(
        pool,
        &format!(
            "UPDATE webhook_deliveries d
                SET status = 'pending', next_attempt_at = now(), retry_until = NULL, settled_at = NULL,
                    attempts = 0
              WHERE d.id = $1 AND d.endpoint_id = $2
             RETURNING {DELIVERY_COLUMNS}"
        ),
        &[&id, &endpoint_id],
    )
    .await?;
    query::one(row.as_ref())
}

/// Queues again every failed delivery of an endpoint whose event happened at or after
/// `since`; returns how many.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn redeliver_failed(
    pool: &Pool,
    endpoint_id: Uuid,
    since: DateTime<Utc>,
) -> Result<u64, DbError> {
    query::execute(
        pool,
        "UPDATE webhook_deliveries
            SET status = 'pending', next_attempt_at = now(), retry_until = NULL, settled_at = NULL,
                attempts = 0
          WHERE endpoint_id = $1 AND status = 'failed' AND occurred_at >= $2",
        &[&endpoint_id, &since],
    )
    .await
}

/// A delivery a worker claimed: what to send, where, and signed with what.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub url: String,
    /// The endpoint's secret, and the one a rotation replaced while it still signs.
    pub secrets: Vec<String>,
    pub event_type: String,
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
    /// This attempt's number (from 1).
    pub attempt: i32,
    /// The file as its transition left it.
    pub file: FileRow,
}

impl FromRow for Due {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        let mut secrets = vec![col::<String>(row, "secret")?];
        secrets.extend(col::<Option<String>>(row, "previous_secret")?);
        Ok(Self {
            id: col(row, "delivery_id")?,
            endpoint_id: col(row, "endpoint_id")?,
            url: col(row, "url")?,
            secrets,
            event_type: col(row, "event_type")?,
            seq: col(row, "seq")?,
            occurred_at: col(row, "occurred_at")?,
            attempt: col(row, "attempts")?,
            file: FileRow::from_row(row)?,
        })
    }
}

/// Claims up to `limit` due deliveries of enabled endpoints for `lease` (another
/// worker skips them meanwhile, and takes them up once it ran out), counting the
/// attempt; a delivery's first attempt starts its retry horizon of `horizon`.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn claim_due(
    pool: &Pool,
    limit: i64,
    lease: Duration,
    horizon: Duration,
) -> Result<Vec<Due>, DbError> {
    let rows = query::query(
        pool,
        &format!(
            "WITH c AS (
                UPDATE webhook_deliveries d
                   SET attempts = d.attempts + 1, last_attempt_at = now(),
                       next_attempt_at = now() + make_interval(secs => $2),
                       retry_until = coalesce(d.retry_until, now() + make_interval(secs => $3))
                 WHERE d.id IN (
                    SELECT d.id FROM webhook_deliveries d
                      JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled
                     WHERE d.status = 'pending' AND d.next_attempt_at <= now()
                     ORDER BY d.next_attempt_at LIMIT $1
                     FOR UPDATE OF d SKIP LOCKED)
                RETURNING d.*
             )
             SELECT c.id AS delivery_id, c.endpoint_id, c.event_type, c.seq, c.occurred_at, c.attempts,
                    e.url, e.secret,
                    CASE WHEN e.previous_secret_until > now() THEN e.previous_secret END AS previous_secret,
                    {FILE_COLUMNS}
               FROM c JOIN webhook_endpoints e ON e.id = c.endpoint_id
               CROSS JOIN LATERAL jsonb_populate_record(NULL::files, c.file) AS f
               JOIN workspaces w ON w.id = c.workspace_id"
        ),
        &[&limit, &lease.as_secs_f64(), &horizon.as_secs_f64()],
    )
    .await?;
    query::all(&rows)
}

/// Settles deliveries their endpoints acknowledged (each with its 2xx status), in one
/// statement, and notes each endpoint's success (at most once a second: an endpoint's
/// row is not rewritten for every delivery).
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, fields(deliveries = acknowledged.len()), err(Display, level = "warn"))]
pub async fn delivered(pool: &Pool, acknowledged: &[(Uuid, i32)]) -> Result<(), DbError> {
    let (ids, statuses): (Vec<Uuid>, Vec<i32>) = acknowledged.iter().copied().unzip();
    query::execute(
        pool,
        "WITH a AS (
            SELECT * FROM unnest($1::uuid[], $2::int4[]) AS a(id, status)
         ), d AS (
            UPDATE webhook_deliveries SET status = 'delivered', settled_at = now(),
                                          last_status_code = a.status, last_error = NULL
              FROM a
             WHERE webhook_deliveries.id = ANY($1) AND webhook_deliveries.id = a.id
               AND webhook_deliveries.status = 'pending'
            RETURNING webhook_deliveries.endpoint_id
         )
         UPDATE webhook_endpoints e SET last_success_at = now()
          WHERE e.id IN (SELECT endpoint_id FROM d)
            AND (e.last_success_at IS NULL OR e.last_success_at < now() - interval '1 second')",
        &[&ids, &statuses],
    )
    .await?;
    Ok(())
}

/// What a failed attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The attempt is not the delivery's latest (its lease ran out and another worker
    /// took it up, or it was redelivered): nothing changed.
    Stale,
    /// The delivery is tried again after the delay.
    Retried,
    /// Its horizon ran out: it failed for good, and its endpoint, when it had not
    /// acknowledged a delivery since this one's first attempt, was disabled.
    Failed { endpoint_disabled: bool },
}

/// Records attempt `attempt` of a delivery as failed (`status` when the endpoint
/// answered, `error` saying why): it is due again after `delay` unless that falls past
/// its retry horizon, when it fails for good, and its endpoint is disabled if no
/// delivery of it succeeded since this one's first attempt (`horizon` before the end of
/// its retries). An attempt that is not the delivery's latest (its lease ran out and
/// another worker took it up) changes nothing.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn attempt_failed(
    pool: &Pool,
    id: Uuid,
    attempt: i32,
    status: Option<i32>,
    error: &str,
    delay: Duration,
    horizon: Duration,
) -> Result<Failure, DbError> {
    let row = query::query_opt(
        pool,
        "WITH d AS (
            UPDATE webhook_deliveries
               SET status = CASE WHEN now() + make_interval(secs => $5) > retry_until
                                 THEN 'failed' ELSE 'pending' END,
                   next_attempt_at = now() + make_interval(secs => $5),
                   settled_at = CASE WHEN now() + make_interval(secs => $5) > retry_until THEN now() END,
                   last_status_code = $3, last_error = $4
             WHERE id = $1 AND status = 'pending' AND attempts = $2
            RETURNING status, endpoint_id, retry_until
         ), e AS (
            UPDATE webhook_endpoints e
               SET enabled = false, updated_at = now(),
                   disabled_reason = 'deliveries failed for ' || $6::text || ' seconds without a success; the last: '
                                     || left($4, 200)
              FROM d
             WHERE d.status = 'failed' AND e.id = d.endpoint_id AND e.enabled
               AND (e.last_success_at IS NULL
                    OR e.last_success_at < d.retry_until - make_interval(secs => $7))
            RETURNING e.id
         )
         SELECT d.status, EXISTS (SELECT 1 FROM e) AS disabled FROM d",
        &[
            &id,
            &attempt,
            &status,
            &error,
            &delay.as_secs_f64(),
            &horizon.as_secs().to_string(),
            &horizon.as_secs_f64(),
        ],
    )
    .await?;
    let Some(row) = row else {
        return Ok(Failure::Stale);
    };
    if col::<&str>(&row, "status")? == "failed" {
        Ok(Failure::Failed {
            endpoint_disabled: col(&row, "disabled")?,
        })
    } else {
        Ok(Failure::Retried)
    }
}

/// Deletes up to `batch` delivered or failed deliveries settled more than `age` ago;
/// returns how many.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn purge(pool: &Pool, age: Duration, batch: i64) -> Result<u64, DbError> {
    query::execute(
        pool,
        "DELETE FROM webhook_deliveries WHERE id IN (
            SELECT id FROM webhook_deliveries
             WHERE status <> 'pending' AND settled_at < now() - make_interval(secs => $1)
             LIMIT $2 FOR UPDATE SKIP LOCKED)",
        &[&age.as_secs_f64(), &batch],
    )
    .await
}

/// Deliveries waiting to be delivered (all endpoints).
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn pending_count(pool: &Pool) -> Result<i64, DbError> {
    col(
        &query::query_one(
            pool,
            "SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'pending'",
            &[],
        )
        .await?,
        "n",
    )
}
