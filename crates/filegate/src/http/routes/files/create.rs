//! `POST /v2/files`: parse every entry, reserve the batch in one statement, answer with
//! presigned PUT URLs whose signed headers pin type, length and digest, or, for large
//! files, a multipart upload whose part URLs pin each part's length and digest. A file
//! whose size is not declared gets an upload URL of filegate's own, which counts its
//! bytes as they arrive (a presigned PUT could not bound them).

use actix_web::{HttpRequest, HttpResponse, web};
use filegate_api::{
    CreateFilesRequest, CreateFilesResponse, CreatedFile, EntryFailure, FileEntry, MultipartUpload,
    ProcessingStatus, ReservationStatus, UploadMethod,
};
use filegate_db::DbError;
use filegate_db::files::{NewFile, NewMultipart, Reservation, ReservationRows, ReserveOutcome};
use filegate_domain::{BatchError, Checksum, FileInput, FileSpec, Limits, MAX_FILES_PER_REQUEST};
use filegate_storage::PutSpec;
use serde_json::{Value, json};
use uuid::Uuid;

use super::idempotency::{self, NextAction};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::http::routes::uploads::public_base;
use crate::http::state::AppState;
use crate::metrics::{self, Reservation as Outcome};
use crate::service::ingest::signing;
use crate::service::uploads::part_specs;

/// The 422 for a refused batch: the size rule, or the first failure's code at the top
/// and every failure in `details.files`.
pub(super) fn batch_error(e: BatchError, total: usize) -> ApiError {
    match e {
        BatchError::Size(n) => ApiError::new(
            ErrorCode::InvalidMetadata,
            format!("a request reserves 1 to {MAX_FILES_PER_REQUEST} files (got {n})"),
        ),
        BatchError::Entries(failures) => entries_error(
            failures
                .into_iter()
                .map(|(index, v)| EntryFailure::new(index, v.code.into(), v.message))
                .collect(),
            total,
        ),
    }
}

/// The 422 for entries that failed: the first failure's code at the top, every
/// failure in `details.files`.
fn entries_error(failures: Vec<EntryFailure>, total: usize) -> ApiError {
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
    let ticket = match idempotency::begin(&req, &state, &caller, workspace_id, &body.files).await? {
        NextAction::Respond(res) => return Ok(res),
        NextAction::Start(ticket) => ticket,
    };
    let total = body.files.len();
    BatchError::check_size(total).map_err(|e| batch_error(e, total))?;
    let workspace = caller
        .reach_workspace(&state.pool, Some(workspace_id))
        .await?;
    // Imports are checked before anything is reserved, and name their file when the
    // entry does not.
    let imported = check_imports(&state, &body.files).await?;
    let named: Vec<FileEntry> = body
        .files
        .iter()
        .zip(&imported)
        .map(|(entry, uri)| match uri {
            Some(uri) if entry.name.is_none() && entry.local_file_path.is_none() => FileEntry {
                name: last_segment(uri),
                ..entry.clone()
            },
            _ => entry.clone(),
        })
        .collect();
    let inputs: Vec<FileInput<'_>> = named.iter().map(FileEntry::input).collect();
    let specs = FileSpec::parse_batch(&inputs, &workspace.limits).map_err(|e| {
        metrics::reservation(Outcome::Invalid);
        batch_error(e, total)
    })?;
    let base = public_base(&req, &state);
    let (new_files, response) = presign(
        &state,
        &base,
        workspace_id,
        &specs,
        &imported,
        &workspace.limits,
    )
    .await?;
    let outcome = reserve(
        &req,
        &state,
        &caller,
        workspace_id,
        ticket,
        &new_files,
        &response,
    )
    .await;
    if !matches!(outcome, Ok(Reserved::Now)) {
        // Nothing was reserved: the multipart uploads started for it go too.
        abort_uploads(&state, &new_files).await;
    }
    match outcome? {
        Reserved::Now => {
            if imported.iter().any(Option::is_some) {
                state.imports.kick();
            }
            Ok(HttpResponse::Ok().json(&response.body))
        }
        Reserved::Replayed(res) => Ok(res),
    }
}

