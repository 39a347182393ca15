//! After the inspections: every file's transition in one settling statement, then
//! what follows from each (a rejected upload deleted, a claim given back, a copy nobody
//! serves removed).

use std::collections::HashMap;

use filegate_db::completion::{Target, Transition};
use filegate_db::files::FileRow;
use filegate_domain::FileStatus;
use uuid::Uuid;

use super::inspect::Inspection;
use super::{Completer, CompletionError, Ledger, Outcome};
use crate::metrics;
use crate::service::store::ObjectStore;

/// Where one verified file stands after the settling statement.
// Short-lived, one per file of a completion: boxing the rows would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Now {
    /// Its answer is known.
    Answered(Uuid, Result<Outcome, CompletionError>),
    /// It moved out of pending (`row`, as it is now) for `inspection`.
    Moved(FileRow, FileRow, Inspection),
    /// It did not move: it was deleted, or (after a lapsed claim) settled by another
    /// completion, while this one verified it.
    LostRace(FileRow),
    /// Its verification failed.
    Failed(FileRow, CompletionError),
    /// Nothing was uploaded (these parts are missing), or the file was deleted while
    /// this completion looked (a delete removes the upload before the row).
    Missing(FileRow, Vec<i32>),
}

impl<S: ObjectStore, L: Ledger> Completer<S, L> {
    /// Settles what the verifications of files claimed under `token` concluded: every
    /// valid and invalid upload's transition in one statement, then each file's
    /// consequences. Returns each file's outcome.
    pub(super) async fn conclude(
        &self,
        token: Uuid,
        verified: Vec<(FileRow, Result<Inspection, CompletionError>)>,
    ) -> Vec<(Uuid, Result<Outcome, CompletionError>)> {
        let transitions: Vec<Transition> = verified
            .iter()
            .filter_map(|(file, inspection)| {
                let target = match inspection {
                    Ok(Inspection::Valid { size, etag }) => Target::Ready {
                        size: *size,
                        etag: etag.clone(),
                    },
                    Ok(Inspection::Invalid { reason, .. }) => Target::Rejected {
                        reason: reason.clone(),
                    },
                    _ => return None,
                };
                Some(Transition {
                    id: file.id,
                    token,
                    target,
                })
            })
            .collect();
        let mut moved: Result<HashMap<Uuid, FileRow>, _> = self
            .ledger
            .settle(transitions)
            .await
            .map(|rows| rows.into_iter().map(|r| (r.id, r)).collect());
        let mut states = Vec::with_capacity(verified.len());
        for (file, inspection) in verified {
            let now = match (inspection, &mut moved) {
                (Ok(Inspection::Missing(parts)), _) => Now::Missing(file, parts),
                (Ok(inspection), Ok(rows)) => match rows.remove(&file.id) {
                    Some(row) => Now::Moved(file, row, inspection),
                    None => Now::LostRace(file),
                },
                (Ok(_), Err(e)) => {
                    Now::Answered(file.id, Err(CompletionError::Settlement(e.clone())))
                }
                (Err(e), _) => Now::Failed(file, e),
            };
            states.push(now);
        }
        let outcomes =
            futures_util::future::join_all(states.into_iter().map(|now| self.follow_up(now))).await;
        let release: Vec<Uuid> = outcomes
            .iter()
            .filter(|(_, outcome)| !matches!(outcome, Ok(Outcome::Ready(_) | Outcome::Rejected(_))))
            .map(|(id, _)| *id)
            .collect();
        if !release.is_empty()
            && let Err(e) = self.ledger.release(&release, token).await
        {
            // Give the claims back so the next completion need not wait out the lease.
            tracing::warn!(error = %e, files = release.len(), "could not release completion claims; they lapse by themselves");
        }
        outcomes
    }

    /// The file's outcome, once what follows from where it stands is done.
    async fn follow_up(&self, now: Now) -> (Uuid, Result<Outcome, CompletionError>) {
        match now {
            Now::Answered(id, outcome) => (id, outcome),
            // A file deleted under the completion is not found, not waiting for bytes.
            Now::Missing(file, parts) => match self.ledger.find(file.id).await {
                Ok(None) => (file.id, Ok(Outcome::NotFound)),
                _ => {
                    metrics::completion_missing();
                    (file.id, Ok(Outcome::Missing(file, parts)))
                }
            },
            Now::Moved(file, row, Inspection::Valid { .. }) => {
                metrics::count_ready(file.reserved_bytes, row.reserved_bytes);
                (file.id, Ok(Outcome::Ready(row)))
            }
            Now::Moved(file, rejected, inspection) => {
                if let Inspection::Invalid { check, .. } = inspection {
                    metrics::count_rejected(check, file.reserved_bytes);
                }
                self.discard(&rejected).await;
                // An earlier attempt of this completion may have copied a version that
                // then changed: that copy is queued too, and goes now.
                if rejected.object_key != rejected.upload_key {
                    self.delete_now(&rejected.object_key).await;
                }
                (file.id, Ok(Outcome::Rejected(rejected)))
            }
            Now::LostRace(file) => {
                let now = self.after_lost_race(file.id).await;
                // A copy this completion made goes when nobody serves it: whatever it
                // concluded, the copy-first path (and an attempt before the object
                // changed) wrote the object key.
                if let Ok(now) = &now
                    && copy_is_orphaned(now)
                    && file.object_key != file.upload_key
                {
                    self.delete_now(&file.object_key).await;
                }
                (file.id, now)
            }
            // A store failing because the file was deleted under the completion (Ceph
            // RGW refusing to assemble an upload the delete is aborting) is no outage.
            Now::Failed(file, e) => match self.ledger.find(file.id).await {
                Ok(None) => (file.id, Ok(Outcome::NotFound)),
                _ => (file.id, Err(e)),
            },
        }
    }

    /// The answer when a transition found the file gone or moved under a lapsed claim.
    async fn after_lost_race(&self, id: Uuid) -> Result<Outcome, CompletionError> {
        Ok(match self.ledger.find(id).await? {
            Some(file) => Outcome::Settled(file),
            None => Outcome::NotFound,
        })
    }

    /// Deletes a settled or deleted file's upload now (aborting its multipart upload
    /// first, which frees any parts); if the store fails, the queued deletion is
    /// retried by the reaper.
    pub async fn discard(&self, file: &FileRow) {
        if let Some(m) = &file.multipart
            && let Err(e) = self
                .store
                .abort_multipart(&file.upload_key, &m.upload_id)
                .await
        {
            tracing::warn!(error = %e, file = %file.id, "could not abort a multipart upload; the reaper will retry");
            return;
        }
        self.delete_now(&file.upload_key).await;
    }

    /// Deletes an object now; if the store fails, its queued deletion is retried by
    /// the reaper.
    pub async fn delete_now(&self, key: &str) {
        match self.store.delete(key).await {
            Ok(()) => {
                if let Err(e) = self.ledger.finish_deletion(key).await {
                    tracing::warn!(error = %e, key, "object deleted; the reaper will clear its queue entry");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, key, "object deletion failed; the reaper will retry");
            }
        }
    }
}

/// After a transition found the file gone or moved under a lapsed claim, whether the
/// copy this completion made to the object key is nobody's. A ready file serves it
/// (the completion that took over copied the same key), and a pending one is another
/// completion's to finish: only a file that is gone, rejected or expired leaves it
/// orphaned.
pub(super) fn copy_is_orphaned(now: &Outcome) -> bool {
    match now {
        Outcome::NotFound => true,
        Outcome::Settled(f) => matches!(f.status, FileStatus::Rejected | FileStatus::Expired),
        _ => false,
    }
}
