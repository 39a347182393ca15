//! `PUT /v2/uploads/{file_uuid}`: the upload URL of a file whose size was not declared.
//! The URL is filegate's own, signed for that file until its expiry; the body streams
//! through filegate into the file's upload key, cut off at the file's reservation
//! (see [`crate::service::ingest`]). It answers like the store would a presigned PUT,
//! with the envelope on failure, and leaves the file `pending` for completion.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use filegate_db::files::IngestTarget;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::error::{ApiError, ErrorEnvelope};
use crate::http::ratelimit::bucket::BucketKey;
use crate::http::ratelimit::headers::charge_refused;
use crate::http::state::AppState;
use crate::service::ingest::signing;

/// What an upload URL carries besides its path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Signed {
    /// When the URL expires (Unix seconds); checked when the request starts.
    expires: Option<i64>,
    /// The URL's signature.
    signature: Option<String>,
}

/// What a stored upload is: the file stays `pending` until completion verifies it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadStored {
    pub file_uuid: Uuid,
    /// Always `pending`: completion (the client's call, the finalizer, an S3 event)
    /// verifies the upload and settles the file.
    pub status: &'static str,
    /// Bytes written.
    pub size_bytes: i64,
    /// Base64 SHA-256 of the bytes written.
    pub checksum_sha256: String,
}

/// Upload a file's bytes through filegate (the `file_url` of a file reserved without
/// `size_bytes`).
///
/// Send exactly the `upload_headers` the reservation gave (`Content-Type`); a
/// `Content-Length` is optional (a chunked body is counted as it arrives). The body
/// is cut off with `413` the moment it passes the file's limit and written to the
/// store only once it has all arrived. The file stays `pending` until a completion
/// verifies it.
#[utoipa::path(
    put, path = "/v2/uploads/{file_uuid}", tag = "files",
    params(("file_uuid" = Uuid, Path, description = "The file"), Signed),
    request_body(content = Vec<u8>, content_type = "*/*", description = "The file's bytes"),
    responses(
        (status = 200, description = "Stored; the file is pending its completion", body = UploadStored),
        (status = 400, description = "The body failed (the client hung up)", body = ErrorEnvelope),
        (status = 403, description = "The URL is invalid or expired, or another Content-Type was sent", body = ErrorEnvelope),
        (status = 404, description = "The file was deleted while its bytes arrived", body = ErrorEnvelope),
        (status = 408, description = "`request_timeout`: the body stopped or came too slowly", body = ErrorEnvelope),
        (status = 409, description = "`invalid_state`: the file is no longer pending, or another upload of it is under way", body = ErrorEnvelope),
        (status = 413, description = "The body passed the file's limit", body = ErrorEnvelope),
        (status = 429, description = "Too many refused URLs from this address", body = ErrorEnvelope),
        (status = 503, description = "Every upload slot is taken, or the store or database is unavailable", body = ErrorEnvelope),
    )
)]
pub async fn put(
    req: HttpRequest,
    path: web::Path<Uuid>,
    query: web::Query<Signed>,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let target = match authorize(&state, id, &query).await? {
        Some(target) => target,
        None => return Ok(refused(&req, &state).await),
    };
    let sent_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let signed_type = target.content_type.mime();
    if !sent_type.trim().eq_ignore_ascii_case(signed_type) {
        return Err(ApiError::forbidden(format!(
            "this upload URL was signed for Content-Type: {signed_type}"
        ))
        .with_details(serde_json::json!({ "content_type": signed_type })));
    }
    let declared = match req.headers().get(header::CONTENT_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| ApiError::invalid_request("Content-Length is not a number"))?,
        ),
    };
    let stored = state
        .ingest
        .upload(&target, declared, body, Uuid::new_v4(), true)
        .await?;
    let mut res = HttpResponse::Ok();
    if let Some(etag) = &stored.etag {
        res.insert_header((header::ETAG, etag.as_str()));
    }
    Ok(res.json(UploadStored {
        file_uuid: target.id,
        status: "pending",
        size_bytes: stored.size,
        checksum_sha256: stored
            .checksum
            .ok_or_else(|| ApiError::internal("an upload asked for its digest has none"))?
            .to_base64(),
    }))
}

/// Where clients reach this server, for the upload URLs it signs: the configured
/// public URL, or the request's own scheme and host.
#[must_use]
pub fn public_base(req: &HttpRequest, state: &AppState) -> String {
    if let Some(url) = &state.settings.ingest.public_url {
        return url.clone();
    }
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// The file the URL names, when the URL is its own and has not expired; `None` for
/// any other URL (a tampered, expired or revoked one look the same).
async fn authorize(
    state: &AppState,
    id: Uuid,
    query: &Signed,
) -> Result<Option<IngestTarget>, ApiError> {
    let (Some(expires), Some(signature)) = (query.expires, query.signature.as_deref()) else {
        return Ok(None);
    };
    // Like a presigned URL's, the expiry is checked when the request starts.
    if chrono::Utc::now().timestamp() > expires {
        return Ok(None);
    }
    let Some(target) = filegate_db::files::ingest_target(&state.pool, id).await? else {
        return Ok(None);
    };
    Ok(signing::verify(&target.ingest_key, id, expires, signature).then_some(target))
}

/// The `403` for a URL that is not a live one, paid with a token of the client
/// address's bucket (as a failed API key is), so guessing URLs is throttled.
async fn refused(req: &HttpRequest, state: &AppState) -> HttpResponse {
    if let Some(throttled) = charge_refused(state, req, BucketKey::Ip).await {
        return throttled;
    }
    actix_web::ResponseError::error_response(&ApiError::forbidden(
        "this upload URL is invalid, expired or revoked",
    ))
}