/// How a reservation that did not fail ended.
enum Reserved {
    /// These files were reserved now.
    Now,
    /// A concurrent twin with the same `Idempotency-Key` reserved them: its answer.
    Replayed(HttpResponse),
}

/// Reserves the presigned files in one statement, or says why not.
async fn reserve(
    req: &HttpRequest,
    state: &AppState,
    caller: &Caller,
    workspace_id: Uuid,
    ticket: Option<idempotency::Ticket<'_>>,
    new_files: &[NewFile<'_>],
    response: &Answer,
) -> Result<Reserved, ApiError> {
    let reservation = Reservation {
        workspace_id,
        organization_id: caller.organization_id,
        created_by: caller.key_id,
        upload_expires_at: response.expires_at,
        first_check_at: first_look(state)?,
        files: new_files.to_vec(),
        idempotency: ticket.map(|t| t.record(&response.body)),
    };
    match reserve_now(state, &reservation).await? {
        ReserveOutcome::Reserved => {
            // Their completions are then charged to this workspace's bucket without a look-up.
            state
                .rate_scopes
                .remember_files(workspace_id, new_files.iter().map(|f| f.id));
            metrics::reserved(
                new_files.len(),
                new_files.iter().map(|f| f.reserved_bytes).sum(),
            );
            Ok(Reserved::Now)
        }
        ReserveOutcome::QuotaExceeded => {
            metrics::reservation(Outcome::QuotaExceeded);
            Err(quota_exceeded(state, workspace_id, new_files).await)
        }
        // With an Idempotency-Key, a concurrent twin may have won the same names or
        // the same key: answer as its replay when it stored one.
        outcome @ (ReserveOutcome::Duplicate | ReserveOutcome::IdempotencyKeyTaken) => {
            if let Some(ticket) = ticket
                && let Some(res) = idempotency::stored_answer(req, state, caller, ticket).await?
            {
                return Ok(Reserved::Replayed(res));
            }
            if matches!(outcome, ReserveOutcome::Duplicate) {
                metrics::reservation(Outcome::Duplicate);
                return Err(duplicates(state, workspace_id, new_files).await?);
            }
            Err(ApiError::new(
                ErrorCode::IdempotencyConflict,
                "this Idempotency-Key is in use; retry",
            ))
        }
    }
}

/// Makes `reservation`: alone when it carries an `Idempotency-Key` (its record and
/// replays are its own) or more than [`GROUPED_FILES_MAX`] files, otherwise in a
/// statement shared with concurrent requests' (the answer is the same as alone).
pub(super) async fn reserve_now(
    state: &AppState,
    reservation: &Reservation<'_>,
) -> Result<ReserveOutcome, ApiError> {
    Ok(
        if reservation.idempotency.is_some() || reservation.files.len() > GROUPED_FILES_MAX {
            filegate_db::files::reserve(&state.pool, reservation).await?
        } else {
            state
                .reservations
                .run(ReservationRows::of(reservation))
                .await
                .map_err(DbError::shared)?
        },
    )
}

/// The most files a reservation may have to share a statement with others. One shared
/// statement runs at a time; a larger batch already shares its own commit among its
/// files, and running alone it keeps Postgres's other cores at work (grouping 50-file
/// batches took (c) from 0.8 to 0.66 of its pgbench limit).
const GROUPED_FILES_MAX: usize = 8;

/// The answer to a reservation, before it is made: its JSON and when its URLs expire.
struct Answer {
    body: Value,
    expires_at: chrono::DateTime<chrono::Utc>,
}

/// Ids, keys and presigned URLs for each parsed entry (a multipart upload started for
/// each large one): the rows to insert and the answer to give once they are. When it
/// fails half-way, the multipart uploads it started are aborted.
async fn presign<'a>(
    state: &AppState,
    base: &str,
    workspace_id: Uuid,
    specs: &'a [FileSpec],
    imported: &'a [Option<String>],
    limits: &Limits,
) -> Result<(Vec<NewFile<'a>>, Answer), ApiError> {
    let mut new_files = Vec::with_capacity(specs.len());
    let mut files = Vec::with_capacity(specs.len());
    let mut expires_at = None;
    for (spec, import) in specs.iter().zip(imported) {
        let signed = match import {
            Some(uri) => import_one(state, workspace_id, spec, uri, limits),
            None => presign_one(state, base, workspace_id, spec, limits).await,
        };
        match signed {
            Ok((new_file, created)) => {
                if new_file.multipart.is_none() {
                    expires_at = Some(created.expires_at);
                }
                new_files.push(new_file);
                files.push(created);
            }
            Err(e) => {
                abort_uploads(state, &new_files).await;
                return Err(e);
            }
        }
    }
    let body = serde_json::to_value(CreateFilesResponse {
        workspace_uuid: workspace_id,
        files,
    })
    .map_err(ApiError::internal)?;
    let ttl = state.settings.storage.presign_ttl;
    Ok((
        new_files,
        Answer {
            body,
            expires_at: expires_at.unwrap_or_else(|| chrono::Utc::now() + ttl),
        },
    ))
}

