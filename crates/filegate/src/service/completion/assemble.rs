//! Multipart files in completion: assembling the parts the store holds, each held to
//! the digest filegate signed for it, and telling whether every part has arrived.

use std::collections::HashMap;

use filegate_db::files::{FileRow, Multipart};
use filegate_domain::Checksum;
use filegate_domain::multipart::PartPlan;
use filegate_storage::{Assembled, StorageError, StoredPart};

use super::{CompletionError, Ledger};
use crate::service::store::ObjectStore;

/// What assembling a multipart file's upload ended with.
#[derive(Debug)]
pub(super) enum Assembly {
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
/// [`CompletionError`] when the database or the store is unreachable.
pub(super) async fn assemble(
    store: &impl ObjectStore,
    ledger: &impl Ledger,
    file: &FileRow,
    multipart: &Multipart,
) -> Result<Assembly, CompletionError> {
    let key = &file.object_key;
    // Up to 10,000 parts: looked up by number, not by scanning.
    let signed: HashMap<i32, Checksum> = ledger
        .part_digests(file.id)
        .await?
        .into_iter()
        .filter_map(|(number, sum)| Some((number, Checksum::parse(&sum).ok()?)))
        .collect();
    let digests: Vec<Checksum> = (1..=multipart.part_count)
        .filter_map(|n| signed.get(&n).copied())
        .collect();
    if store.head(key).await?.is_some() {
        return Ok(Assembly::Assembled(digests));
    }
    let Some(held) = store.list_parts(key, &multipart.upload_id).await? else {
        // Assembled by another completion since the HEAD, or aborted (a delete racing
        // this completion): the next look tells which.
        return Ok(Assembly::Changed);
    };
    let held: HashMap<i32, &StoredPart> = held.iter().map(|p| (p.number, p)).collect();
    let plan = file
        .size_bytes
        .and_then(|size| PartPlan::new(size, multipart.part_size));
    let plan_length = |n: i32| plan.and_then(|p| p.part_length(n));
    let mut parts = Vec::with_capacity(held.len());
    let mut missing = Vec::new();
    for n in 1..=multipart.part_count {
        match (held.get(&n), signed.get(&n)) {
            (Some(p), Some(sum))
                if Some(p.size) == plan_length(n)
                    && p.checksum_sha256
                        .as_deref()
                        .is_none_or(|c| c == sum.to_base64()) =>
            {
                parts.push(StoredPart {
                    checksum_sha256: Some(sum.to_base64()),
                    ..(*p).clone()
                });
            }
            _ => missing.push(n),
        }
    }
    if !missing.is_empty() {
        return Ok(Assembly::Missing(missing));
    }
    Ok(
        match store
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
/// [`StorageError`] when the store is unreachable.
pub(super) async fn all_parts_held(
    store: &impl ObjectStore,
    key: &str,
    upload_id: &str,
    part_count: i32,
) -> Result<bool, StorageError> {
    Ok(match store.list_parts(key, upload_id).await? {
        Some(parts) => parts.len() >= usize::try_from(part_count).unwrap_or(usize::MAX),
        // Gone: assembled by a completion that has not settled yet, or aborted; a
        // completion settles either.
        None => true,
    })
}
