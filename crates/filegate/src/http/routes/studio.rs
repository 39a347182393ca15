//! AI21's library (`/studio/v1/library`): the routes its `ai21` SDK calls, over the same
//! files, workspaces, quota, rules and lifecycle as `/v2`. Every handler calls what the
//! `/v2` handler calls (the streaming ingest, the completion service, the same update
//! and delete) and only shapes the answer as AI21's: camelCase files, a bare array for
//! a list, `200` for everything that succeeds (its SDK raises on any other status).
//!
//! A request's workspace is its key's default workspace, or the `workspace_uuid` query
//! parameter for a key that reaches several.

use actix_web::{HttpRequest, HttpResponse, web};
use filegate_api::{
    BatchStatus, BatchStatusCount, LibraryCreated, LibraryFile, LibraryStatus, LibraryUpdate,
};
use filegate_db::files::{FileRow, ListQuery};
use filegate_domain::FileStatus;
use filegate_domain::listing::{MAX_PAGE, parse_list_query};
use futures_util::StreamExt as _;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::files::status::failure;
use super::files::update::{PatchRequest, apply};
use super::files::upload::{Dialect, Ingested, ingest_form, is_batch_id};
use super::files::{delete::remove, get::load_current};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorEnvelope};
use crate::http::state::AppState;

/// A file in AI21's shape.
#[must_use]
pub fn library_file(f: &FileRow) -> LibraryFile {
    let (error_code, error_message) = match f.status {
        FileStatus::Rejected => (
            Some(422),
            Some(failure(f).unwrap_or_else(|| "the upload failed verification".to_owned())),
        ),
        FileStatus::Expired => (Some(410), failure(f)),
        FileStatus::Pending | FileStatus::Ready => (None, None),
    };
    LibraryFile {
        file_id: f.id,
        name: f.name.clone(),
        file_type: f.content_type.to_string(),
        size_bytes: f.size_bytes.unwrap_or(0),
        created_by: f.created_by,
        creation_date: f.created_at.date_naive(),
        last_updated: f.updated_at.date_naive(),
        status: LibraryStatus::of(f.status, f.on_the_way()),
        path: f.path.clone(),
        labels: f.labels.clone(),
        public_url: f.public_url.clone(),
        error_code,
        error_message,
    }
}

/// The query of a create or a batch's status.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LibraryQuery {
    /// The workspace (the library); default: the key's default workspace.
    workspace_uuid: Option<Uuid>,
}

/// The form of a create: the file's fields, then its `file` part (fields after the file
/// are not read).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // Read by the OpenAPI document only.
pub struct LibraryForm {
    /// Library path (default `""`).
    path: Option<String>,
    /// A label: repeat the field for more (as the SDK sends them), or send one JSON
    /// array.
    labels: Option<Vec<String>>,
    /// A URL kept with the file as metadata.
    #[schema(rename = "publicUrl")]
    public_url: Option<String>,
    /// The batch the file belongs to (up to 255 bytes); its status counts its files.
    batch_id: Option<String>,
    /// `batch` (sent with `batch_id`); nothing else is known.
    upload_mode: Option<String>,
    /// The file's bytes; the part's file name names the file, and its `Content-Type`
    /// is its type (`application/octet-stream` or none: the type its extension names).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Add a file to the library: its bytes are streamed into the store and verified before
/// the answer, under the same quota and rules as `POST /v2/files`.
#[utoipa::path(
    post, path = "/studio/v1/library/files", tag = "library", operation_id = "library_create",
    params(LibraryQuery),
    request_body(content = LibraryForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Stored and verified (`PROCESSED`)", body = LibraryCreated),
        (status = 403, description = "Workspace outside the key's reach", body = ErrorEnvelope),
        (status = 408, description = "`request_timeout`: the body stopped or came too slowly", body = ErrorEnvelope),
        (status = 409, description = "`quota_exceeded`", body = ErrorEnvelope),
        (status = 413, description = "The file is larger than the library allows", body = ErrorEnvelope),
        (status = 422, description = "A rule failed (type, name, path, labels, a duplicate name and path), or the bytes are not what the file says", body = ErrorEnvelope),
        (status = 429, description = "`rate_limited`, or the library holds as many pending files as it may", body = ErrorEnvelope),
    )
)]
pub async fn create(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<LibraryQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let Ingested { file, .. } = ingest_form(
        &req,
        &caller,
        &state,
        query.workspace_uuid,
        payload,
        Dialect::Studio,
    )
    .await?;
    Ok(HttpResponse::Ok().json(LibraryCreated { file_id: file.id }))
}

