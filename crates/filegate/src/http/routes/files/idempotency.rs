//! `Idempotency-Key` on `POST /v2/files`: a key names one request (its workspace and
//! parsed body, digested) for 24 h. The same key and body again get the stored answer,
//! refreshed; the same key with another body gets `409 idempotency_conflict`.

use actix_web::{HttpRequest, HttpResponse};
use filegate_api::{CreateFilesResponse, CreatedFile, FileEntry, ReservationStatus};
use filegate_db::files::{IdempotencyRecord, StoredResponse};
use filegate_storage::PutSpec;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorCode};
use crate::http::routes::uploads::public_base;
use crate::http::state::AppState;
use crate::metrics::{self, Reservation};
use crate::service::ingest::signing;

/// A request that carries an `Idempotency-Key`: the key and what it names.
#[derive(Debug, Clone, Copy)]
pub struct Ticket<'a> {
    key: &'a str,
    request_sha256: [u8; 32],
}

impl<'a> Ticket<'a> {
    /// What the reservation stores for this key, with the answer it gives.
    pub fn record(self, response: &'a Value) -> IdempotencyRecord<'a> {
        IdempotencyRecord {
            key: self.key,
            request_sha256: self.request_sha256,
            response,
        }
    }
}

/// What to do with a request, as far as its `Idempotency-Key` decides.
#[derive(Debug)]
pub enum NextAction<'a> {
    /// Serve it; with a key, store the answer under its ticket.
    Start(Option<Ticket<'a>>),
    /// Answer this: the stored answer, refreshed.
    Respond(HttpResponse),
}

/// Reads the `Idempotency-Key` and, when the key was used before, answers from what
/// it stored.
///
/// # Errors
/// 400 for a malformed key; 409 for a key used with another body; 503 without the
/// database or the store.
pub async fn begin<'a>(
    req: &'a HttpRequest,
    state: &AppState,
    caller: &Caller,
    workspace_id: Uuid,
    files: &[FileEntry],
) -> Result<NextAction<'a>, ApiError> {
    let Some(key) = header(req)? else {
        return Ok(NextAction::Start(None));
    };
    // The digest covers the resolved workspace and the parsed body, so key order or
    // whitespace does not make a replay look like a new request.
    let canonical = serde_json::to_vec(&(workspace_id, files)).map_err(ApiError::internal)?;
    let ticket = Ticket {
        key,
        request_sha256: Sha256::digest(&canonical).into(),
    };
    Ok(match stored_answer(req, state, caller, ticket).await? {
        Some(res) => NextAction::Respond(res),
        None => NextAction::Start(Some(ticket)),
    })
}

/// The stored answer for `ticket`'s key, if there is one (after a race, the twin
/// request's), refreshed.
///
/// # Errors
/// 409 for a key used with another body; 503 without the database or the store.
pub async fn stored_answer(
    req: &HttpRequest,
    state: &AppState,
    caller: &Caller,
    ticket: Ticket<'_>,
) -> Result<Option<HttpResponse>, ApiError> {
    match filegate_db::files::idempotent_response(&state.pool, caller.key_id, ticket.key).await? {
        Some(stored) => Ok(Some(
            replay(req, state, &stored, &ticket.request_sha256).await?,
        )),
        None => Ok(None),
    }
}

/// The `Idempotency-Key` header, if sent: 1–255 visible ASCII characters.
fn header(req: &HttpRequest) -> Result<Option<&str>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()));
    key.map(Some).ok_or_else(|| {
        ApiError::invalid_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
    })
}

/// The stored answer again, with each file's current status, and fresh upload URLs
/// (and a fresh upload window) for the files still pending: a replay after the first
/// URLs expired must not hand out dead links.
async fn replay(
    req: &HttpRequest,
    state: &AppState,
    stored: &StoredResponse,
    digest: &[u8; 32],
) -> Result<HttpResponse, ApiError> {
    if stored.request_sha256.as_slice() != digest.as_slice() {
        metrics::reservation(Reservation::IdempotencyConflict);
        return Err(ApiError::new(
            ErrorCode::IdempotencyConflict,
            "this Idempotency-Key was used with a different request body",
        ));
    }
    metrics::reservation(Reservation::Replayed);
    let mut response: CreateFilesResponse =
        serde_json::from_value(stored.response.clone()).map_err(ApiError::internal)?;
    refresh_uploads(state, &public_base(req, state), &mut response.files).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Idempotent-Replayed", "true"))
        .json(&response))
}

