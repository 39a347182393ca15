//! `POST /v2/files/-/uploads`: a file's bytes in the request itself (a multipart form
//! with a `file` part), for clients that cannot PUT to the store (Aymara's SDK's
//! `files.upload`). The file is reserved with the same statement, quota and rules as
//! `POST /v2/files`, its bytes stream through filegate into the store (counted, hashed
//! and cut off at the limit as they arrive, see [`crate::service::ingest`]), and it is
//! completed before the answer: the answer is the file, ready, or its rejection.

use actix_multipart::{Field, Multipart};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use filegate_api::{EntryFailure, FileEntry, UploadedFile};
use filegate_db::files::{IngestTarget, NewFile, Reservation, ReserveOutcome};
use filegate_domain::{BatchError, FileSpec, FileStatus, Limits};
use futures_util::StreamExt as _;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::create::{batch_error, duplicates, first_look, quota_exceeded};
use super::with_download;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::http::state::AppState;
use crate::metrics::{self, Reservation as Outcome, Trigger};
use crate::service::completion;
use crate::service::ingest::{OnFailure, signing};

/// The query of an upload.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The workspace (default: the key's default workspace).
    workspace_uuid: Option<Uuid>,
}

/// The form of an upload: the file's fields, then its `file` part (fields after the
/// file are not read).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // Read by the OpenAPI document only.
pub struct UploadForm {
    /// Library path (default `""`), as for a reservation.
    path: Option<String>,
    /// A label (repeat the field for more), as for a reservation.
    labels: Option<Vec<String>>,
    /// `public_url`, as for a reservation.
    public_url: Option<String>,
    /// The file's bytes; its file name (`filename` of the part) names the file, and its
    /// `Content-Type` is its type (`application/octet-stream` or none: the type its
    /// extension names).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// The form fields that came before the file part.
#[derive(Debug, Default)]
struct Fields {
    path: Option<String>,
    labels: Vec<String>,
    public_url: Option<String>,
    /// AI21's `batch_id` (its surface only).
    batch_id: Option<String>,
}

/// Which surface's form an upload is: the names of its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `/v2`: `path`, `labels` (repeated), `public_url`.
    V2,
    /// AI21's library: `path`, `labels` (repeated, or one JSON array as AI21's
    /// examples send), `publicUrl`, `batch_id` and `upload_mode` (`batch`).
    Studio,
}

impl Dialect {
    fn known(self) -> &'static str {
        match self {
            Self::V2 => "path, labels, public_url and file",
            Self::Studio => "path, labels, publicUrl, batch_id, upload_mode and file",
        }
    }
}

/// A form upload that filegate stored and verified: the file, ready, and the part's
/// file name.
pub(crate) struct Ingested {
    pub file: filegate_db::files::FileRow,
    pub filename: Option<String>,
}

/// Upload a file in the request (multipart form, part `file`): reserved, streamed into
/// the store and verified before the answer.
///
/// The reservation is the request's `Content-Length` (at most the workspace's max file
/// size), settled to the real size; the body is cut off with `413` the moment it passes
/// it. A body that fails (too large, too slow, the client gone, the store failing)
/// leaves no file behind.
#[utoipa::path(
    post, path = "/v2/files/-/uploads", tag = "files",
    params(UploadQuery),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Stored and verified: the file, ready", body = UploadedFile),
        (status = 403, description = "Workspace outside the key's reach", body = ErrorEnvelope),
        (status = 408, description = "`request_timeout`: the body stopped or came too slowly", body = ErrorEnvelope),
        (status = 409, description = "`quota_exceeded`", body = ErrorEnvelope),
        (status = 413, description = "The file is larger than the workspace allows", body = ErrorEnvelope),
        (status = 422, description = "A rule failed, or `upload_mismatch`: the bytes are not what the file says (rejected)", body = ErrorEnvelope),
        (status = 429, description = "`rate_limited`, or the workspace holds as many pending files as it may", body = ErrorEnvelope),
    )
)]
pub async fn upload(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<UploadQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let Ingested { file, filename } = ingest_form(
        &req,
        &caller,
        &state,
        query.workspace_uuid,
        payload,
        Dialect::V2,
    )
    .await?;
    Ok(HttpResponse::Ok().json(UploadedFile {
        file: with_download(&state, file).await?,
        local_file_path: filename,
    }))
}

