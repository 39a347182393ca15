//! `POST /v2/files/{file_uuid}/complete`: the client's completion callback, the fast
//! path of the three that complete files (see [`crate::completion`]).

use actix_web::{HttpResponse, web};
use filegate_db::completion::Reach;
use filegate_db::files::FileRow;
use filegate_domain::FileStatus;
use serde_json::json;
use uuid::Uuid;

use super::{File, file_not_found, file_object};
use crate::auth::Caller;
use crate::completion::{Outcome, Trigger};
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::state::AppState;

/// The completion callback: verify the stored object, then mark the file ready.
///
/// Checks, in order: the object exists; its size; its stored content type; its
/// SHA-256 (when declared); its first bytes against the declared type. Every read is
/// pinned to one version of the object (its ETag), and that version is what the file
/// serves from then on.
#[utoipa::path(
    post, path = "/v2/files/{file_uuid}/complete", tag = "files",
    params(("file_uuid" = Uuid, Path, description = "The file")),
    responses(
        (status = 200, description = "Ready (also for a repeat on a ready file)", body = File),
        (status = 404, description = "No such file within the key's reach", body = ErrorEnvelope),
        (status = 409, description = "`invalid_state`: the file was rejected or expired", body = ErrorEnvelope),
        (status = 422, description = "`upload_missing` (still pending) or `upload_mismatch` (rejected, object deleted)", body = ErrorEnvelope),
        (status = 503, description = "The database or the object store is unreachable; the file stays pending", body = ErrorEnvelope),
    )
)]
pub async fn complete(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let reach = Reach {
        organization_id: Some(caller.organization_id),
        workspaces: caller.workspace_scope.as_deref(),
    };
    let outcome =
        crate::completion::complete(&state, path.into_inner(), reach, Trigger::Client, true)
            .await?;
    answer(outcome)
}

/// The HTTP answer for a completion's outcome.
pub(crate) fn answer(outcome: Outcome) -> Result<HttpResponse, ApiError> {
    match outcome {
        Outcome::Ready(file) => Ok(HttpResponse::Ok().json(file_object(file))),
        Outcome::Rejected(file) => Err(mismatch(&file)),
        Outcome::Missing(file, parts) if file.multipart.is_some() => Err(ApiError::new(
            ErrorCode::UploadMissing,
            format!(
                "{} of the file's parts are not at the store yet; send them (POST …/parts signs their URLs), then complete again",
                parts.len()
            ),
        )
        .with_details(json!({ "missing_parts": parts }))),
        Outcome::Missing(..) => Err(ApiError::new(
            ErrorCode::UploadMissing,
            "no object was uploaded for this file yet; PUT it to its file_url, then complete again",
        )),
        Outcome::Settled(file) => settled(file),
        Outcome::NotFound => Err(file_not_found()),
        Outcome::Busy => Err(ApiError::unavailable(
            "this file's completion",
            "another completion holds the file",
        )),
    }
}

/// The answer for a file that is no longer pending: ready files answer the same 200
/// every time; rejected and expired ones are a state conflict.
fn settled(file: FileRow) -> Result<HttpResponse, ApiError> {
    match file.status {
        FileStatus::Ready => Ok(HttpResponse::Ok().json(file_object(file))),
        FileStatus::Rejected => Err(ApiError::new(
            ErrorCode::InvalidState,
            format!(
                "the file was rejected: {}",
                file.rejection_reason
                    .as_deref()
                    .unwrap_or("verification failed")
            ),
        )
        .with_details(json!({ "status": "rejected", "rejection_reason": file.rejection_reason }))),
        FileStatus::Expired => Err(ApiError::new(
            ErrorCode::InvalidState,
            "the file's upload window expired",
        )
        .with_details(json!({ "status": "expired" }))),
        // Another completion took the file over after this one's claim lapsed.
        FileStatus::Pending => Err(ApiError::unavailable(
            "this file's completion",
            "another completion holds the file",
        )),
    }
}

fn mismatch(file: &FileRow) -> ApiError {
    let reason = file
        .rejection_reason
        .as_deref()
        .unwrap_or("verification failed");
    ApiError::new(
        ErrorCode::UploadMismatch,
        format!("the upload was rejected: {reason}"),
    )
    .with_details(json!({ "file_uuid": file.id, "status": "rejected", "rejection_reason": reason }))
}
