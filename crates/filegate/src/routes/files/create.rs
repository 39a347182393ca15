//! `POST /v2/files`: parse every entry, reserve the batch in one statement, answer with
//! presigned PUT URLs whose signed headers pin type, length and digest.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use filegate_db::files::{IdempotencyRecord, NewFile, Reservation, ReserveOutcome};
use filegate_domain::{FileInput, FileSpec, Limits, MAX_FILES_PER_REQUEST};
use filegate_storage::PutSpec;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::state::AppState;

/// The request body.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFilesRequest {
    /// The workspace; `null` or absent: the key's default workspace.
    #[serde(default)]
    pub workspace_uuid: Option<Uuid>,
    /// One to fifty files, reserved all or nothing.
    #[schema(min_items = 1, max_items = 50)]
    pub files: Vec<FileEntry>,
}

/// One requested upload. One of `local_file_path` or `name` is required.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// The client-side path; `name` defaults to its last segment.
    #[serde(default)]
    #[schema(max_length = 4096, example = "reports/q3.pdf")]
    pub local_file_path: Option<String>,
    /// 1–255 bytes in Unicode NFC, no `/`, no control or invisible format (Cf)
    /// characters; its extension must not name another registered type than the
    /// file's, nor an executable or a script.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^/\\u0000-\\u001f\\u007f-\\u009f]+$",
        example = "q3.pdf"
    )]
    pub name: Option<String>,
    /// Library path, at most 1024 bytes in NFC, case-sensitive, no control or
    /// invisible format characters (default `""`).
    #[serde(default)]
    #[schema(max_length = 1024, example = "finance/2026/")]
    pub path: Option<String>,
    /// At most 20 labels of 1–64 bytes each.
    #[serde(default)]
    #[schema(max_items = 20, example = json!(["finance"]))]
    pub labels: Option<Vec<String>>,
    /// An absolute http(s) URL of at most 2048 bytes, stored as given.
    #[serde(default)]
    #[schema(max_length = 2048, example = "https://example.com/q3.pdf")]
    pub public_url: Option<String>,
    /// A registered type (canonical MIME or an alias) the workspace allows. Default:
    /// the type the name's extension names.
    #[serde(default)]
    #[schema(example = "application/pdf")]
    pub content_type: Option<String>,
    /// Signed into the upload URL when given.
    #[serde(default)]
    #[schema(minimum = 0, example = 48213)]
    pub size_bytes: Option<u64>,
    /// Base64 of the SHA-256 digest; signed into the upload URL when given.
    #[serde(default)]
    pub checksum_sha256: Option<String>,
}

/// `200` of `POST /v2/files`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreateFilesResponse {
    pub workspace_uuid: Uuid,
    pub files: Vec<CreatedFile>,
}

/// One reserved upload and how to send its bytes.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedFile {
    pub file_uuid: Uuid,
    pub local_file_path: Option<String>,
    pub name: String,
    pub path: String,
    /// The file's object key in the bucket (`{workspace_uuid}/{file_uuid}`), for its
    /// whole life: what downloads serve once it is ready. The upload itself lands
    /// under `uploads/` and is copied here once verified.
    pub remote_file_path: String,
    #[schema(example = "pending")]
    pub status: String,
    /// The presigned PUT URL.
    pub file_url: String,
    #[schema(example = "PUT")]
    pub upload_method: String,
    /// Exactly the headers the PUT must send.
    #[schema(value_type = Object, example = json!({ "Content-Type": "application/pdf", "Content-Length": "48213" }))]
    pub upload_headers: serde_json::Map<String, Value>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// One failing entry of a batch, as `details.files` lists it.
#[derive(Debug, serde::Serialize)]
struct EntryFailure {
    index: usize,
    code: ErrorCode,
    message: String,
}

fn entry_error(index: usize, code: ErrorCode, message: impl Into<String>) -> EntryFailure {
    EntryFailure {
        index,
        code,
        message: message.into(),
    }
}

/// The 422 for a batch whose entries failed: the first failure's code at the top,
/// every failure in `details.files`.
fn batch_error(total: usize, failures: Vec<EntryFailure>) -> ApiError {
    let code = failures
        .first()
        .map_or(ErrorCode::InvalidMetadata, |f| f.code);
    let message = match failures.as_slice() {
        [only] => format!("file {}: {}", only.index, only.message),
        _ => format!(
            "{} of {total} files were refused; nothing was reserved",
            failures.len()
        ),
    };
    ApiError::new(code, message).with_details(json!({ "files": failures }))
}

