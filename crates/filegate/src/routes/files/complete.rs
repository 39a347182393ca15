//! `POST /v2/files/{file_uuid}/complete`: look at the stored object itself (HEAD with
//! checksum mode, and a ranged GET of its first bytes) before trusting it.

use actix_web::{HttpResponse, web};
use filegate_db::files::FileRow;
use filegate_domain::{Checksum, ContentType, FileStatus, SNIFF_BYTES};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{FileObject, load};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::state::AppState;

/// What the stored object turned out to be.
enum Verdict {
    Missing,
    Valid {
        size: i64,
    },
    /// Which check failed (a metric label) and the sentence for the file's record.
    Invalid(&'static str, String),
}

/// The completion callback: verify the stored object, then mark the file ready.
///
/// Checks, in order: the object exists; its size; its stored content type; its
/// SHA-256 (when declared); its first bytes against the declared type.
#[utoipa::path(
    post, path = "/v2/files/{file_uuid}/complete", tag = "files",
    params(("file_uuid" = Uuid, Path, description = "The file")),
    responses(
        (status = 200, description = "Ready (also for a repeat on a ready file)", body = FileObject),
        (status = 404, description = "No such file within the key's reach", body = ErrorEnvelope),
        (status = 409, description = "`invalid_state`: the file was rejected or expired", body = ErrorEnvelope),
        (status = 422, description = "`upload_missing` (still pending) or `upload_mismatch` (rejected, object deleted)", body = ErrorEnvelope),
    )
)]
pub async fn complete(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let file = load(&state, &caller, path.into_inner()).await?;
    if file.status != FileStatus::Pending {
        return settled(file);
    }
    let max_file_bytes = file.max_file_bytes;
    match verify(&state, &file, max_file_bytes).await? {
        Verdict::Missing => Err(count(
            "missing",
            ApiError::unprocessable(
                "upload_missing",
                "no object was uploaded for this file yet; PUT it to its file_url, then complete again",
            ),
        )),
        Verdict::Valid { size } => {
            match filegate_db::files::mark_ready(&state.pool, file.id, size).await? {
                Some(ready) => {
                    let m = crate::metrics::get();
                    m.completions.with_label_values(&["ready"]).inc();
                    let used = u64::try_from(ready.reserved_bytes).unwrap_or(0);
                    m.quota_bytes.with_label_values(&["used"]).inc_by(used);
                    let released =
                        u64::try_from(file.reserved_bytes - ready.reserved_bytes).unwrap_or(0);
                    m.quota_bytes
                        .with_label_values(&["released"])
                        .inc_by(released);
                    Ok(HttpResponse::Ok().json(FileObject::from(ready)))
                }
                // A concurrent completion (or the reaper) moved it first.
                None => settled(load(&state, &caller, file.id).await?),
            }
        }
        Verdict::Invalid(check, reason) => {
            match filegate_db::files::mark_rejected(&state.pool, file.id, &reason).await? {
                Some(rejected) => {
                    let m = crate::metrics::get();
                    m.rejections.with_label_values(&[check]).inc();
                    let released = u64::try_from(file.reserved_bytes).unwrap_or(0);
                    m.quota_bytes
                        .with_label_values(&["released"])
                        .inc_by(released);
                    m.completions.with_label_values(&["rejected"]).inc();
                    delete_object(&state, &rejected.object_key).await;
                    Err(mismatch(&rejected))
                }
                None => settled(load(&state, &caller, file.id).await?),
            }
        }
    }
}

/// Counts a completion outcome and passes its error through.
fn count(outcome: &str, e: ApiError) -> ApiError {
    crate::metrics::get()
        .completions
        .with_label_values(&[outcome])
        .inc();
    e
}

/// The answer for a file that is no longer pending: ready files answer the same 200
/// every time; rejected and expired ones are a state conflict.
fn settled(file: FileRow) -> Result<HttpResponse, ApiError> {
    match file.status {
        FileStatus::Ready => Ok(HttpResponse::Ok().json(FileObject::from(file))),
        FileStatus::Rejected => Err(ApiError::conflict(
            "invalid_state",
            format!(
                "the file was rejected: {}",
                file.rejection_reason
                    .as_deref()
                    .unwrap_or("verification failed")
            ),
        )
        .with_details(json!({ "status": "rejected", "rejection_reason": file.rejection_reason }))),
        FileStatus::Expired => Err(ApiError::conflict(
            "invalid_state",
            "the file's upload window expired",
        )
        .with_details(json!({ "status": "expired" }))),
        FileStatus::Pending => Err(ApiError::internal(
            "a completed transition left the file pending",
        )),
    }
}

fn mismatch(file: &FileRow) -> ApiError {
    let reason = file
        .rejection_reason
        .as_deref()
        .unwrap_or("verification failed");
    ApiError::unprocessable(
        "upload_mismatch",
        format!("the upload was rejected: {reason}"),
    )
    .with_details(json!({ "file_uuid": file.id, "status": "rejected", "rejection_reason": reason }))
}

/// Deletes a rejected file's object now; if the store fails, the queued deletion is
/// retried by the reaper.
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

/// Checks, in order: the object exists; its size; its stored type; its digest; its first bytes.
async fn verify(
    state: &AppState,
    file: &FileRow,
    max_file_bytes: i64,
) -> Result<Verdict, ApiError> {
    // HEAD and the ranged GET go out together: one round trip to the store, not two.
    let (head, prefix) = tokio::join!(
        state.storage.head(&file.object_key),
        state.storage.read_prefix(&file.object_key, SNIFF_BYTES)
    );
    let Some(head) = head? else {
        return Ok(Verdict::Missing);
    };
    let declared = ContentType::parse(&file.content_type).map_err(|_| {
        ApiError::internal(format!(
            "stored content type {} does not parse",
            file.content_type
        ))
    })?;
    if let Some(size) = file.size_bytes
        && head.size != size
    {
        return Ok(Verdict::Invalid(
            "size",
            format!(
                "the object is {} bytes, but {size} were declared",
                head.size
            ),
        ));
    }
    let limit = max_file_bytes.min(file.reserved_bytes);
    if head.size > limit {
        return Ok(Verdict::Invalid(
            "size",
            format!(
                "the object is {} bytes, more than the {limit} bytes allowed",
                head.size
            ),
        ));
    }
    let stored_type = head.content_type.as_deref().unwrap_or("");
    if ContentType::parse(stored_type).ok() != Some(declared) {
        return Ok(Verdict::Invalid(
            "content_type",
            format!(
                "the object's content type is {stored_type:?}, but {} was declared",
                declared.mime()
            ),
        ));
    }
    if let Some(expected) = &file.checksum_sha256 {
        let actual = match head
            .checksum_sha256
            .as_deref()
            .and_then(|c| Checksum::parse(c).ok())
        {
            Some(stored) => Some(stored),
            // The store kept no digest (written without one): hash the object itself.
            None => state
                .storage
                .read_all(&file.object_key)
                .await?
                .map(|bytes| Checksum::from_digest(Sha256::digest(&bytes).into())),
        };
        if actual.map(|c| c.to_base64()).as_deref() != Some(expected.as_str()) {
            return Ok(Verdict::Invalid(
                "checksum",
                "the object's SHA-256 does not match checksum_sha256".to_owned(),
            ));
        }
    }
    let Some(prefix) = prefix? else {
        return Ok(Verdict::Missing);
    };
    if let Err(reason) = declared.sniff(&prefix) {
        return Ok(Verdict::Invalid("content", reason));
    }
    Ok(Verdict::Valid { size: head.size })
}
