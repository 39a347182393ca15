//! Completion: look at an uploaded object, and only then trust it.
//!
//! Every path that completes files — the client's `POST …/complete` (one file or a
//! batch), the finalizer's own looks at pending files, S3 event notifications, a `GET`
//! of a pending file — calls the [`Completer`], which claims the file (one completion
//! at a time per file), inspects the upload ([`inspect`]), and settles the claim in one
//! guarded transition ([`conclude`]). A new way of completing files calls
//! [`Completer::complete`] or [`Completer::complete_many`] with a [`Trigger`] of its
//! own and gets the same guarantees.
//!
//! Ready bytes never change. The client's presigned PUT writes the *upload key*; once
//! its object passes every check, filegate copies exactly that version (the ETag it
//! checked, as a copy precondition) to the *object key* downloads are served from,
//! which no presigned URL can write. Stores that ignore the copy precondition (Ceph RGW
//! 16) are caught by the copy's own ETag. A PUT to the upload URL after `ready` lands
//! on the upload key and changes nothing that is served.
//!
//! The Completer knows nothing of HTTP: it talks to the store through [`ObjectStore`]
//! and to the database through [`Ledger`], and fails with [`CompletionError`].

mod assemble;
mod conclude;
mod inspect;
mod ledger;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use filegate_db::DbError;
use filegate_db::completion::{Claimed, Lease, Reach};
use filegate_db::files::FileRow;
use filegate_domain::FileStatus;
use filegate_storage::{Storage, StorageError};
use futures_util::StreamExt;
use uuid::Uuid;

pub use self::ledger::{Ledger, PgLedger};
pub use crate::metrics::Trigger;
use crate::metrics::{self, PathOutcome};
use crate::service::store::ObjectStore;
use crate::service::trust::StoreTrust;

/// How a completion ended.
#[derive(Debug)]
pub enum Outcome {
    /// This call made the file ready.
    Ready(FileRow),
    /// This call rejected the file: the reason is in the row, the upload is deleted.
    Rejected(FileRow),
    /// Nothing was uploaded yet (for a multipart file: these parts are missing); the
    /// file stays pending.
    Missing(FileRow, Vec<i32>),
    /// The file was not pending (already ready, rejected or expired), or another
    /// completion took it over (pending).
    Settled(FileRow),
    /// Another completion holds the file (only when not waiting for it).
    Busy,
    /// No such file within reach.
    NotFound,
}

/// One file's outcome in a batch: its own error when its verification or settlement
/// failed.
pub type Completed = Result<Outcome, CompletionError>;

