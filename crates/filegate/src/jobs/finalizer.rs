//! The finalizer: completes uploads whose clients never call `complete` (Aymara's SDK
//! reserves and PUTs, and stops there). Every replica runs it; each pass claims the
//! pending files whose look is due (`SKIP LOCKED`, so replicas share the work), finds
//! which uploads arrived, and completes those together, through the same claim and
//! transition as every other completion path (one claim statement and one settling
//! statement for all of them).
//!
//! Upload keys are `uploads/{workspace}/{uuidv7}`, ordered by time, so one listing of
//! a workspace's folder from its oldest due key answers for every due file of that
//! workspace (up to 1,000 a page, [`LIST_PAGES`] pages): a look costs a listing shared
//! by the files it covers, not a HEAD per file. Files past the page cap get a HEAD
//! each; a multipart file's parts are one ListParts each.
//!
//! Looks are paced per file: the first comes `--finalizer-min-interval-secs` after the
//! reservation, the gaps then grow with the file's age up to
//! `--finalizer-max-interval-secs`, and a last look comes just after the upload URL
//! expired (before the reaper expires the file).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use filegate_db::completion::{self, DueFile, LookSchedule, Reach};
use filegate_db::{DbError, Pool};
use filegate_storage::{Listing, Storage, StorageError};
use futures_util::StreamExt;
use uuid::Uuid;

use super::Job;
use crate::metrics::{self, Look, LookRequest, Trigger};
use crate::service::completion::{Completer, CompletionError, Outcome};
use crate::settings::ReaperSettings;

/// Listings and HEADs in flight at once per pass.
const CONCURRENCY: usize = 8;
/// Most pages of one folder's listing per batch; due files past them get a HEAD each.
const LIST_PAGES: usize = 10;
/// Most batches per pass, so one pass stays short.
const MAX_BATCHES: usize = 20;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FinalizeReport {
    /// Pending files looked at (one HEAD each).
    pub looked: u64,
    /// Files whose upload was there.
    pub arrived: u64,
    /// Files made ready.
    pub ready: u64,
    /// Files rejected (their uploads deleted).
    pub rejected: u64,
    /// Looks that failed (the store or the database); the file is looked at again later.
    pub errors: u64,
}

/// The pacing of looks, from the settings.
#[must_use]
pub fn schedule(settings: &ReaperSettings) -> LookSchedule {
    LookSchedule {
        min_interval: settings.finalizer_min_interval,
        max_interval: settings
            .finalizer_max_interval
            .max(settings.finalizer_min_interval),
        // Half the reaper's grace: after the URL expired, before the file is expired.
        after_expiry: settings.reaper_grace / 2,
    }
}

/// What one look at a due file ended with.
// Short-lived, one per file of a pass: boxing the outcome would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Looked {
    /// Nothing uploaded yet.
    Absent,
    /// Its upload had arrived and was completed (or found settled).
    Completed(Outcome),
    /// The look or the completion failed.
    Failed(CompletionError),
    /// The upload had arrived, but the claim of the batch failed (its cause is
    /// logged once for the batch).
    Unclaimed,
}

/// The finalizer (see the module docs).
#[derive(Debug)]
pub struct Finalizer {
    pool: Pool,
    completer: Arc<Completer>,
    storage: Storage,
    schedule: LookSchedule,
    /// Pending files claimed per statement.
    batch: i64,
}

impl Finalizer {
    /// A finalizer looking in `storage` and completing through `completer`, paced by
    /// `settings`.
    #[must_use]
    pub fn new(
        pool: Pool,
        completer: Arc<Completer>,
        storage: Storage,
        settings: &ReaperSettings,
    ) -> Self {
        Self {
            pool,
            completer,
            storage,
            schedule: schedule(settings),
            batch: settings.finalizer_batch,
        }
    }