/// The query keys a library listing takes.
const LIST_KEYS: [&str; 7] = [
    "workspace_uuid",
    "name",
    "path",
    "label",
    "status",
    "offset",
    "limit",
];

/// The library's files, newest first, as a bare array; filters combine with AND.
#[utoipa::path(
    get, path = "/studio/v1/library/files", tag = "library", operation_id = "library_list",
    params(
        ("workspace_uuid" = Option<Uuid>, Query, description = "Default: the key's default workspace"),
        ("name" = Option<String>, Query, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
         description = "Exact name"),
        ("path" = Option<String>, Query, max_length = 1024, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
         description = "Path prefix, literal and case-sensitive"),
        ("label" = Option<Vec<String>>, Query, explode = true, style = Form, min_length = 1, max_length = 64,
         description = "Files having any of these labels (repeatable, at most 100)"),
        ("status" = Option<LibraryStatus>, Query, description = "Only files in this status"),
        ("offset" = Option<i64>, Query, minimum = 0, maximum = 100000, description = "Files to skip (default 0)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "At most this many files (default 1000)"),
    ),
    responses(
        (status = 200, description = "The files", body = Vec<LibraryFile>),
        (status = 403, description = "Workspace outside the key's reach", body = ErrorEnvelope),
    )
)]
pub async fn list(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // AI21's status names are this surface's own; every other key is read as `/v2`
    // reads it.
    let mut status = None;
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(req.query_string().as_bytes()) {
        if !LIST_KEYS.contains(&key.as_ref()) {
            return Err(ApiError::invalid_request(format!(
                "unknown query parameter {key:?} ({} are known)",
                LIST_KEYS.join(", ")
            )));
        }
        if value.is_empty() && (key == "offset" || key == "limit") {
            // The SDK's `list(offset=None)`: httpx sends the key with no value.
            continue;
        }
        if key == "status" {
            if status.is_some() {
                return Err(ApiError::invalid_request("status may be given once"));
            }
            let names = LibraryStatus::ALL.map(LibraryStatus::as_str).join(", ");
            status = Some(LibraryStatus::parse(&value).ok_or_else(|| {
                ApiError::invalid_request(format!("status must be one of {names}"))
            })?);
        } else {
            rest.append_pair(&key, &value);
        }
    }
    let p = parse_list_query(&rest.finish()).map_err(|e| ApiError::invalid_request(e.0))?;
    let workspace_id = caller
        .reach_workspace(&state.pool, p.workspace_uuid)
        .await?
        .id;
    let statuses = status.map(LibraryStatus::states);
    if statuses.is_some_and(<[FileStatus]>::is_empty) {
        // A status no file is ever in.
        return Ok(HttpResponse::Ok().json(Vec::<LibraryFile>::new()));
    }
    let query = ListQuery {
        workspace_id,
        name: p.name.as_deref(),
        path_prefix: p.path.as_deref(),
        labels: &p.labels,
        statuses: statuses.unwrap_or_default(),
        in_flight: status.and_then(LibraryStatus::in_flight),
        types: &[],
        after: None,
        offset: p.offset.unwrap_or(0),
        limit: p.limit.unwrap_or(MAX_PAGE),
    };
    let rows = filegate_db::files::list(&state.pool, &query).await?;
    let files: Vec<LibraryFile> = rows.iter().map(library_file).collect();
    Ok(HttpResponse::Ok().json(files))
}

/// One file of the library. A pending file whose upload has arrived is verified first,
/// as `GET /v2/files/{file_uuid}` does.
#[utoipa::path(
    get, path = "/studio/v1/library/files/{file_uuid}", tag = "library", operation_id = "library_get",
    params(("file_uuid" = Uuid, Path, description = "The file")),
    responses(
        (status = 200, description = "The file", body = LibraryFile),
        (status = 404, description = "No such file within the key's reach", body = ErrorEnvelope),
    )
)]
pub async fn get(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let file = load_current(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(library_file(&file)))
}

