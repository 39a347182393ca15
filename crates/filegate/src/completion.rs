//! Completion: look at an uploaded object, and only then trust it.
//!
//! Three paths complete files: the client's `POST …/complete`, the finalizer's own looks
//! at pending files, and S3 event notifications (a `GET` of a pending file looks too).
//! All of them call [`complete`], which claims the file (one completion at a time per
//! file), inspects the upload, and settles the claim in one guarded transition.
//!
//! Ready bytes never change. The client's presigned PUT writes the *upload key*; once
//! its object passes every check, filegate copies exactly that version (the ETag it
//! checked, as a copy precondition) to the *object key* downloads are served from,
//! which no presigned URL can write. Stores that ignore the copy precondition (Ceph RGW
//! 16) are caught by the copy's own ETag. A PUT to the upload URL after `ready` lands
//! on the upload key and changes nothing that is served.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use filegate_db::completion::{Claimed, Lease, Reach};
use filegate_db::files::FileRow;
use filegate_domain::{Checksum, ContentType, FileStatus};
use filegate_storage::{CopyOutcome, ObjectInfo};
use futures_util::StreamExt;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// Who asked for a completion (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `POST /v2/files/{id}/complete`.
    Client,
    /// The finalizer found the upload without being asked.
    Finalizer,
    /// An S3 event notification named the upload.
    Event,
    /// `GET /v2/files/{id}` on a pending file.
    Read,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Finalizer => "finalizer",
            Self::Event => "event",
            Self::Read => "read",
        }
    }
}

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
    /// The file was not pending (already ready, rejected or expired).
    Settled(FileRow),
    /// Another completion holds the file (only when not waiting for it).
    Busy,
    /// No such file within reach.
    NotFound,
}

/// The check an upload failed: the `reason` label of `filegate_rejections_total`.
#[derive(Debug, Clone, Copy)]
enum Check {
    Size,
    ContentType,
    Checksum,
    Content,
    /// It kept changing while it was being inspected.
    Changed,
}

impl Check {
    fn as_str(self) -> &'static str {
        match self {
            Self::Size => "size",
            Self::ContentType => "content_type",
            Self::Checksum => "checksum",
            Self::Content => "content",
            Self::Changed => "changed",
        }
    }
}

/// What one inspection of the upload found.
enum Inspection {
    /// Nothing to verify yet (for a multipart file: these parts are missing).
    Missing(Vec<i32>),
    /// The object changed between two reads of one inspection: look again.
    Changed,
    /// It fails `check`, for `reason` (the sentence the file's rejection keeps).
    Invalid {
        check: Check,
        reason: String,
    },
    Valid {
        size: i64,
        etag: String,
    },
}

/// Looks at most this many times when the object keeps changing under the inspection.
const ATTEMPTS: usize = 3;
/// How long an assembly the store called busy waits before it looks again.
const BUSY_PAUSE: Duration = Duration::from_millis(200);
/// How often a waiting completion looks whether the claim holder has finished.
const WAIT_STEP: Duration = Duration::from_millis(20);

/// How long a claim lasts: every store call of a completion is bounded by the store
/// timeout, and a completion gives up before starting its copy past half of this; a
/// file's bytes add their read at [`STREAM_FLOOR`], so a large object streamed through
/// SHA-256 keeps its claim.
fn lease(state: &AppState) -> Lease {
    Lease {
        base: Duration::from_millis(state.settings.storage.s3_timeout_ms.saturating_mul(12))
            .max(Duration::from_secs(10)),
        bytes_per_sec: STREAM_FLOOR,
    }
}

/// The slowest read of a whole object a claim allows for, in bytes per second.
const STREAM_FLOOR: f64 = 8.0 * 1024.0 * 1024.0;

/// Completes one file: claim, inspect, copy the verified version into place, settle
/// (the settling statement shared with concurrent completions, see
/// [`crate::group_commit`]). With `wait`, a file claimed by another completion is
/// waited for and its outcome returned as [`Outcome::Settled`]; without,
/// [`Outcome::Busy`] comes back at once.
///
/// # Errors
/// 503 when the database or the store is unreachable (the file stays pending).
pub async fn complete(
    state: &AppState,
    id: Uuid,
    reach: Reach<'_>,
    trigger: Trigger,
    wait: bool,
) -> Result<Outcome, ApiError> {
    let lease = lease(state);
    let token = Uuid::new_v4();
    let outcome = match claim(state, id, reach, token, lease, wait).await? {
        Claim::Held { file, started } => {
            let verdict = verify(state, &file, lease.of(file.reserved_bytes), started).await;
            conclude(state, token, vec![(file, verdict)])
                .await
                .pop()
                .map_or_else(|| Ok(Outcome::NotFound), |(_, outcome)| outcome)
        }
        Claim::Answered(outcome) => Ok(outcome),
    };
    count_path(trigger, &outcome);
    outcome
}