/// Why a completion could not finish; the file stays pending.
#[derive(Debug, thiserror::Error)]
pub enum CompletionError {
    #[error(transparent)]
    Database(#[from] DbError),
    /// The settling statement failed, for every completion that was in it.
    #[error(transparent)]
    Settlement(Arc<DbError>),
    #[error(transparent)]
    Store(#[from] StorageError),
    #[error("the object store answered HeadObject without an ETag (or an empty one)")]
    NoEtag,
    /// The inspection took more than half the claim's lease: a copy started now could
    /// land after another completion took the file over.
    #[error("too slow to finish the completion within half its lease")]
    TooSlow,
    /// A multipart assembly the store kept calling busy.
    #[error("it stayed busy assembling the file's parts")]
    AssemblyBusy,
    /// Another completion held the file past its lease, and this one stopped waiting.
    #[error("another completion of the file held its claim past the lease")]
    ClaimOutlived,
    #[error("the digests were to supply the first bytes, and did not")]
    NoFirstBytes,
}

/// Store calls a claim's lease allows for: a completion gives up before its copy once
/// half the lease has passed, so six timeouts of inspection (a HEAD, a ranged read, a
/// listing and an assembly of parts, a whole read) leave six for the copy and its check.
const LEASE_STORE_CALLS: u32 = 12;
/// The shortest lease, however short the store timeout.
const MIN_LEASE: Duration = Duration::from_secs(10);
/// The slowest read of a whole object a claim allows for, in bytes per second: a large
/// object streamed through SHA-256 keeps its claim.
const STREAM_FLOOR: f64 = 8.0 * 1024.0 * 1024.0;
/// Looks at most this many times when the object keeps changing under the inspection.
const ATTEMPTS: usize = 3;
/// How long an assembly the store called busy waits before it looks again.
const BUSY_PAUSE: Duration = Duration::from_millis(200);
/// How soon a waiting completion first looks again whether the claim holder has
/// finished; each later look waits twice as long (with jitter), up to [`WAIT_STEP_MAX`].
const WAIT_STEP: Duration = Duration::from_millis(20);
/// The longest pause between two looks of a waiting completion.
const WAIT_STEP_MAX: Duration = Duration::from_millis(500);
/// How long past a claim's lease a waiting completion gives up on its holder.
const WAIT_SLACK: Duration = Duration::from_secs(1);
/// Files one batch verifies at once (each a HEAD and a ranged GET, and a copy).
const BATCH_CONCURRENCY: usize = 16;

/// The lease of a completion's claim when each store call may take `store_timeout`.
#[must_use]
pub fn lease(store_timeout: Duration) -> Lease {
    Lease {
        base: store_timeout
            .saturating_mul(LEASE_STORE_CALLS)
            .max(MIN_LEASE),
        bytes_per_sec: STREAM_FLOOR,
    }
}

/// The completion service: what completion needs, and the one way files leave
/// `pending` for `ready` or `rejected`.
#[derive(Debug)]
pub struct Completer<S = Storage, L = PgLedger> {
    store: S,
    ledger: L,
    trust: StoreTrust,
    lease: Lease,
}

/// What trying to claim a file ended with.
enum Claim {
    /// This completion holds the pending file; its lease runs from `started`.
    Held { file: FileRow, started: Instant },
    /// Nothing to do: the answer is this.
    Answered(Outcome),
}

impl<S: ObjectStore, L: Ledger> Completer<S, L> {
    /// A completer over `store` and `ledger`, taking the store's word for what `trust`
    /// says, with claims that last [`lease`] of `store_timeout`.
    #[must_use]
    pub fn new(store: S, ledger: L, trust: StoreTrust, store_timeout: Duration) -> Self {
        Self::with_lease(store, ledger, trust, lease(store_timeout))
    }

    /// A completer whose claims last `lease`.
    #[must_use]
    pub fn with_lease(store: S, ledger: L, trust: StoreTrust, lease: Lease) -> Self {
        Self {
            store,
            ledger,
            trust,
            lease,
        }
    }

    /// Completes one file: claim, inspect, copy the verified version into place,
    /// settle (the settling statement shared with concurrent completions). With
    /// `wait`, a file claimed by another completion is waited for and its outcome
    /// returned as [`Outcome::Settled`]; without, [`Outcome::Busy`] comes back at once.
    ///
    /// # Errors
    /// [`CompletionError`] when the database or the store fails (the file stays pending).
    #[tracing::instrument(skip_all, fields(file = %id, trigger = trigger.as_str()))]
    pub async fn complete(
        &self,
        id: Uuid,
        reach: Reach<'_>,
        trigger: Trigger,
        wait: bool,
    ) -> Result<Outcome, CompletionError> {
        let token = Uuid::new_v4();
        let outcome = match self.claim(id, reach, token, wait).await? {
            Claim::Held { file, started } => {
                let held = Held::new(&self.ledger, vec![file.id], token);
                let verdict = self.verify(&file, token, started).await;
                let outcome = self
                    .conclude(token, vec![(file, verdict)])
                    .await
                    .pop()
                    .map_or_else(|| Ok(Outcome::NotFound), |(_, outcome)| outcome);
                held.concluded();
                outcome
            }
            Claim::Answered(outcome) => Ok(outcome),
        };
        count_path(trigger, &outcome);
        outcome
    }

    /// Completes the files `ids` together: one statement claims every pending one,
    /// their uploads are verified concurrently, and one statement settles all their
    /// transitions (one commit). A file another completion holds is waited for, as by
    /// [`Self::complete`] with `wait` (unless `wait` is false: then it is
    /// [`Outcome::Busy`]). Returns each file's outcome in the order of `ids`
    /// (duplicates are the caller's to refuse).
    ///
    /// # Errors
    /// [`CompletionError::Database`] when the claim fails; a file whose verification
    /// or settlement failed has its own error in the list.
    #[tracing::instrument(skip_all, fields(files = ids.len(), trigger = trigger.as_str()))]
    pub async fn complete_many(
        &self,
        ids: &[Uuid],
        reach: Reach<'_>,
        trigger: Trigger,
        wait: bool,
    ) -> Result<Vec<(Uuid, Completed)>, CompletionError> {
        let token = Uuid::new_v4();
        let started = Instant::now();
        let claimed = self.ledger.claim(ids, reach, token, self.lease).await?;
        let mut answers: HashMap<Uuid, Result<Outcome, CompletionError>> = HashMap::new();
        let (mut held, mut busy) = (Vec::new(), Vec::new());
        for Claimed { file, held: mine } in claimed {
            if file.status != FileStatus::Pending {
                answers.insert(file.id, Ok(Outcome::Settled(file)));
            } else if mine {
                held.push(file);
            } else {
                busy.push(file.id);
            }
        }
        let claims = Held::new(&self.ledger, held.iter().map(|f| f.id).collect(), token);
        let verified: Vec<_> = futures_util::stream::iter(held)
            .map(|file| async move {
                let verdict = self.verify(&file, token, started).await;
                (file, verdict)
            })
            .buffer_unordered(BATCH_CONCURRENCY)
            .collect()
            .await;
        let (concluded, waited) = tokio::join!(
            self.conclude(token, verified),
            futures_util::future::join_all(busy.into_iter().map(|id| async move {
                let outcome = if wait {
                    self.complete(id, reach, trigger, true).await
                } else {
                    Ok(Outcome::Busy)
                };
                (id, outcome)
            }))
        );
        claims.concluded();
        answers.extend(concluded);
        // Files waited for were counted by `complete`; everything else is counted here.
        for outcome in answers.values() {
            count_path(trigger, outcome);
        }
        if !wait {
            for (_, busy) in &waited {
                count_path(trigger, busy);
            }
        }
        answers.extend(waited);
        Ok(ids
            .iter()
            .map(|id| {
                let outcome = answers.remove(id).unwrap_or_else(|| {
                    let gone = Ok(Outcome::NotFound);
                    count_path(trigger, &gone);
                    gone
                });
                (*id, outcome)
            })
            .collect())
    }

    /// Rejects a pending file whose bytes could not be had (an import whose source
    /// failed) for `reason`: the same claim and guarded transition as a completion, so
    /// its reservation is released and anything written deleted. A file that another
    /// path settled meanwhile is answered as it is.
    ///
    /// # Errors
    /// [`CompletionError`] when the database fails (the file stays pending).
    #[tracing::instrument(skip_all, fields(file = %id, trigger = trigger.as_str()))]
    pub async fn fail(
        &self,
        id: Uuid,
        reason: String,
        trigger: Trigger,
    ) -> Result<Outcome, CompletionError> {
        let token = Uuid::new_v4();
        let outcome = match self.claim(id, Reach::default(), token, true).await? {
            Claim::Held { file, .. } => {
                let held = Held::new(&self.ledger, vec![file.id], token);
                let verdict = Ok(inspect::Inspection::Invalid {
                    check: filegate_api::RejectionCheck::Source,
                    reason,
                });
                let outcome = self
                    .conclude(token, vec![(file, verdict)])
                    .await
                    .pop()
                    .map_or_else(|| Ok(Outcome::NotFound), |(_, outcome)| outcome);
                held.concluded();
                outcome
            }
            Claim::Answered(outcome) => Ok(outcome),
        };
        count_path(trigger, &outcome);
        outcome
    }

    /// Whether a pending file's upload has arrived: one HEAD (for a multipart file, one
    /// ListParts showing every part). `multipart` is the file's upload id and part count.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable.
    pub async fn arrived(
        &self,
        upload_key: &str,
        multipart: Option<(&str, i32)>,
    ) -> Result<bool, StorageError> {
        Ok(match multipart {
            Some((upload_id, parts)) => {
                assemble::all_parts_held(&self.store, upload_key, upload_id, parts).await?
            }
            None => self.store.head(upload_key).await?.is_some(),
        })
    }

    /// Completes a pending file whose upload has arrived, without being asked and
    /// without waiting for another completion of it; `None` when nothing is there yet.
    ///
    /// # Errors
    /// [`CompletionError`] when the database or the store fails.
    pub async fn look(
        &self,
        id: Uuid,
        upload_key: &str,
        multipart: Option<(&str, i32)>,
        trigger: Trigger,
    ) -> Result<Option<Outcome>, CompletionError> {
        if !self.arrived(upload_key, multipart).await? {
            return Ok(None);
        }
        self.complete(id, Reach::default(), trigger, false)
            .await
            .map(Some)
    }

    /// Claims the pending file `id`; with `wait`, waits (up to the lease) for another
    /// completion's claim to end.
    async fn claim(
        &self,
        id: Uuid,
        reach: Reach<'_>,
        token: Uuid,
        wait: bool,
    ) -> Result<Claim, CompletionError> {
        let first = Instant::now();
        let mut pause = WAIT_STEP;
        loop {
            // The lease runs from the claim statement's start at the latest: measuring
            // from before it keeps the copy inside the lease whatever the statement
            // waited for.
            let asked = Instant::now();
            let Some(Claimed { file, held }) = self
                .ledger
                .claim(&[id], reach, token, self.lease)
                .await?
                .pop()
            else {
                return Ok(Claim::Answered(Outcome::NotFound));
            };
            if file.status != FileStatus::Pending {
                return Ok(Claim::Answered(Outcome::Settled(file)));
            }
            if held {
                return Ok(Claim::Held {
                    file,
                    started: asked,
                });
            }
            if !wait {
                return Ok(Claim::Answered(Outcome::Busy));
            }
            if first.elapsed() > self.lease.of(file.size_bytes.unwrap_or(0)) + WAIT_SLACK {
                return Err(CompletionError::ClaimOutlived);
            }
            // Half to one and a half times the pause, so waiters spread out.
            #[allow(clippy::cast_precision_loss)] // Jitter need not be exact.
            let jitter = 0.5 + (Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
            tokio::time::sleep(pause.mul_f64(jitter)).await;
            pause = (pause * 2).min(WAIT_STEP_MAX);
        }
    }
}

/// Claims a completion holds until it concluded them. Dropped before that (the
/// request's client hung up, a load balancer timed it out, the server is stopping),
/// it gives them back on a task of its own, so the next completion of the file need
/// not wait out the lease. Only a crash leaves a claim to its lease.
struct Held<'a, L: Ledger> {
    ledger: &'a L,
    ids: Vec<Uuid>,
    token: Uuid,
}

impl<'a, L: Ledger> Held<'a, L> {
    fn new(ledger: &'a L, ids: Vec<Uuid>, token: Uuid) -> Self {
        Self { ledger, ids, token }
    }

    /// The completion concluded: it settled or gave back every claim itself.
    fn concluded(mut self) {
        self.ids.clear();
    }
}

impl<L: Ledger> Drop for Held<'_, L> {
    fn drop(&mut self) {
        if !self.ids.is_empty() {
            self.ledger
                .release_detached(std::mem::take(&mut self.ids), self.token);
        }
    }
}

fn count_path(trigger: Trigger, outcome: &Result<Outcome, CompletionError>) {
    metrics::completion_path(
        trigger,
        match outcome {
            Ok(Outcome::Ready(_)) => PathOutcome::Ready,
            Ok(Outcome::Rejected(_)) => PathOutcome::Rejected,
            Ok(Outcome::Missing(..)) => PathOutcome::Missing,
            Ok(_) => PathOutcome::Settled,
            Err(_) => PathOutcome::Error,
        },
    );
}
