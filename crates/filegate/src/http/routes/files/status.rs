//! `GET /v2/files/{file_uuid}/status`: where a file is in its processing, in Aymara's
//! shape (`processing_status`: pending, processing, completed, failed).

use actix_web::{HttpResponse, web};
use filegate_api::FileProcessing;
use filegate_db::files::{FileRow, Processing};
use filegate_domain::FileStatus;
use uuid::Uuid;

use super::get::load_current;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorEnvelope};
use crate::http::state::AppState;
use crate::service::files::processing_status;

/// Why an expired file failed.
const EXPIRED: &str = "the file was not uploaded before its upload window closed";

/// Why a rejected or expired file failed, or a ready file's processing did (`None` for
/// the others, and for a rejection that kept no reason).
#[must_use]
pub(crate) fn failure(file: &FileRow) -> Option<String> {
    match file.status {
        FileStatus::Rejected => file.rejection_reason.clone(),
        FileStatus::Expired => Some(EXPIRED.to_owned()),
        FileStatus::Ready if file.processing == Some(Processing::Failed) => {
            file.processing_error.clone()
        }
        FileStatus::Pending | FileStatus::Ready => None,
    }
}

/// A file's processing status, as Aymara's SDK reads it.
#[must_use]
pub fn processing(file: &FileRow) -> FileProcessing {
    FileProcessing {
        file_uuid: file.id,
        processing_status: processing_status(file),
        error_message: failure(file),
        remote_file_path: (file.status == FileStatus::Ready).then(|| file.object_key.clone()),
        created_at: file.created_at,
        updated_at: file.updated_at,
    }
}

/// Where a file is in its processing. A pending file whose upload has arrived is
/// verified first, as `GET /v2/files/{file_uuid}` does, so polling this route
/// completes uploads of clients that never call `complete`.
#[utoipa::path(
    get, path = "/v2/files/{file_uuid}/status", tag = "files",
    params(("file_uuid" = Uuid, Path, description = "The file")),
    responses(
        (status = 200, description = "The file's processing status", body = FileProcessing),
        (status = 404, description = "No such file within the key's reach", body = ErrorEnvelope),
    )
)]
pub async fn status(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let file = load_current(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(processing(&file)))
}
