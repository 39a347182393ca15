//! `GET /v2/files/{file_uuid}/frames`: a processed video's frames, as short-lived
//! presigned GETs in frame order (Aymara's `get_frames`).

use actix_web::{HttpResponse, web};
use filegate_api::{ErrorCode, FileFrames, ProcessingStatus};
use filegate_domain::FileKind;
use serde_json::json;
use uuid::Uuid;

use super::get::load_current;
use super::status::failure;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorEnvelope};
use crate::http::state::AppState;
use crate::service::files::processing_status;
use crate::service::processing::video::FRAME;

/// A video's frames, once its processing has completed: check `processing_status`
/// (`GET /v2/files/{file_uuid}/status`) first.
#[utoipa::path(
    get, path = "/v2/files/{file_uuid}/frames", tag = "files",
    params(("file_uuid" = Uuid, Path, description = "The video")),
    responses(
        (status = 200, description = "The frames' URLs, in frame order", body = FileFrames),
        (status = 404, description = "No such file within the key's reach", body = ErrorEnvelope),
        (status = 409, description = "`invalid_state`: the video's processing has not completed (`details.processing_status` says where it is)", body = ErrorEnvelope),
        (status = 422, description = "`unsupported_type`: the file is not a video", body = ErrorEnvelope),
    )
)]
pub async fn frames(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let file = load_current(&state, &caller, path.into_inner()).await?;
    if file.content_type.kind() != FileKind::Video {
        return Err(ApiError::new(
            ErrorCode::UnsupportedType,
            format!(
                "frames are made of videos; this file is {}",
                file.content_type.mime()
            ),
        ));
    }
    // Only a ready file gets a processing state: completed means its frames are there.
    if file.processing != Some(filegate_db::files::Processing::Completed) {
        let status = processing_status(&file);
        let message = match status {
            ProcessingStatus::Failed => "the video's processing failed: it has no frames",
            ProcessingStatus::Completed => {
                "the video has no frames: no replica ran the video processor when it became ready"
            }
            ProcessingStatus::Pending | ProcessingStatus::Processing => {
                "the video's frames are not made yet: poll its processing_status until completed"
            }
        };
        return Err(
            ApiError::new(ErrorCode::InvalidState, message).with_details(json!({
                "processing_status": status,
                "error_message": failure(&file),
            })),
        );
    }
    let frames = filegate_db::processing::derived(&state.pool, file.id, FRAME).await?;
    let ttl = state.settings.processing.frame_url_ttl;
    let mut urls = Vec::with_capacity(frames.len());
    let mut expires_at = chrono::Utc::now();
    for f in &frames {
        let disposition = format!("inline; filename=\"frame-{:06}.jpg\"", f.seq);
        let signed = state
            .storage
            .presign_get(&f.object_key, &disposition, &f.content_type, ttl)
            .await?;
        expires_at = signed.expires_at;
        urls.push(signed.url);
    }
    Ok(HttpResponse::Ok().json(FileFrames {
        file_uuid: file.id,
        frame_count: i64::try_from(urls.len()).unwrap_or(i64::MAX),
        frame_urls: urls,
        frame_urls_expire_at: expires_at,
    }))
}
