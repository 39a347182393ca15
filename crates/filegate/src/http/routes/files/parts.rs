//! `POST /v2/files/{file_uuid}/parts` signs part URLs of a multipart file, each part's
//! length and SHA-256 signed in; `GET` lists the parts the store holds, so a client
//! resumes without sending them again.

use actix_web::{HttpResponse, web};
use filegate_api::{EntryFailure, MultipartUpload, SignPartsRequest, StoredPart, StoredParts};
use filegate_db::files::{FileRow, Multipart};
use filegate_domain::multipart::{PartPlan, UploadMethod};
use filegate_domain::{Checksum, FileStatus};
use serde_json::json;
use uuid::Uuid;

use super::load;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::http::state::AppState;
use crate::service::uploads::part_specs;

/// The most parts one request signs.
pub const MAX_PARTS_PER_REQUEST: usize = 1000;

/// Sign URLs for parts of a multipart file.
///
/// Each part's SHA-256 is recorded and signed into its URL together with its length,
/// so the store refuses other bytes, and completion holds the assembled file to these
/// digests. Signing a part again (a new digest, or a fresh URL) replaces the old one.
#[utoipa::path(
    post, path = "/v2/files/{file_uuid}/parts", tag = "files", request_body = SignPartsRequest,
    params(("file_uuid" = Uuid, Path, description = "The file")),
    responses(
        (status = 200, description = "The signed part URLs", body = MultipartUpload),
        (status = 400, description = "Malformed body", body = ErrorEnvelope),
        (status = 404, description = "No such file within the key's reach", body = ErrorEnvelope),
        (status = 409, description = "`invalid_state`: not a pending multipart file, or its upload window closed", body = ErrorEnvelope),
        (status = 422, description = "`invalid_metadata`: a part number outside the plan, repeated, or a bad digest; `details.parts` lists each", body = ErrorEnvelope),
    )
)]
pub async fn sign_parts(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
    body: web::Json<SignPartsRequest>,
) -> Result<HttpResponse, ApiError> {
    let file = load(&state, &caller, path.into_inner()).await?;
    let (multipart, plan) = pending_multipart(&file)?;
    let parts = parse_parts(&body.parts, &plan)?;
    let recorded: Vec<(i32, String)> = parts.iter().map(|(n, c)| (*n, c.to_base64())).collect();
    if !filegate_db::files::record_parts(&state.pool, file.id, file.workspace_id, &recorded).await?
    {
        return Err(not_pending());
    }
    let signed = state
        .uploads
        .sign_parts(
            &file.object_key,
            &multipart.upload_id,
            &part_specs(&plan, &parts),
            file.upload_expires_at,
        )
        .await?;
    Ok(HttpResponse::Ok().json(MultipartUpload {
        upload_id: multipart.upload_id.clone(),
        part_size_bytes: multipart.part_size,
        part_count: multipart.part_count,
        parts: signed,
    }))
}

/// List the parts the store holds for a pending multipart file.
#[utoipa::path(
    get, path = "/v2/files/{file_uuid}/parts", tag = "files",
    params(("file_uuid" = Uuid, Path, description = "The file")),
    responses(
        (status = 200, description = "The parts the store holds, and the ones it lacks", body = StoredParts),
        (status = 404, description = "No such file within the key's reach", body = ErrorEnvelope),
        (status = 409, description = "`invalid_state`: not a pending multipart file", body = ErrorEnvelope),
        (status = 503, description = "The object store is unreachable", body = ErrorEnvelope),
    )
)]
pub async fn list_parts(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let file = load(&state, &caller, path.into_inner()).await?;
    let (multipart, _) = pending_multipart(&file)?;
    // An upload that is gone was assembled (or aborted) meanwhile: it holds no parts.
    let held = state
        .storage
        .list_parts(&file.object_key, &multipart.upload_id)
        .await?
        .unwrap_or_default();
    let missing = (1..=multipart.part_count)
        .filter(|n| !held.iter().any(|p| p.number == *n))
        .collect();
    Ok(HttpResponse::Ok().json(StoredParts {
        file_uuid: file.id,
        upload_id: multipart.upload_id.clone(),
        part_size_bytes: multipart.part_size,
        part_count: multipart.part_count,
        parts: held
            .into_iter()
            .map(|p| StoredPart {
                part_number: p.number,
                size_bytes: p.size,
                checksum_sha256: p.checksum_sha256,
                etag: p.etag,
            })
            .collect(),
        missing,
    }))
}

/// The file's multipart upload and plan, when it is a pending multipart file.
fn pending_multipart(file: &FileRow) -> Result<(&Multipart, PartPlan), ApiError> {
    let Some(multipart) = &file.multipart else {
        return Err(ApiError::new(
            ErrorCode::InvalidState,
            "this file uploads with one PUT, not in parts",
        )
        .with_details(json!({ "upload_method": UploadMethod::Put })));
    };
    if file.status != FileStatus::Pending {
        return Err(not_pending().with_details(json!({ "status": file.status })));
    }
    let plan = file
        .size_bytes
        .and_then(|size| PartPlan::new(size, multipart.part_size))
        .filter(|p| p.part_count == multipart.part_count)
        .ok_or_else(|| ApiError::internal("a multipart file's plan does not hold"))?;
    Ok((multipart, plan))
}

fn not_pending() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidState,
        "the file is no longer pending: its parts can no longer change",
    )
}

/// The part numbers and digests of a request, each checked against the plan.
fn parse_parts(
    parts: &[filegate_api::PartToSign],
    plan: &PartPlan,
) -> Result<Vec<(i32, Checksum)>, ApiError> {
    if parts.is_empty() || parts.len() > MAX_PARTS_PER_REQUEST {
        return Err(ApiError::new(
            ErrorCode::InvalidMetadata,
            format!(
                "a request signs 1 to {MAX_PARTS_PER_REQUEST} parts (got {})",
                parts.len()
            ),
        ));
    }
    let mut failures = Vec::new();
    let mut parsed = Vec::with_capacity(parts.len());
    for (index, part) in parts.iter().enumerate() {
        let problem = if plan.part_length(part.part_number).is_none() {
            Some(format!(
                "part_number must be 1 to {} (got {})",
                plan.part_count, part.part_number
            ))
        } else if parts[..index]
            .iter()
            .any(|p| p.part_number == part.part_number)
        {
            Some(format!("part {} is listed twice", part.part_number))
        } else {
            match Checksum::parse(&part.checksum_sha256) {
                Ok(sum) => {
                    parsed.push((part.part_number, sum));
                    None
                }
                Err(e) => Some(e.message),
            }
        };
        if let Some(message) = problem {
            failures.push(EntryFailure::new(
                index,
                ErrorCode::InvalidMetadata,
                message,
            ));
        }
    }
    if let Some(first) = failures.first() {
        let message = match failures.as_slice() {
            [_] => format!("part {}: {}", first.index, first.message),
            _ => format!("{} of {} parts were refused", failures.len(), parts.len()),
        };
        return Err(ApiError::new(ErrorCode::InvalidMetadata, message)
            .with_details(json!({ "parts": failures })));
    }
    Ok(parsed)
}
