use actix_web::{HttpResponse, web};
use filegate_api::UsageResponse;
use uuid::Uuid;

use crate::http::auth::{Caller, forbidden_workspace};
use crate::http::error::{ApiError, ErrorEnvelope};
use crate::http::state::AppState;

/// A workspace's quota, usage and limits.
#[utoipa::path(
    get, path = "/v2/workspaces/{workspace_uuid}/usage", tag = "workspaces",
    params(("workspace_uuid" = Uuid, Path, description = "The workspace")),
    responses(
        (status = 200, description = "Usage", body = UsageResponse),
        (status = 403, description = "Workspace outside the key's reach", body = ErrorEnvelope),
    )
)]
pub async fn usage(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = caller.target_workspace(Some(path.into_inner()))?;
    let ws = filegate_db::workspaces::get(&state.pool, id)
        .await?
        .filter(|w| caller.owns(w.organization_id))
        .ok_or_else(forbidden_workspace)?;
    Ok(HttpResponse::Ok().json(UsageResponse {
        workspace_uuid: ws.id,
        quota_bytes: ws.limits.quota_bytes,
        used_bytes: ws.used_bytes,
        reserved_bytes: ws.reserved_bytes,
        file_count: ws.live_files,
        pending_file_count: ws.pending_files,
        max_files: ws.limits.max_files,
        max_pending_files: ws.limits.max_pending_files,
        max_file_bytes: ws.limits.max_file_bytes,
        allowed_content_types: ws
            .limits
            .allowed_types
            .iter()
            .map(|t| t.mime().to_owned())
            .collect(),
        unique_names: ws.limits.unique_names,
    }))
}