/// One entry: a presigned PUT, an upload through filegate (for an undeclared size,
/// which a presigned PUT could not bound), or a multipart upload with its first part
/// URLs.
async fn presign_one<'a>(
    state: &AppState,
    base: &str,
    workspace_id: Uuid,
    spec: &'a FileSpec,
    limits: &Limits,
) -> Result<(NewFile<'a>, CreatedFile), ApiError> {
    let storage = &state.settings.storage;
    let (mut new_file, mut created) = entry(workspace_id, spec, limits);
    let id = new_file.id;
    let Some(plan) = spec
        .upload
        .plan(spec.size_bytes, &storage.multipart_policy())
    else {
        if spec.size_bytes.is_none() {
            // The store cannot be told the length: the bytes come through filegate,
            // which cuts them off at the reservation.
            let key = signing::new_key().map_err(|e| ApiError::internal(e.to_string()))?;
            let ttl =
                chrono::Duration::from_std(storage.presign_ttl).map_err(ApiError::internal)?;
            let expires = (chrono::Utc::now() + ttl).timestamp();
            created.file_url = Some(signing::url(base, &key, id, expires));
            created.upload_headers = [(
                "Content-Type".to_owned(),
                spec.content_type.mime().to_owned(),
            )]
            .into();
            created.expires_at = chrono::DateTime::from_timestamp(expires, 0)
                .ok_or_else(|| ApiError::internal("an upload URL's expiry is out of range"))?;
            new_file.ingest_key = Some(key);
            return Ok((new_file, created));
        }
        let signed = state
            .uploads
            .presign_put(
                &new_file.upload_key,
                &PutSpec {
                    content_type: spec.content_type.mime(),
                    content_length: spec.size_bytes,
                    checksum: spec.checksum,
                },
            )
            .await?;
        created.file_url = Some(signed.url);
        created.upload_headers = signed.headers.into_iter().collect();
        created.expires_at = signed.expires_at;
        return Ok((new_file, created));
    };
    // Only filegate can assemble the parts, and then no URL can write the key again:
    // the upload goes to the object key itself.
    new_file.upload_key = new_file.object_key.clone();
    let window =
        chrono::Duration::from_std(storage.multipart_window).map_err(ApiError::internal)?;
    let closes = chrono::Utc::now() + window;
    let upload_id = state
        .uploads
        .start_multipart(&new_file.object_key, spec.content_type.mime())
        .await?;
    let first = usize::try_from(storage.multipart_first_parts).unwrap_or(usize::MAX);
    let sums = spec.upload.part_checksums();
    new_file.upload_expires_at = Some(closes);
    new_file.multipart = Some(NewMultipart {
        upload_id: upload_id.clone(),
        part_size: plan.part_size,
        part_count: plan.part_count,
        part_checksums: sums.iter().map(Checksum::to_base64).collect(),
    });
    let to_sign: Vec<(i32, Checksum)> = (1..).zip(sums.iter().copied()).take(first).collect();
    let parts = match state
        .uploads
        .sign_parts(
            &new_file.object_key,
            &upload_id,
            &part_specs(&plan, &to_sign),
            closes,
        )
        .await
    {
        Ok(parts) => parts,
        Err(e) => {
            state.uploads.abort(&new_file.object_key, &upload_id).await;
            return Err(e.into());
        }
    };
    created.upload_method = UploadMethod::Multipart;
    created.expires_at = closes;
    created.multipart = Some(MultipartUpload {
        upload_id,
        part_size_bytes: plan.part_size,
        part_count: plan.part_count,
        parts,
    });
    Ok((new_file, created))
}

