//! The background passes every replica runs, one shape for all: a [`Job`] owns the
//! services it uses, [`Job::run_once`] is one pass (also what `filegate reap --once` and
//! `filegate reconcile` run), and [`run_forever`] repeats it. Jobs know nothing of HTTP.
//!
//! - [`Finalizer`]: completes uploads whose clients never call `complete`.
//! - [`Reaper`]: expires abandoned uploads, deletes queued objects, purges old records.
//! - [`Reconciler`]: lists the bucket against the database.
//! - [`Importer`]: takes up `remote_uri` imports nobody runs.
//! - [`deliveries`]: sends webhook deliveries (a loop of its own, not a periodic pass).

pub mod deliveries;
mod finalizer;
mod imports;
mod reaper;
mod reconcile;

use std::fmt::Debug;
use std::time::Duration;

pub use finalizer::{FinalizeReport, Finalizer, schedule};
pub use imports::Importer;
pub use reaper::{ReapReport, Reaper};
pub use reconcile::{ReconcileError, ReconcileReport, Reconciler};

/// A background pass.
pub trait Job: Send + Sync + 'static {
    /// What one pass did.
    type Report: Debug + Send;
    /// Why a pass stopped (the next pass tries again).
    type Error: std::error::Error + Send + 'static;
    /// The job's name in logs.
    const NAME: &'static str;

    /// One pass over everything due.
    ///
    /// # Errors
    /// [`Self::Error`] when the pass could not go on; what it did stays done.
    fn run_once(&self) -> impl Future<Output = Result<Self::Report, Self::Error>> + Send;

    /// Whether a pass's report is worth an `info` line (most passes find nothing).
    fn noteworthy(report: &Self::Report) -> bool;
}

/// The shortest gap between two passes of a job, whatever its setting says.
const MIN_PERIOD: Duration = Duration::from_secs(1);

/// Runs `job` every `every`, the first pass `first` from now, until the task is
/// dropped. A pass that fails is logged and the next one tries again; a pass that runs
/// long delays the next rather than piling up.
pub async fn run_forever<J: Job>(job: J, first: Duration, every: Duration) {
    let every = every.max(MIN_PERIOD);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + first, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match job.run_once().await {
            Ok(report) if J::noteworthy(&report) => {
                tracing::info!(job = J::NAME, ?report, "background pass");
            }
            Ok(report) => tracing::debug!(job = J::NAME, ?report, "background pass"),
            Err(e) => {
                let error = crate::causes::chain(&e);
                tracing::warn!(job = J::NAME, error, "background pass failed; will retry");
            }
        }
    }
}
