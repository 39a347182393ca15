//! The reaper: expires abandoned uploads (releasing their reservations), deletes queued
//! objects, forgets idempotency records past their 24 hours and settled (rejected,
//! expired) files past their retention. It runs in every
//! replica (`--reaper-interval-secs`) and as `filegate reap --once` for cron; any number
//! of them may run at once, because every step claims rows with `SKIP LOCKED` and moves
//! them with guarded statements.

use std::time::Duration;

use filegate_db::{DbError, Pool, lifecycle};
use filegate_storage::Storage;

use super::Job;
use crate::metrics::{self, ReaperAction};
use crate::service::uploads::{self, SweepError};
use crate::settings::ReaperSettings;

/// How long a claimed deletion is held before another reaper may retry it.
const DELETION_LEASE: Duration = Duration::from_secs(60);
/// Expiries and deletions go a batch at a time, each with store calls to follow;
/// stale idempotency records and idle rate-limit buckets are rows one statement
/// deletes with nothing to do in the store, so a pass takes this many batches' worth
/// of each.
const PURGE_BATCHES: i64 = 10;
const EVICT_BATCHES: i64 = 100;
/// Most batches of one kind per run, so one run stays short.
const MAX_BATCHES: usize = 100;

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ReapReport {
    /// Pending files expired (reservations released).
    pub expired: u64,
    /// Objects the store confirmed deleted.
    pub objects_deleted: u64,
    /// Deletions that failed and will be retried.
    pub deletion_failures: u64,
    /// Idempotency records forgotten.
    pub idempotency_purged: u64,
    /// Rejected and expired files' rows deleted after `--settled-retention-secs`.
    pub settled_purged: u64,
    /// Delivered and failed webhook deliveries forgotten after
    /// `--settled-retention-secs`.
    pub deliveries_purged: u64,
    /// Refilled (idle) buckets dropped from the `postgres` rate-limit store.
    pub rate_limit_buckets_evicted: u64,
    /// Multipart uploads under filegate's keys that no pending file owns, aborted
    /// (those started more than `--upload-margin-secs` ago).
    pub multipart_aborted: u64,
    /// Aborts of such uploads, or listings of them, that failed (retried next pass).
    pub multipart_failures: u64,
}

/// The reaper (see the module docs).
#[derive(Debug)]
pub struct Reaper {
    pool: Pool,
    storage: Storage,
    settings: ReaperSettings,
}

impl Reaper {
    #[must_use]
    pub fn new(pool: Pool, storage: Storage, settings: ReaperSettings) -> Self {
        Self {
            pool,
            storage,
            settings,
        }
    }
}

impl Job for Reaper {
    type Report = ReapReport;
    type Error = DbError;
    const NAME: &'static str = "reaper";

    /// One pass over everything due; object-store failures are counted and retried
    /// later, a database failure ends the pass.
    async fn run_once(&self) -> Result<ReapReport, DbError> {
        reap(&self.pool, &self.storage, &self.settings).await
    }

    fn noteworthy(report: &ReapReport) -> bool {
        *report != ReapReport::default()
    }
}

async fn reap(
    pool: &Pool,
    storage: &Storage,
    settings: &ReaperSettings,
) -> Result<ReapReport, DbError> {
    let mut report = ReapReport::default();
    let batch = settings.reaper_batch;
    for _ in 0..MAX_BATCHES {
        let n = lifecycle::expire_batch(pool, settings.reaper_grace, settings.upload_margin, batch)
            .await?;
        report.expired += n;
        if n < u64::try_from(batch).unwrap_or(0) {
            break;
        }
    }
    for _ in 0..MAX_BATCHES {
        let keys = lifecycle::claim_deletions(pool, batch, DELETION_LEASE).await?;
        for deletion in &keys {
            let key = deletion.object_key.as_str();
            // A multipart upload goes first, so no assembly can bring the object back.
            let aborted = match &deletion.multipart_upload_id {
                Some(id) => storage.abort_multipart(key, id).await,
                None => Ok(()),
            };
            match aborted.and(storage.delete(key).await) {
                Ok(()) => {
                    lifecycle::finish_deletion(pool, key).await?;
                    report.objects_deleted += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, key, "object deletion failed; will retry");
                    report.deletion_failures += 1;
                }
            }
        }
        if keys.len() < usize::try_from(batch).unwrap_or(0) || report.deletion_failures > 0 {
            break;
        }
    }
    let cutoff = chrono::Utc::now()
        - chrono::Duration::from_std(settings.upload_margin).unwrap_or(chrono::Duration::MAX);
    match uploads::sweep_uploads(pool, storage, cutoff, false).await {
        Ok(sweep) => {
            report.multipart_aborted = sweep.aborted;
            report.multipart_failures = sweep.failures;
        }
        Err(SweepError::Database(e)) => return Err(e),
        Err(e) => {
            tracing::warn!(error = %e, "the sweep of multipart uploads failed; will retry");
            report.multipart_failures += 1;
        }
    }
    report.idempotency_purged =
        lifecycle::purge_idempotency(pool, batch.saturating_mul(PURGE_BATCHES)).await?;
    for _ in 0..MAX_BATCHES {
        let n = lifecycle::purge_settled(pool, settings.settled_retention, batch).await?;
        report.settled_purged += n;
        if n < u64::try_from(batch).unwrap_or(0) {
            break;
        }
    }
    for _ in 0..MAX_BATCHES {
        let n = filegate_db::webhooks::purge(pool, settings.settled_retention, batch).await?;
        report.deliveries_purged += n;
        if n < u64::try_from(batch).unwrap_or(0) {
            break;
        }
    }
    report.rate_limit_buckets_evicted =
        filegate_db::ratelimit::evict_full(pool, batch.saturating_mul(EVICT_BATCHES)).await?;
    for (action, n) in [
        (ReaperAction::Expired, report.expired),
        (ReaperAction::ObjectDeleted, report.objects_deleted),
        (ReaperAction::DeletionFailed, report.deletion_failures),
        (
            ReaperAction::MultipartSweepFailed,
            report.multipart_failures,
        ),
        (ReaperAction::IdempotencyPurged, report.idempotency_purged),
        (ReaperAction::SettledPurged, report.settled_purged),
        (ReaperAction::DeliveriesPurged, report.deliveries_purged),
        (
            ReaperAction::RateLimitBucketEvicted,
            report.rate_limit_buckets_evicted,
        ),
    ] {
        metrics::reaper(action, n);
    }
    Ok(report)
}
