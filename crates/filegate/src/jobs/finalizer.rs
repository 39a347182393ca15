//! The finalizer: completes uploads whose clients never call `complete` (Aymara's SDK
//! reserves and PUTs, and stops there). Every replica runs it; each pass claims the
//! pending files whose look is due (`SKIP LOCKED`, so replicas share the work), sends
//! one HEAD per file, and completes those whose upload has arrived together, through
//! the same claim and transition as every other completion path (one claim statement
//! and one settling statement for all of them).
//!
//! Looks are paced per file: the first comes `--finalizer-min-interval-secs` after the
//! reservation, the gaps then grow with the file's age up to
//! `--finalizer-max-interval-secs`, and a last look comes just after the upload URL
//! expired (before the reaper expires the file).

use std::sync::Arc;

use filegate_db::completion::{self, LookSchedule, Reach};
use filegate_db::{DbError, Pool};
use futures_util::StreamExt;
use uuid::Uuid;

use super::Job;
use crate::metrics::{self, Look, Trigger};
use crate::service::completion::{Completer, CompletionError, Outcome};
use crate::settings::ReaperSettings;

/// HEADs in flight at once per pass.
const CONCURRENCY: usize = 8;
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
    schedule: LookSchedule,
    /// Pending files claimed per statement.
    batch: i64,
}

impl Finalizer {
    /// A finalizer completing through `completer`, paced by `settings`.
    #[must_use]
    pub fn new(pool: Pool, completer: Arc<Completer>, settings: &ReaperSettings) -> Self {
        Self {
            pool,
            completer,
            schedule: schedule(settings),
            batch: settings.finalizer_batch,
        }
    }

    /// One batch of due files: one HEAD (or ListParts) each, a few at a time; then the
    /// arrived ones completed together (one claim, one settling statement). How many
    /// were due, and what each look ended with.
    async fn batch(&self) -> Result<(usize, Vec<(Uuid, Looked)>), DbError> {
        let due = completion::due_for_look(&self.pool, self.batch, self.schedule).await?;
        let n = due.len();
        let looks: Vec<_> = futures_util::stream::iter(due)
            .map(|f| async move {
                let multipart = f.multipart.as_ref().map(|(id, n)| (id.as_str(), *n));
                let arrived = self.completer.arrived(&f.upload_key, multipart).await;
                (f.id, arrived)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
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