/// Files one batch verifies at once (each a HEAD and a ranged GET, and a copy).
const BATCH_CONCURRENCY: usize = 16;

/// Completes the files `ids` together: one statement claims every pending one, their
/// uploads are verified concurrently, and one statement settles all their transitions
/// (one commit). A file another completion holds is waited for, as by [`complete`] with
/// `wait` (unless `wait` is false: then it is [`Outcome::Busy`]). Returns each file's
/// outcome in the order of `ids` (duplicates are the caller's to refuse).
///
/// # Errors
/// 503 when the database is unreachable for the claim; a file whose verification or
/// settlement failed has its own error in the list.
pub async fn complete_many(
    state: &AppState,
    ids: &[Uuid],
    reach: Reach<'_>,
    trigger: Trigger,
    wait: bool,
) -> Result<Vec<(Uuid, Result<Outcome, ApiError>)>, ApiError> {
    let lease = lease(state);
    let token = Uuid::new_v4();
    let started = Instant::now();
    let claimed = filegate_db::completion::claim(&state.pool, ids, reach, token, lease).await?;
    let mut answers: HashMap<Uuid, Result<Outcome, ApiError>> = HashMap::new();
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
    let verified: Vec<_> = futures_util::stream::iter(held)
        .map(|file| async move {
            let verdict = verify(state, &file, lease.of(file.reserved_bytes), started).await;
            (file, verdict)
        })
        .buffer_unordered(BATCH_CONCURRENCY)
        .collect()
        .await;
    let (concluded, waited) = tokio::join!(
        conclude(state, token, verified),
        futures_util::future::join_all(busy.into_iter().map(|id| async move {
            let outcome = if wait {
                complete(state, id, reach, trigger, true).await
            } else {
                Ok(Outcome::Busy)
            };
            (id, outcome)
        }))
    );
    for (id, outcome) in concluded {
        answers.insert(id, outcome);
    }
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

fn count_path(trigger: Trigger, outcome: &Result<Outcome, ApiError>) {
    crate::metrics::completion_path(
        trigger.as_str(),
        match outcome {
            Ok(Outcome::Ready(_)) => "ready",
            Ok(Outcome::Rejected(_)) => "rejected",
            Ok(Outcome::Missing(..)) => "missing",
            Ok(_) => "settled",
            Err(_) => "error",
        },
    );
}

/// What trying to claim a file ended with.
enum Claim {
    /// This completion holds the pending file; its lease runs from `started`.
    Held { file: FileRow, started: Instant },
    /// Nothing to do: the answer is this.
    Answered(Outcome),
}

/// Claims the pending file `id`; with `wait`, waits (up to the lease) for another
/// completion's claim to end.
async fn claim(
    state: &AppState,
    id: Uuid,
    reach: Reach<'_>,
    token: Uuid,
    lease: Lease,
    wait: bool,
) -> Result<Claim, ApiError> {
    let first = Instant::now();
    loop {
        // The lease runs from the claim statement's start at the latest: measuring from
        // before it keeps the copy inside the lease whatever the statement waited for.
        let asked = Instant::now();
        let Some(Claimed { file, held }) =
            filegate_db::completion::claim(&state.pool, &[id], reach, token, lease)
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
        if first.elapsed() > lease.of(file.reserved_bytes) + Duration::from_secs(1) {
            return Err(ApiError::unavailable(
                "this file's completion",
                "another completion of the file held its claim past the lease",
            ));
        }
        tokio::time::sleep(WAIT_STEP).await;
    }
}

/// What verifying a claimed file's upload concluded.
enum Verdict {
    /// Nothing to verify yet (for a multipart file: these parts are missing).
    Missing(Vec<i32>),
    /// It passed every check, and that version (`etag`) is at the object key.
    Valid {
        size: i64,
        etag: String,
    },
    Invalid {
        check: Check,
        reason: String,
    },
}

/// Inspects the claimed file's upload until it is missing, invalid, or valid and
/// copied into place (looking again, up to [`ATTEMPTS`] times, while it changes).
async fn verify(
    state: &AppState,
    file: &FileRow,
    lease: Duration,
    started: Instant,
) -> Result<Verdict, ApiError> {
    // Files reserved before uploads were staged have one key: there is nothing to copy.
    let copy_first = !state.store_trust.etag_pins_bytes && file.upload_key != file.object_key;
    let too_slow = || {
        ApiError::unavailable(
            "the object store",
            "too slow to finish the completion within half its lease",
        )
    };
    let mut store_busy = false;
    for _ in 0..ATTEMPTS {
        let inspection = if copy_first {
            if started.elapsed() > lease / 2 {
                return Err(too_slow());
            }
            copy_then_inspect(state, file).await?
        } else if let Some(multipart) = &file.multipart {
            match crate::multipart::assemble(state, file, multipart).await? {
                crate::multipart::Assembly::Assembled(digests) => {
                    inspect(state, file, &file.upload_key, Some(&digests)).await?
                }
                crate::multipart::Assembly::Missing(parts) => Inspection::Missing(parts),
                crate::multipart::Assembly::Changed => Inspection::Changed,
                crate::multipart::Assembly::Busy => {
                    store_busy = true;
                    tokio::time::sleep(BUSY_PAUSE).await;
                    Inspection::Changed
                }
            }
        } else {
            inspect(state, file, &file.upload_key, None).await?
        };
        match inspection {
            Inspection::Missing(parts) => return Ok(Verdict::Missing(parts)),
            Inspection::Changed => {}
            Inspection::Invalid { check, reason } => {
                return Ok(Verdict::Invalid { check, reason });
            }
            Inspection::Valid { size, etag } => {
                if copy_first {
                    return Ok(Verdict::Valid { size, etag });
                }
                if started.elapsed() > lease / 2 {
                    return Err(too_slow());
                }
                if promote(state, file, &etag).await? {
                    return Ok(Verdict::Valid { size, etag });
                }
            }
        }
    }
    if store_busy {
        return Err(ApiError::unavailable(
            "the object store",
            "it stayed busy assembling the file's parts",
        ));
    }
    Ok(Verdict::Invalid {
        check: Check::Changed,
        reason: "the object kept changing while it was being verified".to_owned(),
    })
}

/// Settles what the verifications of files claimed under `token` concluded: every
/// valid and invalid upload's transition in one statement, then each file's
/// consequences (a rejected upload deleted, a claim given back, a copy nobody serves
/// removed). Returns each file's outcome.
async fn conclude(
    state: &AppState,
    token: Uuid,
    verified: Vec<(FileRow, Result<Verdict, ApiError>)>,
) -> Vec<(Uuid, Result<Outcome, ApiError>)> {
    use filegate_db::completion::{Transition, Verdict as Settle};
    let transitions: Vec<Transition> = verified
        .iter()
        .filter_map(|(file, verdict)| {
            let verdict = match verdict {
                Ok(Verdict::Valid { size, etag }) => Settle::Ready {
                    size: *size,
                    etag: etag.clone(),
                },
                Ok(Verdict::Invalid { reason, .. }) => Settle::Rejected {
                    reason: reason.clone(),
                },
                _ => return None,
            };
            Some(Transition {
                id: file.id,
                token,
                verdict,
            })
        })
        .collect();
    let mut moved: Result<HashMap<Uuid, FileRow>, _> = state
        .group_commit
        .settle(transitions)
        .await
        .map(|rows| rows.into_iter().map(|r| (r.id, r)).collect());
    let mut consequences = Vec::with_capacity(verified.len());
    for (file, verdict) in verified {
        let now = match (verdict, &mut moved) {
            (Ok(Verdict::Missing(parts)), _) => {
                crate::metrics::completion("missing");
                Now::Answered(file.id, Ok(Outcome::Missing(file, parts)))
            }
            (Ok(verdict), Ok(rows)) => match rows.remove(&file.id) {
                Some(row) => Now::Moved(file, row, verdict),
                None => Now::LostRace(file, verdict),
            },
            (Ok(_), Err(e)) => Now::Answered(file.id, Err(crate::group_commit::shared_error(e))),
            (Err(e), _) => Now::Failed(file, e),
        };
        consequences.push(now);
    }
    let mut release = Vec::new();
    let outcomes = futures_util::future::join_all(
        consequences
            .into_iter()
            .map(|now| async move { now.settle(state).await }),
    )
    .await;
    let mut out = Vec::with_capacity(outcomes.len());
    for (id, outcome) in outcomes {
        if !matches!(outcome, Ok(Outcome::Ready(_) | Outcome::Rejected(_))) {
            release.push(id);
        }
        out.push((id, outcome));
    }
    if !release.is_empty()
        && let Err(e) = filegate_db::completion::release(&state.pool, &release, token).await
    {
        // Give the claims back so the next completion need not wait out the lease.
        tracing::warn!(error = %e, files = release.len(), "could not release completion claims; they lapse by themselves");
    }
    out
}

/// Where one verified file stands after the settling statement.
// Short-lived, one per file of a completion: boxing the rows would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Now {
    /// Its answer is known.
    Answered(Uuid, Result<Outcome, ApiError>),
    /// It moved out of pending (`row`, as it is now) for `verdict`.
    Moved(FileRow, FileRow, Verdict),
    /// It did not move: it was deleted, or (after a lapsed claim) settled by another
    /// completion, while this one verified it.
    LostRace(FileRow, Verdict),
    /// Its verification failed.
    Failed(FileRow, ApiError),
}