/// A new file's row and the answer's entry for it, before either says how its bytes
/// come.
fn entry<'a>(
    workspace_id: Uuid,
    spec: &'a FileSpec,
    limits: &Limits,
) -> (NewFile<'a>, CreatedFile) {
    let id = Uuid::now_v7();
    let object_key = filegate_domain::keys::object_key(workspace_id, id);
    let created = CreatedFile {
        file_uuid: id,
        local_file_path: spec.local_file_path.clone(),
        name: spec.name.as_str().to_owned(),
        path: spec.path.as_str().to_owned(),
        remote_file_path: object_key.clone(),
        status: ReservationStatus::Pending,
        file_url: None,
        upload_method: UploadMethod::Put,
        upload_headers: std::collections::BTreeMap::new(),
        expires_at: chrono::Utc::now(),
        multipart: None,
        content_type: spec.content_type.mime().to_owned(),
        processing_status: ProcessingStatus::Pending,
        remote_uri: None,
    };
    let new_file = NewFile {
        id,
        upload_key: filegate_domain::keys::upload_key(&object_key),
        object_key,
        spec,
        reserved_bytes: spec.reservation(limits),
        upload_expires_at: None,
        multipart: None,
        ingest_key: None,
        remote_uri: None,
        batch_id: None,
    };
    (new_file, created)
}

/// An import: no upload URL; filegate fetches `uri` into the file once it is reserved
/// (its bytes held are its declared size, or the workspace's largest file).
fn import_one<'a>(
    state: &AppState,
    workspace_id: Uuid,
    spec: &'a FileSpec,
    uri: &'a str,
    limits: &Limits,
) -> Result<(NewFile<'a>, CreatedFile), ApiError> {
    let (mut new_file, mut created) = entry(workspace_id, spec, limits);
    new_file.ingest_key = Some(signing::new_key().map_err(|e| ApiError::internal(e.to_string()))?);
    new_file.remote_uri = Some(uri);
    // No URL can write it: the import goes to the object key, and completion has
    // nothing to copy.
    new_file.upload_key = new_file.object_key.clone();
    let window = chrono::Duration::from_std(state.settings.storage.presign_ttl)
        .map_err(ApiError::internal)?;
    created.expires_at = chrono::Utc::now() + window;
    created.processing_status = ProcessingStatus::Processing;
    created.remote_uri = Some(uri.to_owned());
    Ok((new_file, created))
}

/// Each entry's import URI, checked by the SSRF guard (`None` for an upload); `422
/// invalid_metadata` listing every refused one, before anything is reserved.
async fn check_imports(
    state: &AppState,
    entries: &[FileEntry],
) -> Result<Vec<Option<String>>, ApiError> {
    let mut uris = Vec::with_capacity(entries.len());
    let mut failures = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let Some(raw) = entry.remote_uri.as_deref() else {
            uris.push(None);
            continue;
        };
        if entry.upload_method.is_some() || entry.part_size_bytes.is_some() {
            failures.push(EntryFailure::new(
                index,
                ErrorCode::InvalidMetadata,
                "an import is fetched by filegate, not uploaded in parts",
            ));
            uris.push(None);
            continue;
        }
        match state.imports.check(raw).await {
            Ok(_) => uris.push(Some(raw.to_owned())),
            Err(refusal) => {
                failures.push(EntryFailure::new(
                    index,
                    ErrorCode::InvalidMetadata,
                    format!("remote_uri is refused: {refusal}"),
                ));
                uris.push(None);
            }
        }
    }
    if failures.is_empty() {
        Ok(uris)
    } else {
        metrics::reservation(Outcome::Invalid);
        Err(entries_error(failures, entries.len()))
    }
}