/// A form upload of either surface: the workspace reached, the form read up to its
/// `file` part, the file reserved under the creation rules, its bytes streamed into
/// the store and completed. Ready, or an error and no file left behind.
pub(crate) async fn ingest_form(
    req: &HttpRequest,
    caller: &Caller,
    state: &AppState,
    workspace_uuid: Option<Uuid>,
    payload: web::Payload,
    dialect: Dialect,
) -> Result<Ingested, ApiError> {
    let workspace = caller.reach_workspace(&state.pool, workspace_uuid).await?;
    let mut form = Multipart::new(req.headers(), payload);
    let (fields, field) = file_part(&mut form, dialect).await?;
    let filename = field
        .content_disposition()
        .and_then(|d| d.get_filename())
        .map(str::to_owned);
    let content_type = field
        .content_type()
        .map(|m| m.essence_str().to_owned())
        .filter(|t| t != "application/octet-stream");
    let entry = FileEntry {
        local_file_path: filename.clone(),
        content_type,
        path: fields.path,
        labels: Some(fields.labels).filter(|l| !l.is_empty()),
        public_url: fields.public_url,
        ..FileEntry::default()
    };
    let mut specs = FileSpec::parse_batch(&[entry.input()], &workspace.limits).map_err(|e| {
        metrics::reservation(Outcome::Invalid);
        rule_error(e)
    })?;
    let Some(spec) = specs.pop() else {
        return Err(ApiError::internal("a parsed batch of one lost its entry"));
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let target = reserve(
        state,
        caller,
        workspace.id,
        &spec,
        &workspace.limits,
        declared,
        fields.batch_id.as_deref(),
    )
    .await?;
    let outcome = state
        .ingest
        .ingest(
            &target,
            None,
            field,
            Uuid::new_v4(),
            Trigger::Ingest,
            OnFailure::Delete,
        )
        .await?;
    let file = match outcome {
        completion::Outcome::Ready(file) => file,
        completion::Outcome::Settled(file) if file.status == FileStatus::Ready => file,
        completion::Outcome::Rejected(file) | completion::Outcome::Settled(file) => {
            let reason = file.rejection_reason.clone().unwrap_or_default();
            return Err(ApiError::new(
                ErrorCode::UploadMismatch,
                format!("the upload was rejected: {reason}"),
            )
            .with_details(serde_json::json!({
                "file_uuid": file.id, "status": file.status.as_str(), "rejection_reason": reason,
            })));
        }
        // Written whole, but not completed (the store or the database failed): the
        // finalizer completes it.
        other => {
            return Err(ApiError::unavailable(
                "this file's completion",
                format!("the upload was stored but not completed: {other:?}"),
            ));
        }
    };
    Ok(Ingested { file, filename })
}

/// The fields before the form's `file` part (none, for Aymara's SDK), and that part.
async fn file_part(form: &mut Multipart, dialect: Dialect) -> Result<(Fields, Field), ApiError> {
    let bad = |what: String| {
        ApiError::invalid_request(format!(
            "expected a multipart/form-data body with a `file` part: {what}"
        ))
    };
    let mut fields = Fields::default();
    let mut read = 0usize;
    loop {
        let mut field = match form.next().await {
            None => return Err(bad("no `file` part".to_owned())),
            Some(Err(e)) => return Err(bad(e.to_string())),
            Some(Ok(field)) => field,
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            return Ok((fields, field));
        }
        // Another field: its text, bounded (the fields of one file are small).
        let mut value = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| bad(e.to_string()))?;
            read += chunk.len();
            if read > FIELDS_MAX {
                return Err(bad(format!(
                    "the fields before `file` pass {FIELDS_MAX} bytes"
                )));
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value)
            .map_err(|_| bad(format!("the field {name:?} is not UTF-8 text")))?;
        match (dialect, name.as_str()) {
            (_, "path") => fields.path = Some(value),
            (Dialect::V2, "labels") => fields.labels.push(value),
            // The SDK's `labels=None` arrives as an empty field: no label.
            (Dialect::Studio, "labels") if value.is_empty() => {}
            (Dialect::Studio, "labels") => fields.labels.extend(studio_labels(value)),
            (Dialect::V2, "public_url") | (Dialect::Studio, "publicUrl") => {
                fields.public_url = Some(value).filter(|u| !u.is_empty());
            }
            (Dialect::Studio, "batch_id") => {
                fields.batch_id = Some(batch_id(value)?).filter(|b| !b.is_empty());
            }
            (Dialect::Studio, "upload_mode") if value == "batch" || value.is_empty() => {}
            (Dialect::Studio, "upload_mode") => {
                return Err(ApiError::new(
                    ErrorCode::InvalidMetadata,
                    format!("upload_mode {value:?} is not known (batch is)"),
                )
                .with_details(serde_json::json!({ "field": "upload_mode" })));
            }
            (_, other) => {
                return Err(ApiError::invalid_request(format!(
                    "unknown form field {other:?} ({} are known)",
                    dialect.known()
                )));
            }
        }
    }
}