/// The `Idempotency-Key` header, if sent: 1–255 visible ASCII characters.
fn idempotency_key(req: &HttpRequest) -> Result<Option<&str>, ApiError> {
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

/// Reserve one to fifty files and get presigned PUT URLs.
///
/// The batch is all-or-nothing. `size_bytes` and `checksum_sha256`, when given, are
/// signed into the URL so the object store refuses any other body.
#[utoipa::path(
    post, path = "/v2/files", tag = "files", request_body = CreateFilesRequest,
    params(("Idempotency-Key" = Option<String>, Header,
            pattern = "^[!-~]{1,255}$",
            description = "Replays the stored response for 24 h for the same key and body (1–255 visible ASCII characters)")),
    responses(
        (status = 200, description = "Reserved", body = CreateFilesResponse),
        (status = 403, description = "Workspace outside the key's reach", body = ErrorEnvelope),
        (status = 409, description = "`quota_exceeded` or `idempotency_conflict`", body = ErrorEnvelope),
        (status = 413, description = "Body over the limit", body = ErrorEnvelope),
        (status = 422, description = "A rule failed: `details.files` lists each failing entry", body = ErrorEnvelope),
    )
)]
pub async fn create(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<CreateFilesRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let workspace_id = caller.target_workspace(body.workspace_uuid)?;
    let idem_key = idempotency_key(&req)?;
    let request_sha256: Option<[u8; 32]> = match idem_key {
        Some(_) => {
            // The digest covers the resolved workspace and the parsed body, so key order
            // or whitespace does not make a replay look like a new request.
            let canonical =
                serde_json::to_vec(&(workspace_id, &body.files)).map_err(ApiError::internal)?;
            Some(Sha256::digest(&canonical).into())
        }
        None => None,
    };
    if let (Some(key), Some(digest)) = (idem_key, request_sha256)
        && let Some(stored) =
            filegate_db::files::idempotent_response(&state.pool, caller.key_id, key).await?
    {
        return replay(&state, &stored, &digest).await;
    }

    if body.files.is_empty() || body.files.len() > MAX_FILES_PER_REQUEST {
        return Err(ApiError::new(
            ErrorCode::InvalidMetadata,
            format!(
                "a request reserves 1 to {MAX_FILES_PER_REQUEST} files (got {})",
                body.files.len()
            ),
        ));
    }
    let workspace = caller
        .reach_workspace(&state.pool, Some(workspace_id))
        .await?;
    let limits = &workspace.limits;
    let specs = parse_entries(&body.files, limits)?;

    let ttl = Duration::from_secs(state.settings.storage.presign_ttl_secs);
    let mut new_files = Vec::with_capacity(specs.len());
    let mut created = Vec::with_capacity(specs.len());
    let mut expires_at = None;
    for spec in &specs {
        let id = Uuid::now_v7();
        let object_key = filegate_domain::keys::object_key(workspace_id, id);
        let upload_key = filegate_domain::keys::upload_key(&object_key);
        let signed = state
            .storage
            .presign_put(
                &upload_key,
                &PutSpec {
                    content_type: spec.content_type.mime(),
                    content_length: spec.size_bytes,
                    checksum: spec.checksum,
                },
                ttl,
            )
            .await?;
        expires_at = Some(signed.expires_at);
        new_files.push(NewFile {
            id,
            object_key,
            upload_key,
            spec,
            reserved_bytes: spec.reservation(limits),
        });
        created.push((id, signed));
    }
    let upload_expires_at = expires_at.unwrap_or_else(chrono::Utc::now);
    let first_look = Duration::from_secs(state.settings.reaper.finalizer_min_interval_secs);
    let first_check_at =
        chrono::Utc::now() + chrono::Duration::from_std(first_look).map_err(ApiError::internal)?;
    let files: Vec<CreatedFile> = created
        .into_iter()
        .zip(&new_files)
        .map(|((id, signed), nf)| CreatedFile {
            file_uuid: id,
            local_file_path: nf.spec.local_file_path.clone(),
            name: nf.spec.name.as_str().to_owned(),
            path: nf.spec.path.as_str().to_owned(),
            remote_file_path: nf.object_key.clone(),
            status: "pending".to_owned(),
            file_url: signed.url,
            upload_method: signed.method,
            upload_headers: signed
                .headers
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
            expires_at: signed.expires_at,
        })
        .collect();
    let response = serde_json::to_value(CreateFilesResponse {
        workspace_uuid: workspace_id,
        files,
    })
    .map_err(ApiError::internal)?;

    let reservation = Reservation {
        workspace_id,
        organization_id: caller.organization_id,
        created_by: caller.key_id,
        upload_expires_at,
        first_check_at,
        files: new_files.clone(),
        idempotency: idem_key
            .zip(request_sha256)
            .map(|(key, digest)| IdempotencyRecord {
                key,
                request_sha256: digest,
                response: &response,
            }),
    };
    match filegate_db::files::reserve(&state.pool, &reservation).await? {
        ReserveOutcome::Reserved => {
            // Their completions are then charged to this workspace's bucket without a look-up.
            state
                .rate_scopes
                .remember_files(workspace_id, new_files.iter().map(|f| f.id));
            let m = crate::metrics::get();
            m.reservations.with_label_values(&["reserved"]).inc();
            m.files_reserved.inc_by(new_files.len() as u64);
            let bytes: i64 = new_files.iter().map(|f| f.reserved_bytes).sum();
            m.quota_bytes
                .with_label_values(&["reserved"])
                .inc_by(u64::try_from(bytes).unwrap_or(0));
            Ok(HttpResponse::Ok().json(&response))
        }
        ReserveOutcome::QuotaExceeded => {
            crate::metrics::get()
                .reservations
                .with_label_values(&["quota_exceeded"])
                .inc();
            Err(quota_exceeded(&state, workspace_id, &new_files).await)
        }
        // With an Idempotency-Key, a concurrent twin may have won the same names or
        // the same key: answer as its replay when it stored one.
        outcome @ (ReserveOutcome::Duplicate | ReserveOutcome::IdempotencyKeyTaken) => {
            if let (Some(key), Some(digest)) = (idem_key, request_sha256)
                && let Some(stored) =
                    filegate_db::files::idempotent_response(&state.pool, caller.key_id, key).await?
            {
                return replay(&state, &stored, &digest).await;
            }
            match outcome {
                ReserveOutcome::Duplicate => {
                    crate::metrics::get()
                        .reservations
                        .with_label_values(&["duplicate"])
                        .inc();
                    Err(duplicates(&state, workspace_id, &new_files).await?)
                }
                _ => Err(ApiError::new(
                    ErrorCode::IdempotencyConflict,
                    "this Idempotency-Key is in use; retry",
                )),
            }
        }
    }
}

