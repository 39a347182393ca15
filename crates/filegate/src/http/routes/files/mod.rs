//! `/v2/files…`: one module per operation, and the file object they share.

pub mod complete;
pub mod create;
pub mod delete;
pub mod frames;
pub mod get;
mod idempotency;
pub mod list;
pub mod parts;
pub mod status;
pub mod update;
pub mod upload;

pub use crate::service::files::file_object;
pub use filegate_api::File;
use filegate_db::files::FileRow;
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// The file object of a row, with a short-lived download URL when it is ready (under
/// `download_url`, and as Aymara's `file_url`).
///
/// # Errors
/// 500 when signing fails.
pub async fn with_download(
    state: &AppState,
    file: FileRow,
) -> Result<filegate_api::FileWithDownload, ApiError> {
    let (mut download_url, mut download_expires_at) = (None, None);
    if file.status == filegate_domain::FileStatus::Ready {
        let name = filegate_domain::FileName::from_stored(&file.name);
        let signed = state
            .storage
            .presign_get(
                &file.object_key,
                &name.attachment_disposition(),
                file.content_type.mime(),
                state.settings.storage.download_ttl,
            )
            .await?;
        download_url = Some(signed.url);
        download_expires_at = Some(signed.expires_at);
    }
    Ok(filegate_api::FileWithDownload {
        file: file_object(file),
        file_url: download_url.clone(),
        download_url,
        download_expires_at,
    })
}

/// The one answer for a file a key may not see, whether or not it exists.
pub fn file_not_found() -> ApiError {
    ApiError::not_found("no such file")
}

/// A file the caller may reach (its organization and, if scoped, its workspaces).
///
/// # Errors
/// 404 for anything else; 503 when the database is down.
pub async fn load(state: &AppState, caller: &Caller, id: Uuid) -> Result<FileRow, ApiError> {
    filegate_db::files::get(&state.pool, id, caller.organization_id)
        .await?
        .filter(|f| caller.scope_admits(f.workspace_id))
        .ok_or_else(file_not_found)
}
