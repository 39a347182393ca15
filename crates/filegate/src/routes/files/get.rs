//! `GET /v2/files/{file_uuid}`: the file object, plus a short-lived download URL for
//! ready files that always downloads as an attachment under the file's name.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use filegate_domain::{FileName, FileStatus};
use serde::Serialize;
use uuid::Uuid;

use super::{FileObject, load};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::state::AppState;

/// A file, with a download URL when it is ready.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FileWithDownload {
    #[serde(flatten)]
    file: FileObject,
    /// A short-lived presigned GET that downloads as an attachment (ready files only).
    #[serde(skip_serializing_if = "Option::is_none")]
    download_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    download_expires_at: Option<DateTime<Utc>>,
}

/// One file.
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
    let file = load(&state, &caller, path.into_inner()).await?;
    let (mut download_url, mut download_expires_at) = (None, None);
    if file.status == FileStatus::Ready {
        // Stored names passed FileName::parse on the way in.
        let name = FileName::parse(&file.name).map_err(ApiError::internal)?;
        let ttl = Duration::from_secs(state.settings.storage.download_ttl_secs);
        let signed = state
            .storage
            .presign_get(
                &file.object_key,
                &name.attachment_disposition(),
                &file.content_type,
                ttl,
            )
            .await?;
        download_url = Some(signed.url);
        download_expires_at = Some(signed.expires_at);
    }
    Ok(HttpResponse::Ok().json(FileWithDownload {
        file: FileObject::from(file),
        download_url,
        download_expires_at,
    }))
}
