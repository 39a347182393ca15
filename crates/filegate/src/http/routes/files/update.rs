//! `PATCH /v2/files/{file_uuid}`: rename, move, relabel, set or clear the public URL,
//! with the same rules and errors as creation.

use actix_web::{HttpResponse, web};
use filegate_db::files::{FilePatch, FileRow, UpdateOutcome};
use filegate_domain::{FileName, Labels, LibraryPath, PublicUrl, RuleViolation, check_name_for};
use serde::{Deserialize, Deserializer};
use serde_json::json;
use uuid::Uuid;

use super::{File, file_not_found, file_object, load};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::http::state::AppState;

/// Absent → `None`; `null` → `Some(None)`; a value → `Some(Some(v))`.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The request body: any of the four fields, with the creation rules.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchRequest {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 255)]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 1024)]
    path: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>, max_items = 20)]
    labels: Option<Option<Vec<String>>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 2048)]
    public_url: Option<Option<String>>,
}

impl PatchRequest {
    /// A patch of the labels and the public URL only (AI21's update).
    #[must_use]
    pub(crate) fn labels_and_url(
        labels: Option<Vec<String>>,
        public_url: Option<Option<String>>,
    ) -> Self {
        Self {
            name: None,
            path: None,
            labels: labels.map(Some),
            public_url,
        }
    }
}

fn rule(field: &str, v: RuleViolation) -> ApiError {
    ApiError::new(v.code.into(), v.message).with_details(json!({ "field": field }))
}

fn not_null<T>(field: &str, v: Option<Option<T>>) -> Result<Option<T>, ApiError> {
    match v {
        Some(None) => Err(ApiError::new(
            ErrorCode::InvalidMetadata,
            format!("{field} cannot be null"),
        )
        .with_details(json!({ "field": field }))),
        Some(Some(v)) => Ok(Some(v)),
        None => Ok(None),
    }
}

/// Rename, move, relabel, or set or clear the public URL.
#[utoipa::path(
    patch, path = "/v2/files/{file_uuid}", tag = "files", request_body = PatchRequest,
    params(("file_uuid" = Uuid, Path, description = "The file")),
    responses(
        (status = 200, description = "The updated file", body = File),
        (status = 404, description = "No such file within the key's reach", body = ErrorEnvelope),
        (status = 413, description = "Body over the limit", body = ErrorEnvelope),
        (status = 422, description = "A rule failed (`invalid_metadata`, `duplicate_file`)", body = ErrorEnvelope),
    )
)]
pub async fn update(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
    body: web::Json<PatchRequest>,
) -> Result<HttpResponse, ApiError> {
    let file = apply(&state, &caller, path.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(file_object(file)))
}

/// Applies `body` to the file `id` under the creation rules: the file as it is then.
pub(crate) async fn apply(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    body: PatchRequest,
) -> Result<FileRow, ApiError> {
    let file = load(state, caller, id).await?;
    let name = not_null("name", body.name)?
        .map(|n| FileName::parse(&n).map_err(|e| rule("name", e)))
        .transpose()?;
    if let Some(name) = &name {
        // A stored type always parses; the new name must not say another one.
        check_name_for(name, file.content_type).map_err(|e| rule("name", e))?;
    }
    let lib_path = not_null("path", body.path)?
        .map(|p| LibraryPath::parse(&p).map_err(|e| rule("path", e)))
        .transpose()?;
    let labels = not_null("labels", body.labels)?
        .map(|l| Labels::parse(&l).map_err(|e| rule("labels", e)))
        .transpose()?;
    let public_url = match body.public_url {
        None => None,
        Some(None) => Some(None),
        Some(Some(u)) => Some(Some(
            PublicUrl::parse(&u).map_err(|e| rule("public_url", e))?,
        )),
    };
    if name.is_none() && lib_path.is_none() && labels.is_none() && public_url.is_none() {
        // Nothing to change: the file as it is, updated_at untouched.
        return Ok(file);
    }
    let patch = FilePatch {
        name: name.as_ref().map(FileName::as_str),
        path: lib_path.as_ref().map(LibraryPath::as_str),
        labels: labels.as_ref().map(Labels::to_strings),
        public_url: public_url
            .as_ref()
            .map(|u| u.as_ref().map(PublicUrl::as_str)),
    };
    match filegate_db::files::update(&state.pool, file.id, file.workspace_id, &patch).await? {
        UpdateOutcome::Updated(row) => Ok(*row),
        UpdateOutcome::NotFound => Err(file_not_found()),
        UpdateOutcome::Duplicate => Err(ApiError::new(
            ErrorCode::DuplicateFile,
            "a live file with this name and path exists in the workspace",
        )
        .with_details(json!({ "field": "name" }))),
    }
}