impl Now {
    /// The file's outcome, once what follows from it is done.
    async fn settle(self, state: &AppState) -> (Uuid, Result<Outcome, ApiError>) {
        match self {
            Self::Answered(id, outcome) => (id, outcome),
            Self::Moved(file, row, Verdict::Valid { .. }) => {
                crate::metrics::count_ready(file.reserved_bytes, row.reserved_bytes);
                (file.id, Ok(Outcome::Ready(row)))
            }
            Self::Moved(file, rejected, verdict) => {
                if let Verdict::Invalid { check, .. } = verdict {
                    crate::metrics::count_rejected(check.as_str(), file.reserved_bytes);
                }
                discard(state, &rejected).await;
                // An earlier attempt of this completion may have copied a version that
                // then changed: that copy is queued too, and goes now.
                if rejected.object_key != rejected.upload_key {
                    delete_object(state, &rejected.object_key).await;
                }
                (file.id, Ok(Outcome::Rejected(rejected)))
            }
            Self::LostRace(file, verdict) => {
                let now = after_lost_race(state, file.id).await;
                // A copy this completion made goes when nobody serves it.
                if matches!(verdict, Verdict::Valid { .. })
                    && let Ok(now) = &now
                    && copy_is_orphaned(now)
                    && file.object_key != file.upload_key
                {
                    delete_object(state, &file.object_key).await;
                }
                (file.id, now)
            }
            // A store failing because the file was deleted under the completion (Ceph
            // RGW refusing to assemble an upload the delete is aborting) is no outage.
            Self::Failed(file, e) => match filegate_db::files::find(&state.pool, file.id).await {
                Ok(None) => (file.id, Ok(Outcome::NotFound)),
                _ => (file.id, Err(e)),
            },
        }
    }
}