/// A form's one file broke a rule: its code and message as they are (no entry index:
/// a form carries one file).
fn rule_error(e: BatchError) -> ApiError {
    match e {
        BatchError::Entries(mut failures) if failures.len() == 1 => {
            let (_, v) = failures.remove(0);
            let failure = EntryFailure::new(0, v.code.into(), v.message.clone());
            ApiError::new(v.code.into(), v.message)
                .with_details(serde_json::json!({ "files": [failure] }))
        }
        other => batch_error(other, 1),
    }
}

/// AI21's labels field: one label, or (as AI21's own examples send) a JSON array of
/// them.
fn studio_labels(value: String) -> Vec<String> {
    if value.starts_with('[')
        && let Ok(labels) = serde_json::from_str::<Vec<String>>(&value)
    {
        return labels;
    }
    vec![value]
}

/// A batch id (empty: no batch).
fn batch_id(value: String) -> Result<String, ApiError> {
    if !value.is_empty() && !is_batch_id(&value) {
        return Err(ApiError::new(
            ErrorCode::InvalidMetadata,
            "batch_id must be 1 to 255 of A-Z, a-z, 0-9, '.', '_', '~' and '-' (not '.' or '..')",
        )
        .with_details(serde_json::json!({ "field": "batch_id" })));
    }
    Ok(value)
}

/// A batch id a create may name: 1 to 255 of `A-Z a-z 0-9 . _ ~ -`, not `.` or `..`
/// (AI21's SDK puts it in a URL path unencoded, so it must read back the same).
#[must_use]
pub(crate) fn is_batch_id(id: &str) -> bool {
    (1..=255).contains(&id.len())
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

/// The most bytes the fields before the file part may hold together.
const FIELDS_MAX: usize = 64 << 10;

/// Reserves the file the upload fills, in the reservation statement every file goes
/// through: its bytes held are the request's length when it has one (at most the
/// workspace's largest file), the largest file otherwise.
async fn reserve(
    state: &AppState,
    caller: &Caller,
    workspace_id: Uuid,
    spec: &FileSpec,
    limits: &Limits,
    declared: Option<i64>,
    batch_id: Option<&str>,
) -> Result<IngestTarget, ApiError> {
    let id = Uuid::now_v7();
    let object_key = filegate_domain::keys::object_key(workspace_id, id);
    let most = spec.reservation(limits);
    let reserved = declared.map_or(most, |n| n.clamp(0, most));
    let ingest_key = signing::new_key().map_err(|e| ApiError::internal(e.to_string()))?;
    // No URL can write a file filegate fills itself: its bytes go to the object key,
    // and completion has nothing to copy.
    let new_file = NewFile {
        id,
        upload_key: object_key.clone(),
        object_key,
        spec,
        reserved_bytes: reserved,
        upload_expires_at: None,
        multipart: None,
        ingest_key: Some(ingest_key),
        remote_uri: None,
        batch_id,
    };
    let window = chrono::Duration::from_std(state.settings.storage.presign_ttl)
        .map_err(ApiError::internal)?;
    let reservation = Reservation {
        workspace_id,
        organization_id: caller.organization_id,
        created_by: caller.key_id,
        upload_expires_at: chrono::Utc::now() + window,
        first_check_at: first_look(state)?,
        files: vec![new_file.clone()],
        idempotency: None,
    };
    match super::create::reserve_now(state, &reservation).await? {
        ReserveOutcome::Reserved => {
            state.rate_scopes.remember_files(workspace_id, [id]);
            metrics::reserved(1, reserved);
        }
        ReserveOutcome::QuotaExceeded => {
            metrics::reservation(Outcome::QuotaExceeded);
            return Err(quota_exceeded(state, workspace_id, &[new_file]).await);
        }
        ReserveOutcome::Duplicate => {
            metrics::reservation(Outcome::Duplicate);
            return Err(duplicates(state, workspace_id, &[new_file]).await?);
        }
        ReserveOutcome::IdempotencyKeyTaken => {
            return Err(ApiError::internal("an upload carries no Idempotency-Key"));
        }
    }
    Ok(IngestTarget {
        id,
        workspace_id,
        status: FileStatus::Pending,
        content_type: spec.content_type,
        reserved_bytes: reserved,
        upload_key: new_file.upload_key,
        ingest_key: ingest_key.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::is_batch_id;

    #[test]
    fn batch_ids_are_what_a_url_path_carries_unchanged() {
        for ok in ["nightly-7", "2024.10.01", "a_b~c", "..a", &"b".repeat(255)] {
            assert!(is_batch_id(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "2024/10/01",
            "a?b",
            "a#b",
            "a%41",
            "a b",
            "\0",
            "é",
            &"b".repeat(256),
        ] {
            assert!(!is_batch_id(bad), "{bad:?}");
        }
    }
}
