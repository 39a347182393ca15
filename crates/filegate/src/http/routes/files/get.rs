//! `GET /v2/files/{file_uuid}`: the file object, plus a short-lived download URL for
//! ready files that always downloads as an attachment under the file's name.

use actix_web::{HttpResponse, web};
use filegate_api::FileWithDownload;
use filegate_db::files::FileRow;
use filegate_domain::FileStatus;
use uuid::Uuid;

use super::{load, with_download};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorEnvelope};
use crate::http::state::AppState;
use crate::service::completion::{Outcome, Trigger};

/// A pending file whose upload has arrived is completed on the way (the same checks
/// and transition as `POST …/complete`); when the store cannot be asked, the file is
/// answered as it is.
pub(crate) async fn look(state: &AppState, file: FileRow) -> FileRow {
    let multipart = file
        .multipart
        .as_ref()
        .map(|m| (m.upload_id.as_str(), m.part_count));
    match state
        .completer
        .look(file.id, &file.upload_key, multipart, Trigger::Read)
        .await
    {
        Ok(Some(Outcome::Ready(f) | Outcome::Rejected(f) | Outcome::Settled(f))) => f,
        Ok(_) => file,
        Err(e) => {
            tracing::warn!(error = %e, file = %file.id, "could not look for a pending file's upload");
            file
        }
    }
}

/// The file `id` as it is now: a pending file nothing streams into (no ingest, no
/// import) is looked at first, so polling completes uploads of clients that never call
/// `complete`; one whose bytes are on their way is answered as it is.
pub(crate) async fn load_current(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<FileRow, ApiError> {
    let file = load(state, caller, id).await?;
    if file.status == FileStatus::Pending && !file.on_the_way() {
        return Ok(look(state, file).await);
    }
    Ok(file)
}

/// One file. A pending file whose upload has arrived is verified first, so polling
/// this route completes uploads of clients that never call `complete`.
#[utoipa::path(
    get, path = "/v2/files/{file_uuid}", tag = "files",
    params(("file_uuid" = Uuid, Path, description = "The file")),
    responses(
        (status = 200, description = "The file", body = FileWithDownload),
        (status = 404, description = "No such file within the key's reach", body = ErrorEnvelope),
    )
)]
pub async fn get(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let file = load_current(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(with_download(&state, file).await?))
}
