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

use std::time::Duration;

use filegate_db::completion::{self, LookSchedule};
use futures_util::StreamExt;

use filegate_db::completion::Reach;
use uuid::Uuid;

use crate::completion::{Outcome, Trigger, arrived, complete_many};
use crate::error::ApiError;
use crate::settings::ReaperSettings;
use crate::state::AppState;

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
        min_interval: Duration::from_secs(settings.finalizer_min_interval_secs),
        max_interval: Duration::from_secs(
            settings
                .finalizer_max_interval_secs
                .max(settings.finalizer_min_interval_secs),
        ),
        // Half the reaper's grace: after the URL expired, before the file is expired.
        after_expiry: Duration::from_secs(settings.reaper_grace_secs / 2),
    }
}

/// One pass over the pending files whose look is due.
///
/// # Errors
/// 503 when the database is unreachable; a failed look is counted and retried later.
pub async fn run_once(state: &AppState) -> Result<FinalizeReport, ApiError> {
    let settings = &state.settings.reaper;
    let schedule = schedule(settings);
    let batch = settings.finalizer_batch;
    let mut report = FinalizeReport::default();
    for _ in 0..MAX_BATCHES {
        let due = completion::due_for_look(&state.pool, batch, schedule).await?;
        let n = due.len();
        // One HEAD (or ListParts) per file, a few at a time; then the arrived ones are
        // completed together: one claim, one settling statement.
        let looks: Vec<_> = futures_util::stream::iter(due)
            .map(|f| async move {
                let multipart = f.multipart.as_ref().map(|(id, n)| (id.as_str(), *n));
                let arrived = arrived(state, &f.upload_key, multipart).await;
                (f.id, arrived)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut outcomes: Vec<(Uuid, Result<Option<Outcome>, ApiError>)> = Vec::new();
        let mut present = Vec::new();
        for (id, arrived) in looks {
            match arrived {
                Ok(true) => present.push(id),
                Ok(false) => outcomes.push((id, Ok(None))),
                Err(e) => outcomes.push((id, Err(e))),
            }
        }
        if !present.is_empty() {
            match complete_many(state, &present, Reach::default(), Trigger::Finalizer, false).await
            {
                Ok(done) => outcomes.extend(done.into_iter().map(|(id, o)| (id, o.map(Some)))),
                Err(e) => {
                    tracing::warn!(error = %e, files = present.len(), "finalizer could not claim arrived uploads; will look again");
                    outcomes.extend(present.into_iter().map(|id| {
                        (
                            id,
                            Err(ApiError::unavailable("the database", "the claim failed")),
                        )
                    }));
                }
            }
        }
        for (id, outcome) in outcomes {
            if outcome.is_err() {
                // A failed last look would otherwise be no look at all.
                let retry = completion::retry_look(&state.pool, id, schedule.min_interval);
                if let Err(e) = retry.await {
                    tracing::warn!(error = %e, file = %id, "could not reschedule a failed look");
                }
            }
            report.looked += 1;
            let label = match outcome {
                Ok(None) => "absent",
                Ok(Some(o)) => {
                    report.arrived += 1;
                    match o {
                        Outcome::Ready(_) => report.ready += 1,
                        Outcome::Rejected(_) => report.rejected += 1,
                        _ => {}
                    }
                    "arrived"
                }
                Err(e) => {
                    tracing::warn!(error = %e, "finalizer look failed; will look again");
                    report.errors += 1;
                    "error"
                }
            };
            crate::metrics::get()
                .finalizer_looks
                .with_label_values(&[label])
                .inc();
        }
        if n < usize::try_from(batch).unwrap_or(0) {
            break;
        }
    }
    Ok(report)
}

/// Runs [`run_once`] every `--finalizer-interval-secs` until the task is dropped.
pub async fn run_forever(state: actix_web::web::Data<AppState>) {
    let every = Duration::from_secs(state.settings.reaper.finalizer_interval_secs.max(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match run_once(&state).await {
            Ok(report) if report.arrived > 0 || report.errors > 0 => {
                tracing::info!(?report, "finalizer pass");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "finalizer pass failed; will retry"),
        }
    }
}