/// After a transition found the file gone or moved under a lapsed claim, whether the
/// copy this completion made to the object key is nobody's. A ready file serves it (the
/// completion that took over copied the same key), and a pending one is another
/// completion's to finish: only a file that is gone, rejected or expired leaves it
/// orphaned.
fn copy_is_orphaned(now: &Outcome) -> bool {
    match now {
        Outcome::NotFound => true,
        Outcome::Settled(f) => matches!(f.status, FileStatus::Rejected | FileStatus::Expired),
        _ => false,
    }
}

/// The answer when a transition found the file gone or moved under a lapsed claim.
async fn after_lost_race(state: &AppState, id: Uuid) -> Result<Outcome, ApiError> {
    Ok(match filegate_db::files::find(&state.pool, id).await? {
        Some(file) => Outcome::Settled(file),
        None => Outcome::NotFound,
    })
}

/// On a store whose ETags do not pin bytes (a PUT it refuses can replace them under the
/// old ETag), the upload is copied to the object key first, and the copy, which no
/// client can write, is what is inspected and then served.
async fn copy_then_inspect(state: &AppState, file: &FileRow) -> Result<Inspection, ApiError> {
    let Some(head) = state.storage.head(&file.upload_key).await? else {
        return Ok(Inspection::Missing(Vec::new()));
    };
    let Some(etag) = head.etag else {
        return Err(ApiError::internal(
            "the object store answered HeadObject without an ETag",
        ));
    };
    match state
        .storage
        .copy(&file.upload_key, &file.object_key, &etag)
        .await?
    {
        CopyOutcome::SourceChanged => Ok(Inspection::Changed),
        CopyOutcome::Copied { .. } => match inspect(state, file, &file.object_key, None).await? {
            // The file's delete removed the copy meanwhile; the transition will tell.
            Inspection::Missing(_) => Ok(Inspection::Changed),
            found => Ok(found),
        },
    }
}