    /// One batch of due files: a listing per folder of due uploads (a ListParts per
    /// multipart file), a few at a time; then the arrived ones completed together
    /// (one claim, one settling statement). How many were due, and what each look
    /// ended with.
    async fn batch(&self) -> Result<(usize, Vec<(Uuid, Looked)>), DbError> {
        let due = completion::due_for_look(&self.pool, self.batch, self.schedule).await?;
        let n = due.len();
        let (parts, single): (Vec<DueFile>, Vec<DueFile>) =
            due.into_iter().partition(|f| f.multipart.is_some());
        let mut folders: BTreeMap<String, Vec<DueFile>> = BTreeMap::new();
        for f in single {
            folders.entry(folder(&f.upload_key)).or_default().push(f);
        }
        let listed: Vec<Vec<(Uuid, Result<bool, StorageError>)>> =
            futures_util::stream::iter(folders)
                .map(|(folder, files)| self.look_in(folder, files))
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
        let multipart: Vec<_> = futures_util::stream::iter(parts)
            .map(|f| async move {
                let parts = f.multipart.as_ref().map(|(id, n)| (id.as_str(), *n));
                metrics::finalizer_store_requests(LookRequest::ListParts, 1);
                (f.id, self.completer.arrived(&f.upload_key, parts).await)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let looks = listed.into_iter().flatten().chain(multipart);
        let mut outcomes = Vec::with_capacity(n);
        let mut present = Vec::new();
        for (id, arrived) in looks {
            match arrived {
                Ok(true) => present.push(id),
                Ok(false) => outcomes.push((id, Looked::Absent)),
                Err(e) => outcomes.push((id, Looked::Failed(e.into()))),
            }
        }
        if present.is_empty() {
            return Ok((n, outcomes));
        }
        match self
            .completer
            .complete_many(&present, Reach::default(), Trigger::Finalizer, false)
            .await
        {
            Ok(done) => outcomes.extend(
                done.into_iter()
                    .map(|(id, o)| (id, o.map_or_else(Looked::Failed, Looked::Completed))),
            ),
            Err(e) => {
                // Said once, with its cause; each file counts as a failed look below.
                let error = crate::causes::chain(&e);
                tracing::warn!(
                    error,
                    files = present.len(),
                    "finalizer could not claim arrived uploads; will look again"
                );
                outcomes.extend(present.into_iter().map(|id| (id, Looked::Unclaimed)));
            }
        }
        Ok((n, outcomes))
    }
}

impl Finalizer {
    /// Which of `files` (due, in `folder`) have their upload there: one listing of the
    /// folder from the oldest due key to the newest, and a HEAD for each file past the
    /// page cap. A failed listing fails every file's look.
    async fn look_in(
        &self,
        folder: String,
        mut files: Vec<DueFile>,
    ) -> Vec<(Uuid, Result<bool, StorageError>)> {
        files.sort_by(|a, b| a.upload_key.cmp(&b.upload_key));
        let (first, last) = match (files.first(), files.last()) {
            (Some(a), Some(b)) => (a.upload_key.clone(), b.upload_key.clone()),
            _ => return Vec::new(),
        };
        // Just before the oldest due key: its folder's keys are ASCII.
        let start_after = first.get(..first.len().saturating_sub(1));
        let mut found = HashSet::new();
        let mut through: Option<String> = None;
        let mut listing = Listing::new("upload", LIST_PAGES);
        let mut continuation = None;
        loop {
            let page = self
                .storage
                .list_under(&folder, start_after, continuation)
                .await;
            metrics::finalizer_store_requests(LookRequest::List, 1);
            let page = match page.and_then(|p| {
                listing.page(
                    p.objects.first().map(|o| o.key.clone()),
                    p.objects.last().map(|o| o.key.clone()),
                )?;
                Ok(p)
            }) {
                Ok(page) => page,
                Err(e) => {
                    // One failure, every due file's look: each is retried.
                    let cause = crate::causes::chain(&e);
                    return files
                        .into_iter()
                        .map(|f| (f.id, Err(StorageError::Unavailable(cause.clone().into()))))
                        .collect();
                }
            };
            through = page.objects.last().map(|o| o.key.clone()).or(through);
            found.extend(page.objects.into_iter().map(|o| o.key));
            let past = through.as_deref().is_some_and(|t| t >= last.as_str());
            match page.continuation {
                Some(next) if !past && listing.pages() < LIST_PAGES => continuation = Some(next),
                // The whole folder (or everything up to the newest due key) is listed.
                Some(_) if !past => break,
                _ => {
                    through = Some(last.clone());
                    break;
                }
            }
        }
        let mut looks = Vec::with_capacity(files.len());
        for f in files {
            let covered = through
                .as_deref()
                .is_some_and(|t| f.upload_key.as_str() <= t);
            let arrived = if covered {
                Ok(found.contains(&f.upload_key))
            } else {
                metrics::finalizer_store_requests(LookRequest::Head, 1);
                self.completer.arrived(&f.upload_key, None).await
            };
            looks.push((f.id, arrived));
        }
        looks
    }
}

/// The folder of an upload key: everything up to its last `/`.
fn folder(key: &str) -> String {
    key.rfind('/')
        .map_or_else(String::new, |i| key[..=i].to_owned())
}

impl Job for Finalizer {
    type Report = FinalizeReport;
    type Error = DbError;
    const NAME: &'static str = "finalizer";

    /// One pass over the pending files whose look is due.
    async fn run_once(&self) -> Result<FinalizeReport, DbError> {
        let mut report = FinalizeReport::default();
        for _ in 0..MAX_BATCHES {
            let (n, outcomes) = self.batch().await?;
            for (id, outcome) in outcomes {
                if matches!(outcome, Looked::Failed(_) | Looked::Unclaimed) {
                    // A failed last look would otherwise be no look at all.
                    let retry = completion::retry_look(&self.pool, id, self.schedule.min_interval);
                    if let Err(e) = retry.await {
                        tracing::warn!(error = %e, file = %id, "could not reschedule a failed look");
                    }
                }
                report.looked += 1;
                let look = match outcome {
                    Looked::Absent => Look::Absent,
                    Looked::Completed(o) => {
                        report.arrived += 1;
                        match o {
                            Outcome::Ready(_) => report.ready += 1,
                            Outcome::Rejected(_) => report.rejected += 1,
                            _ => {}
                        }
                        Look::Arrived
                    }
                    Looked::Failed(e) => {
                        let error = crate::causes::chain(&e);
                        tracing::warn!(error, file = %id, "finalizer look failed; will look again");
                        report.errors += 1;
                        Look::Error
                    }
                    Looked::Unclaimed => {
                        report.errors += 1;
                        Look::Error
                    }
                };
                metrics::finalizer_look(look);
            }
            if n < usize::try_from(self.batch).unwrap_or(0) {
                break;
            }
        }
        Ok(report)
    }

    fn noteworthy(report: &FinalizeReport) -> bool {
        report.arrived > 0 || report.errors > 0
    }
}