/// The stored answer again, with each file's current status, and fresh upload URLs
/// (and a fresh upload window) for the files still pending: a replay after the first
/// URLs expired must not hand out dead links.
async fn replay(
    state: &AppState,
    stored: &filegate_db::files::StoredResponse,
    digest: &[u8; 32],
) -> Result<HttpResponse, ApiError> {
    if stored.request_sha256.as_slice() != digest.as_slice() {
        crate::metrics::get()
            .reservations
            .with_label_values(&["idempotency_conflict"])
            .inc();
        return Err(ApiError::new(
            ErrorCode::IdempotencyConflict,
            "this Idempotency-Key was used with a different request body",
        ));
    }
    crate::metrics::get()
        .reservations
        .with_label_values(&["replayed"])
        .inc();
    let mut response = stored.response.clone();
    refresh_uploads(state, &mut response).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Idempotent-Replayed", "true"))
        .json(&response))
}

async fn refresh_uploads(state: &AppState, response: &mut Value) -> Result<(), ApiError> {
    let Some(entries) = response.get_mut("files").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    let ids: Vec<Uuid> = entries
        .iter()
        .filter_map(|e| e["file_uuid"].as_str().and_then(|s| s.parse().ok()))
        .collect();
    let uploads = filegate_db::files::uploads(&state.pool, &ids).await?;
    let ttl = Duration::from_secs(state.settings.storage.presign_ttl_secs);
    let mut renewed = Vec::new();
    let mut until = None;
    for entry in entries.iter_mut() {
        let Some(upload) = uploads
            .iter()
            .find(|u| Some(u.id.to_string().as_str()) == entry["file_uuid"].as_str())
        else {
            // Deleted since: say so rather than hand out a URL for nothing.
            entry["status"] = Value::from("deleted");
            continue;
        };
        entry["status"] = Value::from(upload.status.as_str());
        if upload.status != filegate_domain::FileStatus::Pending {
            continue;
        }
        let content_type = filegate_domain::ContentType::parse(&upload.content_type)
            .map_err(ApiError::internal)?;
        let checksum = upload
            .checksum_sha256
            .as_deref()
            .map(filegate_domain::Checksum::parse)
            .transpose()
            .map_err(ApiError::internal)?;
        let signed = state
            .storage
            .presign_put(
                &upload.upload_key,
                &PutSpec {
                    content_type: content_type.mime(),
                    content_length: upload.size_bytes,
                    checksum,
                },
                ttl,
            )
            .await?;
        entry["file_url"] = Value::from(signed.url);
        entry["upload_headers"] = Value::Object(
            signed
                .headers
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        );
        entry["expires_at"] = json!(signed.expires_at);
        until = until.max(Some(signed.expires_at));
        renewed.push(upload.id);
    }
    if let Some(until) = until {
        filegate_db::files::extend_upload_window(&state.pool, &renewed, until).await?;
    }
    Ok(())
}