/// Copies the verified version of the upload to the served key. `false` when the
/// upload is no longer that version (look again).
async fn promote(state: &AppState, file: &FileRow, etag: &str) -> Result<bool, ApiError> {
    // Files reserved before uploads were staged are served from where they were PUT.
    if file.upload_key == file.object_key {
        return Ok(true);
    }
    let copied = match state
        .storage
        .copy(&file.upload_key, &file.object_key, etag)
        .await?
    {
        CopyOutcome::SourceChanged => return Ok(false),
        // The store refused copies of any other version: this is the verified one.
        CopyOutcome::Copied { .. } if state.store_trust.copy_precondition => {
            return Ok(true);
        }
        CopyOutcome::Copied { etag: Some(copied) } => Some(copied),
        // Not every store reports the copy's ETag: ask for it.
        CopyOutcome::Copied { etag: None } => state
            .storage
            .head(&file.object_key)
            .await?
            .and_then(|h| h.etag),
    };
    Ok(copied.is_some_and(|c| same_etag(&c, etag)))
}

/// ETags compare without their quotes (some stores drop them in copy results).
fn same_etag(a: &str, b: &str) -> bool {
    a.trim_matches('"') == b.trim_matches('"')
}

/// One inspection of the object at `key` (the upload, or its copy), every read pinned
/// to one version: HEAD (size, type, stored digest) and the first bytes go out together
/// and must carry the same ETag; a full read for the digests asks for that ETag. When
/// the digests are certain to need that full read, it also supplies the first bytes and
/// no ranged read is made. For a multipart file, `parts` are the digests its parts were
/// signed with.
async fn inspect(
    state: &AppState,
    file: &FileRow,
    key: &str,
    parts: Option<&[Checksum]>,
) -> Result<Inspection, ApiError> {
    let declared = declared_type(file)?;
    let streams = streams_anyway(state, file, parts);
    let (head, prefix) = if streams {
        (state.storage.head(key).await, Ok(None))
    } else {
        tokio::join!(
            state.storage.head(key),
            state.storage.read_prefix(key, declared.sniff_len())
        )
    };
    let Some(head) = head? else {
        return Ok(Inspection::Missing(Vec::new()));
    };
    let Some(etag) = head.etag.clone() else {
        return Err(ApiError::internal(
            "the object store answered HeadObject without an ETag",
        ));
    };
    let prefix = prefix?;
    if !streams {
        let Some(prefix) = &prefix else {
            return Ok(Inspection::Changed);
        };
        // An empty object has no range to read and so no ETag on that answer.
        if prefix.etag.as_deref().is_some_and(|e| !same_etag(e, &etag))
            || (prefix.etag.is_none() && head.size != 0)
        {
            return Ok(Inspection::Changed);
        }
    }
    if let Some(invalid) = check_metadata(file, &head)? {
        return Ok(invalid);
    }
    let first =
        match check_digests(state, file, key, &head, &etag, parts, declared.sniff_len()).await? {
            Digested::Found(found) => return Ok(found),
            Digested::Settled(streamed) => match (prefix, streamed) {
                (Some(prefix), _) => prefix.bytes,
                (None, Some(streamed)) => streamed,
                (None, None) => {
                    return Err(ApiError::internal(
                        "the digests were to supply the first bytes, and did not",
                    ));
                }
            },
        };
    let whole = i64::try_from(first.len()).ok() == Some(head.size);
    if let Err(reason) = declared.sniff(&first, whole) {
        return Ok(Inspection::Invalid {
            check: Check::Content,
            reason,
        });
    }
    Ok(Inspection::Valid {
        size: head.size,
        etag,
    })
}

