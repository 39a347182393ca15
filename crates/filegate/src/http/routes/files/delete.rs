//! `DELETE /v2/files/{file_uuid}`: the record and its bytes leave the counters in one
//! guarded statement that also queues the object's deletion; the object is deleted
//! right away when the store answers, else by the reaper. No quota leak, no orphan.

use actix_web::{HttpResponse, web};
use filegate_domain::FileStatus;
use uuid::Uuid;

use super::{file_not_found, load};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorEnvelope};
use crate::http::state::AppState;

/// Delete a file: its object, its record and its bytes from the quota.
#[utoipa::path(
    delete, path = "/v2/files/{file_uuid}", tag = "files",
    params(("file_uuid" = Uuid, Path, description = "The file")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such file within the key's reach", body = ErrorEnvelope),
    )
)]
pub async fn delete(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    remove(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Deletes the file `id`: its row and bytes leave the counters, its objects go now or
/// on the reaper's next pass.
pub(crate) async fn remove(state: &AppState, caller: &Caller, id: Uuid) -> Result<(), ApiError> {
    let file = load(state, caller, id).await?;
    let margin = state.settings.reaper.upload_margin;
    let key = filegate_db::files::delete(&state.pool, file.id, file.workspace_id, margin)
        .await?
        .ok_or_else(file_not_found)?;
    // A multipart file's upload goes first: a completion assembling it meanwhile then
    // finds it gone, or made the object this deletion then removes.
    // When the store refuses the abort (busy assembling), the queued deletion, due now,
    // aborts and deletes on the reaper's next pass.
    let aborted = match &file.multipart {
        Some(m) if file.status == FileStatus::Pending => {
            state.uploads.abort(&file.object_key, &m.upload_id).await
        }
        _ => true,
    };
    if aborted {
        state.completer.delete_now(&key).await;
    }
    // A pending file's upload goes now too, not on the reaper's next pass: its bytes
    // left the quota with the row. (Its deletion stays queued until its URL expired.)
    if file.status == FileStatus::Pending && file.upload_key != key {
        state.completer.delete_now(&file.upload_key).await;
    }
    Ok(())
}