/// Every entry parsed, or a 422 listing every failing entry. Repeats of one name +
/// path inside the batch are refused here; collisions with live files by the database.
fn parse_entries(entries: &[FileEntry], limits: &Limits) -> Result<Vec<FileSpec>, ApiError> {
    let mut specs = Vec::with_capacity(entries.len());
    let mut failures = Vec::new();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for (index, e) in entries.iter().enumerate() {
        let input = FileInput {
            local_file_path: e.local_file_path.as_deref(),
            name: e.name.as_deref(),
            path: e.path.as_deref(),
            labels: e.labels.as_deref(),
            public_url: e.public_url.as_deref(),
            content_type: e.content_type.as_deref(),
            size_bytes: e.size_bytes,
            checksum_sha256: e.checksum_sha256.as_deref(),
        };
        match FileSpec::parse(input, limits) {
            Ok(spec) => {
                let key = (spec.path.as_str().to_owned(), spec.name.as_str().to_owned());
                if let Some(first) = seen.insert(key, index).filter(|_| limits.unique_names) {
                    failures.push(entry_error(
                        index,
                        ErrorCode::DuplicateFile,
                        format!("the same name and path as file {first} of this request"),
                    ));
                }
                specs.push(spec);
            }
            Err(v) => failures.push(entry_error(index, v.code.into(), v.message)),
        }
    }
    if failures.is_empty() {
        return Ok(specs);
    }
    crate::metrics::get()
        .reservations
        .with_label_values(&["invalid"])
        .inc();
    Err(batch_error(entries.len(), failures))
}

async fn quota_exceeded(state: &AppState, workspace_id: Uuid, files: &[NewFile<'_>]) -> ApiError {
    let requested: i64 = files
        .iter()
        .map(|f| f.reserved_bytes)
        .fold(0, i64::saturating_add);
    let mut details = json!({ "requested_bytes": requested });
    if let Ok(Some(ws)) = filegate_db::workspaces::get(&state.pool, workspace_id).await {
        details["quota_bytes"] = json!(ws.limits.quota_bytes);
        details["used_bytes"] = json!(ws.used_bytes);
        details["reserved_bytes"] = json!(ws.reserved_bytes);
        details["available_bytes"] =
            json!((ws.limits.quota_bytes - ws.used_bytes - ws.reserved_bytes).max(0));
    }
    ApiError::new(
        ErrorCode::QuotaExceeded,
        "the workspace quota cannot hold these files; nothing was reserved",
    )
    .with_details(details)
}

async fn duplicates(
    state: &AppState,
    workspace_id: Uuid,
    files: &[NewFile<'_>],
) -> Result<ApiError, ApiError> {
    let pairs: Vec<(&str, &str)> = files
        .iter()
        .map(|f| (f.spec.path.as_str(), f.spec.name.as_str()))
        .collect();
    let live = filegate_db::files::live_names(&state.pool, workspace_id, &pairs).await?;
    let mut failures: Vec<EntryFailure> = pairs
        .iter()
        .enumerate()
        .filter(|(_, (p, n))| live.iter().any(|(lp, ln)| lp == p && ln == n))
        .map(|(i, _)| {
            entry_error(
                i,
                ErrorCode::DuplicateFile,
                "a live file with this name and path exists in the workspace",
            )
        })
        .collect();
    if failures.is_empty() {
        // The colliding file was deleted between the insert and this look-up.
        failures.push(entry_error(
            0,
            ErrorCode::DuplicateFile,
            "a file with the same name and path was being created",
        ));
    }
    Ok(batch_error(files.len(), failures))
}
