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

use super::Job;
use crate::metrics::{self, ReconcileAction};
use crate::service::uploads::{self, SweepError};

/// At most this many missing files are listed in a report (all are counted, up to
/// [`MISSING_PER_PAGE`] per listing page).
const MISSING_LISTED: usize = 1000;
const MISSING_PER_PAGE: i64 = 10_000;
/// The most pages (of up to 1,000 objects) one pass lists: a billion objects. Past
/// them the store is taken to be looping.
const LISTED_PAGES_MAX: usize = 1_000_000;

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

/// Reconciliation (see the module docs).
#[derive(Debug)]
pub struct Reconciler {
    pool: Pool,
    storage: Storage,
    /// The longest an upload URL lives (the presign TTL).
    upload_window: Duration,
    /// `--upload-margin-secs`.
    margin: Duration,
    /// Report what would be deleted; change nothing.
    dry_run: bool,
}

impl Reconciler {
    #[must_use]
    pub fn new(
        pool: Pool,
        storage: Storage,
        upload_window: Duration,
        margin: Duration,
        dry_run: bool,
    ) -> Self {
        Self {
            pool,
            storage,
            upload_window,
            margin,
            dry_run,
        }
    }

    /// One pass, whether or not another process runs one (see [`Job::run_once`] for
    /// the pass that waits its turn).
    ///
    /// # Errors
    /// [`ReconcileError`] when the database or the store fails; nothing is half-done,
    /// since every step is a single idempotent deletion.
    pub async fn pass(&self) -> Result<ReconcileReport, ReconcileError> {
        // On the heap: a pass holds a page of the listing and its look-ups across
        // awaits, more than a thread's stack should carry for one future.
        Box::pin(pass(
            &self.pool,
            &self.storage,
            self.upload_window,
            self.margin,
            self.dry_run,
        ))
        .await
    }
}

impl Job for Reconciler {
    /// `None` when another process was reconciling: nothing was done.
    type Report = Option<ReconcileReport>;
    type Error = ReconcileError;
    const NAME: &'static str = "reconcile";

    /// One pass while holding the reconciliation lock (one process at a time).
    async fn run_once(&self) -> Result<Option<ReconcileReport>, ReconcileError> {
        reconcile::exclusively(&self.pool, self.pass())
            .await?
            .transpose()
    }

    fn noteworthy(report: &Option<ReconcileReport>) -> bool {
        report.is_some()
    }
}

async fn pass(
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
    // Keys list in byte order: each page must start past the last one's end.
    let mut listing = filegate_storage::Listing::new("object", LISTED_PAGES_MAX);
    loop {
        let page = storage.list_page(continuation).await?;
        listing.page(
            page.objects.first().map(|o| o.key.clone()),
            page.objects.last().map(|o| o.key.clone()),
        )?;
        report.objects_listed += page.objects.len() as u64;
        let ours: Vec<ListedKey<'_>> = page
            .objects
            .iter()
            .filter_map(|o| {
                filegate_domain::keys::parse(&o.key).map(|p| ListedKey {
                    key: &o.key,
                    file: p.file,
                    kind: p.kind,
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
    let sweep = uploads::sweep_uploads(pool, storage, cutoff, dry_run)
        .await
        .map_err(|e| match e {
            SweepError::Database(e) => ReconcileError::Database(e),
            SweepError::Storage(e) => ReconcileError::Storage(e),
        })?;
    if sweep.unlisted {
        tracing::warn!("the store does not list multipart uploads: orphaned ones are not aborted");
    }
    report.orphan_uploads = sweep.orphaned;
    report.uploads_aborted = sweep.aborted;
    report.deletion_failures += sweep.failures;
    for (action, n) in [
        (ReconcileAction::Listed, report.objects_listed),
        (ReconcileAction::OrphanFound, report.orphans_found),
        (ReconcileAction::OrphanDeleted, report.orphans_deleted),
        (ReconcileAction::Missing, report.missing_objects),
    ] {
        metrics::reconcile(action, n);
    }
    metrics::missing_objects(report.missing_objects);
    Ok(report)
}