/// Change a file's labels and public URL (`publicUrl: null` clears it), under the same
/// rules as at creation. An empty body changes nothing.
#[utoipa::path(
    put, path = "/studio/v1/library/files/{file_uuid}", tag = "library", operation_id = "library_update",
    params(("file_uuid" = Uuid, Path, description = "The file")),
    request_body(content = Option<LibraryUpdate>, content_type = "application/json",
                 description = "A JSON object; no body at all changes nothing"),
    responses(
        (status = 200, description = "The file as it is now", body = LibraryFile),
        (status = 404, description = "No such file within the key's reach", body = ErrorEnvelope),
        (status = 413, description = "`payload_too_large`: the body is larger than the server takes", body = ErrorEnvelope),
        (status = 422, description = "A rule failed (labels, public URL)", body = ErrorEnvelope),
    )
)]
pub async fn update(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Read here, not by an extractor: AI21's SDK sends no body at all for an update of
    // nothing, and only a JSON object is an update (serde would take an array too).
    let limit = state.settings.http.max_body_bytes;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::invalid_request(format!("the body failed: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    let update: LibraryUpdate = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => LibraryUpdate::default(),
        Some(b'{') => serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid_request(format!("malformed JSON body: {e}")))?,
        Some(_) => {
            return Err(ApiError::invalid_request(
                "the body must be a JSON object with labels and/or publicUrl",
            ));
        }
    };
    let patch = PatchRequest::labels_and_url(update.labels, update.public_url);
    let file = apply(&state, &caller, path.into_inner(), patch).await?;
    Ok(HttpResponse::Ok().json(library_file(&file)))
}

/// Delete a file: it leaves the library and the quota at once, its bytes with it.
#[utoipa::path(
    delete, path = "/studio/v1/library/files/{file_uuid}", tag = "library", operation_id = "library_delete",
    params(("file_uuid" = Uuid, Path, description = "The file")),
    responses(
        (status = 200, description = "Deleted (an empty body)"),
        (status = 404, description = "No such file within the key's reach", body = ErrorEnvelope),
    )
)]
pub async fn delete(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    remove(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().finish())
}

/// How many files of a batch are in each status.
#[utoipa::path(
    get, path = "/studio/v1/library/batches/{batch_id}/status", tag = "library", operation_id = "library_batch_status",
    params(
        ("batch_id" = String, Path, min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._~-]+$",
         description = "The batch (`batch_id` of its creates)"),
        LibraryQuery,
    ),
    responses(
        (status = 200, description = "The batch's files by status (only statuses some file is in)", body = BatchStatus),
        (status = 403, description = "Workspace outside the key's reach", body = ErrorEnvelope),
        (status = 404, description = "No file of the library names this batch", body = ErrorEnvelope),
    )
)]
pub async fn batch_status(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
    query: web::Query<LibraryQuery>,
) -> Result<HttpResponse, ApiError> {
    let batch_id = path.into_inner();
    let no_batch = || ApiError::not_found("no file of this library names that batch");
    if !is_batch_id(&batch_id) {
        return Err(no_batch());
    }
    let workspace = caller
        .reach_workspace(&state.pool, query.workspace_uuid)
        .await?;
    let counts = filegate_db::files::batch_counts(&state.pool, workspace.id, &batch_id).await?;
    // In the order of the lifecycle; rejected and expired files add up as UPLOAD_FAILED.
    let statuses: Vec<BatchStatusCount> = LibraryStatus::ALL
        .into_iter()
        .map(|status| BatchStatusCount {
            status,
            count: counts
                .iter()
                .filter(|c| LibraryStatus::of(c.status, c.in_flight) == status)
                .map(|c| c.count)
                .sum(),
        })
        .filter(|s| s.count > 0)
        .collect();
    let total_documents = statuses.iter().map(|s| s.count).sum();
    if total_documents == 0 {
        return Err(no_batch());
    }
    Ok(HttpResponse::Ok().json(BatchStatus {
        batch_id,
        total_documents,
        statuses,
    }))
}