async fn refresh_uploads(
    state: &AppState,
    base: &str,
    entries: &mut [CreatedFile],
) -> Result<(), ApiError> {
    // The window moves first and the URLs are signed after, each to end with its file's
    // window: a URL signed first could outlive an expiry that won the race, and with it
    // the final deletion of its upload.
    let single: Vec<Uuid> = entries
        .iter()
        .filter(|e| e.multipart.is_none())
        .map(|e| e.file_uuid)
        .collect();
    let until = chrono::Utc::now()
        + chrono::Duration::from_std(state.settings.storage.presign_ttl)
            .map_err(ApiError::internal)?;
    let windows = if single.is_empty() {
        Vec::new()
    } else {
        filegate_db::files::extend_upload_window(&state.pool, &single, until).await?
    };
    let ids: Vec<Uuid> = entries.iter().map(|e| e.file_uuid).collect();
    let uploads = filegate_db::files::uploads(&state.pool, &ids).await?;
    for entry in entries {
        let Some(upload) = uploads.iter().find(|u| u.id == entry.file_uuid) else {
            // Deleted since: say so rather than hand out a URL for nothing.
            entry.status = ReservationStatus::Deleted;
            continue;
        };
        entry.status = upload.status.into();
        entry.processing_status =
            filegate_api::ProcessingStatus::of(upload.status, entry.remote_uri.is_some(), None);
        // An import has no URL to sign, and a settled file needs none.
        if upload.status != filegate_domain::FileStatus::Pending || entry.remote_uri.is_some() {
            continue;
        }
        if let Some(multipart) = &mut entry.multipart {
            // Its window is its own; its first part URLs are signed again as they were.
            resign_parts(state, &upload.upload_key, multipart, entry.expires_at).await?;
            continue;
        }
        let Some((_, window)) = windows.iter().find(|(id, _)| *id == upload.id) else {
            // Settled between the two statements: it keeps the URL it had.
            continue;
        };
        if let Some(key) = &upload.ingest_key {
            // An upload through filegate: a fresh URL under the file's own key, the old
            // one still good until it expires.
            let expires = window.timestamp();
            entry.file_url = Some(signing::url(base, key, upload.id, expires));
            entry.expires_at = chrono::DateTime::from_timestamp(expires, 0).unwrap_or(*window);
            continue;
        }
        let signed = state
            .uploads
            .presign_put_until(
                &upload.upload_key,
                &PutSpec {
                    content_type: upload.content_type.mime(),
                    content_length: upload.size_bytes,
                    checksum: upload.checksum_sha256,
                },
                *window,
            )
            .await?;
        entry.file_url = Some(signed.url);
        entry.upload_headers = signed.headers.into_iter().collect();
        entry.expires_at = signed.expires_at;
    }
    Ok(())
}

/// Signs a replayed multipart answer's part URLs again, with the lengths and digests
/// they carry.
async fn resign_parts(
    state: &AppState,
    key: &str,
    multipart: &mut filegate_api::MultipartUpload,
    closes: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    let parts = multipart
        .parts
        .iter()
        .map(|part| {
            let header = |name: &str| part.headers.get(name).map(String::as_str);
            Some(filegate_storage::PartSpec {
                number: part.part_number,
                length: header("Content-Length")?.parse().ok()?,
                checksum: filegate_domain::Checksum::parse(header("x-amz-checksum-sha256")?)
                    .ok()?,
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ApiError::internal("a stored part URL lacks its length or digest"))?;
    multipart.parts = state
        .uploads
        .sign_parts(key, &multipart.upload_id, &parts, closes)
        .await?;
    Ok(())
}