/// Whether the digest checks will read the whole object whatever the store reports:
/// a declared SHA-256 on a store whose own digest is not trusted, or a multipart file's
/// parts on a store not seen to enforce part digests.
fn streams_anyway(state: &AppState, file: &FileRow, parts: Option<&[Checksum]>) -> bool {
    (file.checksum_sha256.is_some() && !state.store_trust.stored_checksum)
        || (parts.is_some() && !state.store_trust.part_checksums)
}

/// What the digest checks concluded.
enum Digested {
    /// Every digest matches; the object's first bytes when they were streamed.
    Settled(Option<Vec<u8>>),
    /// The object failed a digest, or changed under the read.
    Found(Inspection),
}

/// The object's SHA-256 against `checksum_sha256` (when declared), and a multipart
/// object's parts against the digests they were signed with. The store's own digest
/// settles a check where the store was seen to enforce and keep digests; otherwise (and
/// whenever its digest disagrees) filegate streams the very version inspected through
/// SHA-256 itself, part by part, keeping its first `sniff_len` bytes.
async fn check_digests(
    state: &AppState,
    file: &FileRow,
    key: &str,
    head: &ObjectInfo,
    etag: &str,
    parts: Option<&[Checksum]>,
    sniff_len: usize,
) -> Result<Digested, ApiError> {
    let stored = head
        .checksum_sha256
        .as_deref()
        .filter(|_| state.store_trust.stored_checksum);
    let mut whole_settled = file.checksum_sha256.is_none();
    if let (Some(expected), Some(stored), None) = (&file.checksum_sha256, stored, parts)
        && let Ok(stored) = Checksum::parse(stored)
    {
        if stored.to_base64() != *expected {
            return Ok(Digested::Found(checksum_mismatch()));
        }
        whole_settled = true;
    }
    let parts_settled = match parts {
        None => true,
        Some(parts) => {
            state.store_trust.part_checksums
                && stored == Some(filegate_storage::composite_checksum(parts).as_str())
        }
    };
    if whole_settled && parts_settled {
        return Ok(Digested::Settled(None));
    }
    let slice = file.multipart.as_ref().map(|m| m.part_size.unsigned_abs());
    let Some(digests) = state
        .storage
        .digests(key, Some(etag), slice, sniff_len)
        .await?
    else {
        return Ok(Digested::Found(Inspection::Changed));
    };
    if i64::try_from(digests.len).ok() != Some(head.size) {
        return Ok(Digested::Found(Inspection::Changed));
    }
    if file
        .checksum_sha256
        .as_ref()
        .is_some_and(|expected| digests.whole.to_base64() != *expected)
    {
        return Ok(Digested::Found(checksum_mismatch()));
    }
    if let Some(parts) = parts {
        let first_bad = (1..)
            .zip(parts.iter().zip(digests.slices.iter()))
            .find(|(_, (signed, found))| signed != found)
            .map(|(n, _)| n);
        if let Some(n) = first_bad.or((parts.len() != digests.slices.len()).then_some(0)) {
            return Ok(Digested::Found(Inspection::Invalid {
                check: Check::Checksum,
                reason: format!("part {n} of the object does not match the SHA-256 signed for it"),
            }));
        }
    }
    Ok(Digested::Settled(Some(digests.prefix)))
}

fn checksum_mismatch() -> Inspection {
    Inspection::Invalid {
        check: Check::Checksum,
        reason: "the object's SHA-256 does not match checksum_sha256".to_owned(),
    }
}

fn declared_type(file: &FileRow) -> Result<ContentType, ApiError> {
    ContentType::parse(&file.content_type).map_err(|_| {
        ApiError::internal(format!(
            "stored content type {} does not parse",
            file.content_type
        ))
    })
}

/// Size and stored type against the declaration and the limits.
fn check_metadata(file: &FileRow, head: &ObjectInfo) -> Result<Option<Inspection>, ApiError> {
    if let Some(size) = file.size_bytes
        && head.size != size
    {
        return Ok(Some(Inspection::Invalid {
            check: Check::Size,
            reason: format!(
                "the object is {} bytes, but {size} were declared",
                head.size
            ),
        }));
    }
    // The reservation is the limit that applied when the file was reserved (the
    // declared size, or the max file size then); lowering the max later does not
    // reject uploads already under way.
    let limit = file.reserved_bytes;
    if head.size > limit {
        return Ok(Some(Inspection::Invalid {
            check: Check::Size,
            reason: format!(
                "the object is {} bytes, more than the {limit} bytes allowed",
                head.size
            ),
        }));
    }
    let declared = declared_type(file)?;
    let stored_type = head.content_type.as_deref().unwrap_or("");
    if ContentType::parse(stored_type).ok() != Some(declared) {
        return Ok(Some(Inspection::Invalid {
            check: Check::ContentType,
            reason: format!(
                "the object's content type is {stored_type:?}, but {} was declared",
                declared.mime()
            ),
        }));
    }
    Ok(None)
}

