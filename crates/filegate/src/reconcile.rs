//! Reconciliation: the bucket against the database.
//!
//! S3 checks a presigned URL's expiry when a request *starts*, so a PUT begun just
//! before expiry can land after its file was expired, rejected or deleted, and after
//! that file's final deletion. Queued deletions cover the usual cases; this pass is the
//! backstop. It lists the bucket, and for filegate's keys (see
//! [`filegate_domain::keys`]):
//!
//! - deletes objects no live file owns, once they are older than the upload URL
//!   lifetime plus `--upload-margin-secs` (never sooner: no upload can still be
//!   heading for them, and no completion is between its copy and its transition);
//! - aborts multipart uploads under filegate's keys that no pending file owns, once
//!   they are as old;
//! - reports ready files whose object is missing (a metric and the report; the rows
//!   are kept: deciding what they mean is an operator's call).
//!
//! Keys filegate does not make are left alone.

use std::time::Duration;

use chrono::{DateTime, Utc};
use filegate_db::reconcile::{self, FIRST, KeyPosition, LAST, ListedKey, MissingObject};
use filegate_db::{DbError, Pool};
use filegate_domain::keys::KeyKind;
use filegate_storage::{Storage, StorageError};
use uuid::Uuid;

/// At most this many missing files are listed in a report (all are counted, up to
/// [`MISSING_PER_PAGE`] per listing page).
const MISSING_LISTED: usize = 1000;
const MISSING_PER_PAGE: i64 = 10_000;

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What one pass found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Objects the bucket listed.
    pub objects_listed: u64,
    /// Listed objects whose keys filegate does not make (left alone).
    pub foreign_objects: u64,
    /// filegate-shaped objects no live file owns.
    pub orphans_found: u64,
    /// Of those, the ones old enough to delete.
    pub orphans_due: u64,
    /// Orphans deleted (0 in a dry run).
    pub orphans_deleted: u64,
    /// Deletions the store refused or failed (tried again next pass).
    pub deletion_failures: u64,
    /// Ready files whose object the bucket does not hold.
    pub missing_objects: u64,
    /// The first of them.
    pub missing: Vec<MissingObject>,
    /// Multipart uploads under filegate's keys that no pending file owns (and old
    /// enough to abort).
    pub orphan_uploads: u64,
    /// Of those, aborted (0 in a dry run).
    pub uploads_aborted: u64,
}

/// One pass. `upload_window` is the longest an upload URL lives (the presign TTL).
///
/// # Errors
/// [`ReconcileError`] when the database or the store fails; nothing is half-done,
/// since every step is a single idempotent deletion.
pub async fn run_once(
    pool: &Pool,
    storage: &Storage,
    upload_window: Duration,
    margin: Duration,
    dry_run: bool,
) -> Result<ReconcileReport, ReconcileError> {
    let mut report = ReconcileReport {
        dry_run,
        ..ReconcileReport::default()
    };
    let started = filegate_db::completion::now(pool).await?;
    let min_age =
        chrono::Duration::from_std(upload_window + margin).unwrap_or(chrono::Duration::MAX);
    let cutoff = started
        .checked_sub_signed(min_age)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    // Object keys list in the order of (workspace, file); `after` is the last one seen.
    let mut after: KeyPosition = FIRST;
    let mut continuation = None;
    loop {
        let page = storage.list_page(continuation).await?;
        report.objects_listed += page.objects.len() as u64;
        let ours: Vec<ListedKey<'_>> = page
            .objects
            .iter()
            .filter_map(|o| {
                filegate_domain::keys::parse(&o.key).map(|p| ListedKey {
                    key: &o.key,
                    file: p.file,
                    upload: p.kind == KeyKind::Upload,
                })
            })
            .collect();
        report.foreign_objects += (page.objects.len() - ours.len()) as u64;
        let owned = reconcile::owned(pool, &ours).await?;
        for object in &page.objects {
            if KeyKind::of(&object.key) == KeyKind::Foreign || owned.contains(object.key.as_str()) {
                continue;
            }
            report.orphans_found += 1;
            if object.last_modified.is_none_or(|t| t >= cutoff) {
                continue;
            }
            report.orphans_due += 1;
            if dry_run {
                continue;
            }
            match storage.delete(&object.key).await {
                Ok(()) => {
                    tracing::info!(key = object.key, "deleted an object no file owns");
                    report.orphans_deleted += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, key = object.key, "could not delete an orphaned object");
                    report.deletion_failures += 1;
                }
            }
        }
        let served: Vec<KeyPosition> = page
            .objects
            .iter()
            .filter_map(|o| filegate_domain::keys::parse(&o.key))
            .filter(|p| p.kind == KeyKind::Object)
            .map(|p| (p.workspace, p.file))
            .collect();
        let last_page = page.continuation.is_none();
        let through = match (last_page, served.last()) {
            (true, _) => LAST,
            (false, Some(last)) => *last,
            // No object key on this page: the next page covers the stretch.
            (false, None) => {
                continuation = page.continuation;
                continue;
            }
        };
        let listed: Vec<Uuid> = served.iter().map(|(_, f)| *f).collect();
        let missing =
            reconcile::missing_in_range(pool, after, through, &listed, started, MISSING_PER_PAGE)
                .await?;
        report.missing_objects += missing.len() as u64;
        for m in missing {
            tracing::warn!(file = %m.file_uuid, key = m.remote_file_path, "a ready file's object is missing");
            if report.missing.len() < MISSING_LISTED {
                report.missing.push(m);
            }
        }
        if last_page {
            break;
        }
        after = through;
        continuation = page.continuation;
    }
    let sweep = crate::multipart::sweep_uploads(pool, storage, cutoff, dry_run)
        .await
        .map_err(|e| match e {
            crate::multipart::SweepError::Database(e) => ReconcileError::Database(e),
            crate::multipart::SweepError::Storage(e) => ReconcileError::Storage(e),
        })?;
    if sweep.unlisted {
        tracing::warn!("the store does not list multipart uploads: orphaned ones are not aborted");
    }
    report.orphan_uploads = sweep.orphaned;
    report.uploads_aborted = sweep.aborted;
    report.deletion_failures += sweep.failures;
    let m = crate::metrics::get();
    for (action, n) in [
        ("listed", report.objects_listed),
        ("orphan_found", report.orphans_found),
        ("orphan_deleted", report.orphans_deleted),
        ("missing", report.missing_objects),
    ] {
        m.reconcile.with_label_values(&[action]).inc_by(n);
    }
    m.missing_objects
        .set(i64::try_from(report.missing_objects).unwrap_or(i64::MAX));
    Ok(report)
}

/// Runs a pass every `interval`, one replica at a time (an advisory lock), until the
/// task is dropped. The first pass comes one interval after start.
pub async fn run_forever(
    pool: Pool,
    storage: Storage,
    interval: Duration,
    upload_window: Duration,
    margin: Duration,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let pass = run_once(&pool, &storage, upload_window, margin, false);
        match reconcile::exclusively(&pool, pass).await {
            Ok(Some(Ok(report))) => tracing::info!(
                listed = report.objects_listed,
                orphans_deleted = report.orphans_deleted,
                missing = report.missing_objects,
                "reconciliation pass"
            ),
            Ok(None) => tracing::debug!("another replica is reconciling"),
            Ok(Some(Err(e))) => {
                tracing::warn!(error = %e, "reconciliation pass failed; will retry")
            }
            Err(e) => tracing::warn!(error = %e, "reconciliation could not start; will retry"),
        }
    }
}
