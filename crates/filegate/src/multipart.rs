//! Multipart files in completion and clean-up: assembling the parts the store holds
//! (each held to the digest filegate signed for it), and aborting uploads no pending
//! file owns.

use chrono::{DateTime, Utc};
use filegate_db::files::{FileRow, Multipart};
use filegate_domain::Checksum;
use filegate_domain::keys::KeyKind;
use filegate_domain::multipart::PartPlan;
use filegate_storage::{Assembled, Storage, StorageError, StoredPart};

use crate::error::ApiError;
use crate::state::AppState;

/// What assembling a multipart file's upload ended with.
pub(crate) enum Assembly {
    /// The object exists: verify it against these digests (part 1's first).
    Assembled(Vec<Checksum>),
    /// These parts are not (correctly) there yet: the file stays pending.
    Missing(Vec<i32>),
    /// The upload changed under the assembly: look again.
    Changed,
    /// The store was busy with the upload (an abort or another assembly): look again,
    /// and answer 503 rather than reject when it stays so.
    Busy,
}

/// Assembles a multipart file's object from the parts the store holds, unless an
/// earlier completion did. A part counts as there only when its length is the plan's
/// and, where the store reports a digest, that digest is the one filegate signed last
/// for the part (an older URL's upload must be sent again).
///
/// # Errors
/// 503 when the database or the store is unreachable.
pub(crate) async fn assemble(
    state: &AppState,
    file: &FileRow,
    multipart: &Multipart,
) -> Result<Assembly, ApiError> {
    let key = &file.object_key;
    let recorded = filegate_db::files::part_digests(&state.pool, file.id).await?;
    let signed = |n: i32| {
        recorded
            .iter()
            .find(|(number, _)| *number == n)
            .and_then(|(_, sum)| Checksum::parse(sum).ok())
    };
    let digests: Vec<Checksum> = (1..=multipart.part_count).filter_map(signed).collect();
    if state.storage.head(key).await?.is_some() {
        return Ok(Assembly::Assembled(digests));
    }
    let Some(held) = state.storage.list_parts(key, &multipart.upload_id).await? else {
        // Assembled by another completion since the HEAD, or aborted (a delete racing
        // this completion): the next look tells which.
        return Ok(Assembly::Changed);
    };
    let plan = file
        .size_bytes
        .and_then(|size| PartPlan::new(size, multipart.part_size));
    let plan_length = |n: i32| plan.and_then(|p| p.part_length(n));
    let mut parts = Vec::with_capacity(held.len());
    let mut missing = Vec::new();
    for n in 1..=multipart.part_count {
        let part = held.iter().find(|p| p.number == n);
        match (part, signed(n)) {
            (Some(p), Some(sum))
                if Some(p.size) == plan_length(n)
                    && p.checksum_sha256
                        .as_deref()
                        .is_none_or(|c| c == sum.to_base64()) =>
            {
                parts.push(StoredPart {
                    checksum_sha256: Some(sum.to_base64()),
                    ..p.clone()
                });
            }
            _ => missing.push(n),
        }
    }
    if !missing.is_empty() {
        return Ok(Assembly::Missing(missing));
    }
    Ok(
        match state
            .storage
            .complete_multipart(key, &multipart.upload_id, &parts)
            .await?
        {
            Assembled::Done => Assembly::Assembled(digests),
            Assembled::Gone | Assembled::PartsChanged => Assembly::Changed,
            Assembled::Busy => Assembly::Busy,
        },
    )
}

/// Whether a pending multipart file has every part at the store (one ListParts): the
/// finalizer and the event route complete it then.
///
/// # Errors
/// 503 when the store is unreachable.
pub(crate) async fn all_parts_held(
    state: &AppState,
    key: &str,
    upload_id: &str,
    part_count: i32,
) -> Result<bool, ApiError> {
    Ok(match state.storage.list_parts(key, upload_id).await? {
        Some(parts) => parts.len() >= usize::try_from(part_count).unwrap_or(usize::MAX),
        // Gone: assembled by a completion that has not settled yet, or aborted; a
        // completion settles either.
        None => true,
    })
}

/// What one sweep of uploads in progress did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct UploadSweep {
    /// Multipart uploads under filegate's keys that the store listed.
    pub listed: u64,
    /// Of those, uploads no pending file owns that were old enough to abort.
    pub orphaned: u64,
    /// Aborted (0 in a dry run).
    pub aborted: u64,
    /// Aborts that failed (tried again next sweep).
    pub failures: u64,
    /// The store does not list uploads in progress (s3s-fs 0.14): nothing was swept.
    pub unlisted: bool,
}

/// Aborts multipart uploads under filegate's keys that no pending file owns and that
/// were started before `cutoff` (a reservation starts its uploads just before it
/// inserts their files, so younger ones may still be about to be owned).
///
/// # Errors
/// When the database or the store fails; what was aborted stays aborted.
pub async fn sweep_uploads(
    pool: &filegate_db::Pool,
    storage: &Storage,
    cutoff: DateTime<Utc>,
    dry_run: bool,
) -> Result<UploadSweep, SweepError> {
    let mut sweep = UploadSweep::default();
    let mut after = None;
    loop {
        let page = match storage.list_uploads_page(after).await {
            Ok(page) => page,
            Err(StorageError::NotImplemented(_)) => {
                sweep.unlisted = true;
                break;
            }
            Err(e) => return Err(e.into()),
        };
        let ours: Vec<_> = page
            .uploads
            .iter()
            .filter(|u| KeyKind::of(&u.key) != KeyKind::Foreign)
            .collect();
        sweep.listed += ours.len() as u64;
        let ids: Vec<&str> = ours.iter().map(|u| u.upload_id.as_str()).collect();
        let owned = filegate_db::files::owned_uploads(pool, &ids).await?;
        for upload in ours {
            if owned.contains(&upload.upload_id) || upload.initiated.is_none_or(|t| t >= cutoff) {
                continue;
            }
            sweep.orphaned += 1;
            if dry_run {
                continue;
            }
            match storage
                .abort_multipart(&upload.key, &upload.upload_id)
                .await
            {
                Ok(()) => {
                    tracing::info!(key = upload.key, "aborted a multipart upload no file owns");
                    sweep.aborted += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, key = upload.key, "could not abort an orphaned multipart upload");
                    sweep.failures += 1;
                }
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    crate::metrics::get()
        .reaper
        .with_label_values(&["multipart_aborted"])
        .inc_by(sweep.aborted);
    Ok(sweep)
}

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Database(#[from] filegate_db::DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}