/// Deletes a settled or deleted file's upload now (aborting its multipart upload
/// first, which frees any parts); if the store fails, the queued deletion is retried by
/// the reaper.
pub(crate) async fn discard(state: &AppState, file: &FileRow) {
    if let Some(m) = &file.multipart
        && let Err(e) = state
            .storage
            .abort_multipart(&file.upload_key, &m.upload_id)
            .await
    {
        tracing::warn!(error = %e, file = %file.id, "could not abort a multipart upload; the reaper will retry");
        return;
    }
    delete_object(state, &file.upload_key).await;
}

/// Deletes an object now; if the store fails, its queued deletion is retried by the
/// reaper.
pub(crate) async fn delete_object(state: &AppState, key: &str) {
    match state.storage.delete(key).await {
        Ok(()) => {
            if let Err(e) = filegate_db::lifecycle::finish_deletion(&state.pool, key).await {
                tracing::warn!(error = %e, key, "object deleted; the reaper will clear its queue entry");
            }
        }
        Err(e) => tracing::warn!(error = %e, key, "object deletion failed; the reaper will retry"),
    }
}

/// Whether a pending file's upload has arrived: one HEAD (for a multipart file, one
/// ListParts showing every part). `multipart` is the file's upload id and part count.
///
/// # Errors
/// 503 when the store is unreachable.
pub async fn arrived(
    state: &AppState,
    upload_key: &str,
    multipart: Option<(&str, i32)>,
) -> Result<bool, ApiError> {
    Ok(match multipart {
        Some((upload_id, parts)) => {
            crate::multipart::all_parts_held(state, upload_key, upload_id, parts).await?
        }
        None => state.storage.head(upload_key).await?.is_some(),
    })
}

/// Completes a pending file whose upload has arrived, without being asked and without
/// waiting for another completion of it; `None` when nothing is there yet.
///
/// # Errors
/// 503 when the database or the store is unreachable.
pub async fn look(
    state: &AppState,
    id: Uuid,
    upload_key: &str,
    multipart: Option<(&str, i32)>,
    trigger: Trigger,
) -> Result<Option<Outcome>, ApiError> {
    if !arrived(state, upload_key, multipart).await? {
        return Ok(None);
    }
    complete(state, id, Reach::default(), trigger, false)
        .await
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(status: FileStatus) -> FileRow {
        let now = chrono::Utc::now();
        FileRow {
            id: Uuid::nil(),
            workspace_id: Uuid::nil(),
            organization_id: Uuid::nil(),
            name: "a.txt".into(),
            path: String::new(),
            local_file_path: None,
            labels: Vec::new(),
            public_url: None,
            content_type: "text/plain".into(),
            size_bytes: Some(1),
            reserved_bytes: 1,
            checksum_sha256: None,
            status,
            rejection_reason: None,
            object_key: "w/f".into(),
            upload_key: "uploads/w/f".into(),
            etag: None,
            created_by: Uuid::nil(),
            created_at: now,
            updated_at: now,
            completed_at: None,
            upload_expires_at: now,
            multipart: None,
        }
    }

    /// A completion whose claim lapsed must never delete what a ready file serves.
    #[test]
    fn only_a_copy_no_live_file_serves_is_removed_after_a_lost_race() {
        assert!(copy_is_orphaned(&Outcome::NotFound));
        assert!(copy_is_orphaned(&Outcome::Settled(file(
            FileStatus::Rejected
        ))));
        assert!(copy_is_orphaned(&Outcome::Settled(file(
            FileStatus::Expired
        ))));
        assert!(!copy_is_orphaned(&Outcome::Settled(file(
            FileStatus::Ready
        ))));
        assert!(!copy_is_orphaned(&Outcome::Settled(file(
            FileStatus::Pending
        ))));
    }
}
