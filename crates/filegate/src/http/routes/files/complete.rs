//! `POST /v2/files/{file_uuid}/complete`: the client's completion callback, the fastest
//! way of the ones that complete files (see [`crate::service::completion`]), and
//! `POST /v2/files/complete`, the same for up to fifty files at once.

use actix_web::{HttpResponse, web};
use filegate_api::{
    CompleteFilesRequest, CompleteFilesResponse, CompletedFile, EntryFailure, FileFailure,
};
use filegate_db::completion::Reach;
use filegate_db::files::FileRow;
use filegate_domain::{FileStatus, MAX_FILES_PER_REQUEST};
use serde_json::json;
use uuid::Uuid;

use super::{File, file_not_found, file_object};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::http::state::AppState;
use crate::service::completion::{Outcome, Trigger};

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
    let reach = reach(&caller);
    let outcome = state
        .completer
        .complete(path.into_inner(), reach, Trigger::Client, true)
        .await?;
    Ok(HttpResponse::Ok().json(answer(outcome)?))
}

/// Complete up to fifty files at once.
///
/// Each file is verified exactly as by `POST /v2/files/{file_uuid}/complete` and makes
/// its own transition; the uploads are inspected concurrently and every transition is
/// settled in one statement. The answer lists each file in the request's order: the
/// file object when it is ready, else `{file_uuid, error: {code, message, details}}`
/// with the code the single route would answer (`upload_missing`, `upload_mismatch`,
/// `invalid_state`, `not_found`, `unavailable`).
#[utoipa::path(
    post, path = "/v2/files/complete", tag = "files", request_body = CompleteFilesRequest,
    responses(
        (status = 200, description = "One entry per file, in the request's order", body = CompleteFilesResponse),
        (status = 400, description = "Malformed body", body = ErrorEnvelope),
        (status = 422, description = "`invalid_metadata`: not 1 to 50 ids, or an id listed twice (`details.files`)", body = ErrorEnvelope),
        (status = 503, description = "The database is unreachable; every file stays as it was", body = ErrorEnvelope),
    )
)]
pub async fn complete_batch(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<CompleteFilesRequest>,
) -> Result<HttpResponse, ApiError> {
    let ids = &body.file_uuids;
    if ids.is_empty() || ids.len() > MAX_FILES_PER_REQUEST {
        return Err(ApiError::new(
            ErrorCode::InvalidMetadata,
            format!(
                "a request completes 1 to {MAX_FILES_PER_REQUEST} files (got {})",
                ids.len()
            ),
        ));
    }
    let repeated: Vec<_> = (0..ids.len())
        .filter(|&i| ids[..i].contains(&ids[i]))
        .map(|index| {
            EntryFailure::new(
                index,
                ErrorCode::InvalidMetadata,
                format!("file {} is listed twice", ids[index]),
            )
        })
        .collect();
    if !repeated.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidMetadata,
            "each file may be listed once; nothing was completed",
        )
        .with_details(json!({ "files": repeated })));
    }
    let reach = reach(&caller);
    let outcomes = state
        .completer
        .complete_many(ids, reach, Trigger::Client, true)
        .await?;
    let files = outcomes
        .into_iter()
        .map(
            |(file_uuid, outcome)| match outcome.map_err(ApiError::from).and_then(answer) {
                Ok(file) => CompletedFile::Ready(file),
                Err(e) => CompletedFile::Failed(FileFailure {
                    file_uuid,
                    error: e.into_entry(),
                }),
            },
        )
        .collect();
    Ok(HttpResponse::Ok().json(CompleteFilesResponse { files }))
}

/// The files a completion by this caller may touch: its organization's, within its
/// key's workspace scope.
fn reach(caller: &Caller) -> Reach<'_> {
    Reach {
        organization_id: Some(caller.organization_id),
        workspaces: caller.workspace_scope.as_deref(),
    }
}

/// The file object of a completion's outcome, or the error the route answers.
fn answer(outcome: Outcome) -> Result<File, ApiError> {
    match outcome {
        Outcome::Ready(file) => Ok(file_object(file)),
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
fn settled(file: FileRow) -> Result<File, ApiError> {
    match file.status {
        FileStatus::Ready => Ok(file_object(file)),
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