/// The last segment of a URI's path, percent-decoded: the name an import takes when
/// its entry gives none.
fn last_segment(uri: &str) -> Option<String> {
    let url = reqwest::Url::parse(uri).ok()?;
    let segment = url.path_segments()?.rev().find(|s| !s.is_empty())?;
    let decoded = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()?
        .into_owned();
    Some(decoded).filter(|s| !s.is_empty())
}

/// Aborts the multipart uploads started for files that were not reserved.
async fn abort_uploads(state: &AppState, files: &[NewFile<'_>]) {
    for f in files {
        if let Some(m) = &f.multipart {
            state.uploads.abort(&f.object_key, &m.upload_id).await;
        }
    }
}

/// When the finalizer first looks for the new files' uploads.
pub(super) fn first_look(state: &AppState) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    let after = state.settings.reaper.finalizer_min_interval;
    Ok(chrono::Utc::now() + chrono::Duration::from_std(after).map_err(ApiError::internal)?)
}

/// Seconds a batch refused for the pending-file cap is told to wait: the cap frees as
/// the workspace's uploads complete or expire.
const PENDING_RETRY_AFTER_SECS: u64 = 5;

/// Why the reservation statement refused, read back from the workspace (a refusal is
/// rare, the statement itself says only that it refused): the file caps first, then
/// the bytes. 429 `rate_limited` for the pending cap (it frees as uploads complete);
/// 409 `quota_exceeded` for the live-file cap and the bytes, with `details.limit`.
pub(super) async fn quota_exceeded(
    state: &AppState,
    workspace_id: Uuid,
    files: &[NewFile<'_>],
) -> ApiError {
    let requested: i64 = files
        .iter()
        .map(|f| f.reserved_bytes)
        .fold(0, i64::saturating_add);
    let count = i64::try_from(files.len()).unwrap_or(i64::MAX);
    let mut details = json!({ "limit": "bytes", "requested_bytes": requested });
    if let Ok(Some(ws)) = filegate_db::workspaces::get(&state.pool, workspace_id).await {
        let counts = |limit: &str| {
            json!({
                "limit": limit,
                "requested_files": count,
                "file_count": ws.live_files,
                "max_files": ws.limits.max_files,
                "pending_file_count": ws.pending_files,
                "max_pending_files": ws.limits.max_pending_files,
            })
        };
        if ws.pending_files + count > ws.limits.max_pending_files {
            return ApiError::new(
                ErrorCode::RateLimited,
                "the workspace holds as many pending files as it may; complete or delete some, or retry later",
            )
            .with_retry_after(PENDING_RETRY_AFTER_SECS)
            .with_details(counts("pending_files"));
        }
        if ws.live_files + count > ws.limits.max_files {
            return ApiError::new(
                ErrorCode::QuotaExceeded,
                "the workspace holds as many files as it may; nothing was reserved",
            )
            .with_details(counts("files"));
        }
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

pub(super) async fn duplicates(
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
            EntryFailure::new(
                i,
                ErrorCode::DuplicateFile,
                "a live file with this name and path exists in the workspace",
            )
        })
        .collect();
    if failures.is_empty() {
        // The colliding file was deleted between the insert and this look-up.
        failures.push(EntryFailure::new(
            0,
            ErrorCode::DuplicateFile,
            "a file with the same name and path was being created",
        ));
    }
    Ok(entries_error(failures, files.len()))
}
