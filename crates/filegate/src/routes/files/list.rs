//! `GET /v2/files`: filters, newest first, keyset pages with an opaque cursor.

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use filegate_db::files::{ListPosition, ListQuery};
use filegate_domain::{FileStatus, Label, normalize_text};
use uuid::Uuid;

use super::{FileObject, FileStatusSchema};

/// A page of files.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ListResponse {
    pub files: Vec<FileObject>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}
use crate::auth::{Caller, forbidden_workspace};
use crate::error::{ApiError, ErrorEnvelope};
use crate::state::AppState;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
const CURSOR_VERSION: u8 = 1;

/// The parsed query string.
#[derive(Debug, Default)]
struct Params {
    workspace_uuid: Option<Uuid>,
    name: Option<String>,
    path: Option<String>,
    labels: Vec<String>,
    status: Option<FileStatus>,
    limit: Option<i64>,
    cursor: Option<String>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message)
}

/// A name or path filter: what could be stored (NFC, no control or invisible format
/// characters, bounded length), so NFD spellings find NFC names.
fn filter_text(key: &str, value: String, max: usize) -> Result<String, ApiError> {
    let value = normalize_text(key, &value).map_err(|e| bad(e.message))?;
    if value.len() > max || value.chars().any(char::is_control) {
        return Err(bad(format!(
            "{key} must be at most {max} bytes without control characters"
        )));
    }
    Ok(value)
}

/// Repeated keys (`label`) are why this is not `web::Query`.
fn parse(query: &str) -> Result<Params, ApiError> {
    let mut p = Params::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = value.into_owned();
        let once = |taken: bool| {
            if taken {
                Err(bad(format!("{key} may be given once")))
            } else {
                Ok(())
            }
        };
        match key.as_ref() {
            "workspace_uuid" => {
                once(p.workspace_uuid.is_some())?;
                p.workspace_uuid = Some(
                    Uuid::parse_str(&value).map_err(|_| bad("workspace_uuid must be a UUID"))?,
                );
            }
            "name" => {
                once(p.name.is_some())?;
                p.name = Some(filter_text("name", value, 255)?);
            }
            "path" => {
                once(p.path.is_some())?;
                p.path = Some(filter_text("path", value, 1024)?);
            }
            "label" => {
                let label = Label::parse(&value).map_err(|e| bad(format!("label: {e}")))?;
                if p.labels.len() >= 100 {
                    return Err(bad("at most 100 label filters"));
                }
                p.labels.push(label.as_str().to_owned());
            }
            "status" => {
                once(p.status.is_some())?;
                p.status = Some(FileStatus::from_name(&value).ok_or_else(|| {
                    bad("status must be one of pending, ready, rejected, expired")
                })?);
            }
            "limit" => {
                once(p.limit.is_some())?;
                let limit = value
                    .parse::<i64>()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l));
                p.limit = Some(limit.ok_or_else(|| {
                    bad(format!("limit must be an integer from 1 to {MAX_LIMIT}"))
                })?);
            }
            "cursor" => {
                once(p.cursor.is_some())?;
                // An empty cursor is the first page.
                p.cursor = Some(value).filter(|c| !c.is_empty());
            }
            other => return Err(bad(format!("unknown query parameter {other:?}"))),
        }
    }
    Ok(p)
}

/// A cursor names the workspace it belongs to and the last row of its page. It is
/// opaque to clients and only ever read within the (access-checked) workspace of the
/// request, so a forged cursor can reach nothing the key could not list anyway.
fn encode_cursor(workspace: Uuid, pos: ListPosition) -> String {
    let mut bytes = Vec::with_capacity(41);
    bytes.push(CURSOR_VERSION);
    bytes.extend_from_slice(workspace.as_bytes());
    bytes.extend_from_slice(&pos.created_at.timestamp_micros().to_be_bytes());
    bytes.extend_from_slice(pos.id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_cursor(workspace: Uuid, cursor: &str) -> Result<ListPosition, ApiError> {
    let invalid = || bad("cursor is not valid for this listing");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    if bytes.len() != 41 || bytes[0] != CURSOR_VERSION {
        return Err(invalid());
    }
    let ws = Uuid::from_slice(&bytes[1..17]).map_err(|_| invalid())?;
    if ws != workspace {
        return Err(invalid());
    }
    let micros = i64::from_be_bytes(bytes[17..25].try_into().map_err(|_| invalid())?);
    let created_at = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(invalid)?;
    let id = Uuid::from_slice(&bytes[25..41]).map_err(|_| invalid())?;
    Ok(ListPosition { created_at, id })
}

/// A page of a workspace's files, newest first.
#[utoipa::path(
    get, path = "/v2/files", tag = "files",
    params(
        ("workspace_uuid" = Option<Uuid>, Query, description = "Default: the key's default workspace"),
        ("name" = Option<String>, Query, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
         description = "Exact name (never a substring)"),
        ("path" = Option<String>, Query, max_length = 1024, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
         description = "Path prefix, literal and case-sensitive"),
        ("label" = Option<Vec<String>>, Query, explode = true, style = Form, min_length = 1, max_length = 64,
         description = "Files having any of these labels (repeatable, 1–64 bytes each, at most 100)"),
        ("status" = Option<FileStatusSchema>, Query, description = "Only files in this state"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page", body = ListResponse),
        (status = 403, description = "Workspace outside the key's reach", body = ErrorEnvelope),
    )
)]
pub async fn list(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = parse(req.query_string())?;
    let workspace_id = caller.target_workspace(p.workspace_uuid)?;
    filegate_db::workspaces::get(&state.pool, workspace_id)
        .await?
        .filter(|w| w.organization_id == caller.organization_id)
        .ok_or_else(forbidden_workspace)?;
    let after = p
        .cursor
        .as_deref()
        .map(|c| decode_cursor(workspace_id, c))
        .transpose()?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    let mut rows = filegate_db::files::list(
        &state.pool,
        &ListQuery {
            workspace_id,
            name: p.name.as_deref(),
            path_prefix: p.path.as_deref(),
            labels: &p.labels,
            status: p.status,
            after,
            limit: limit + 1,
        },
    )
    .await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = if more {
        rows.last().map(|r| {
            encode_cursor(
                workspace_id,
                ListPosition {
                    created_at: r.created_at,
                    id: r.id,
                },
            )
        })
    } else {
        None
    };
    let files: Vec<FileObject> = rows.into_iter().map(FileObject::from).collect();
    Ok(HttpResponse::Ok().json(ListResponse { files, next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bind_to_their_workspace() {
        let ws = Uuid::new_v4();
        let pos = ListPosition {
            created_at: DateTime::<Utc>::from_timestamp_micros(1_700_000_000_123_456)
                .unwrap_or_default(),
            id: Uuid::new_v4(),
        };
        let cursor = encode_cursor(ws, pos);
        assert_eq!(decode_cursor(ws, &cursor).ok(), Some(pos));
        assert!(decode_cursor(Uuid::new_v4(), &cursor).is_err());
        assert!(decode_cursor(ws, "garbage").is_err());
        assert!(decode_cursor(ws, &cursor[..cursor.len() - 2]).is_err());
    }

    #[test]
    fn query_strings_parse_strictly() {
        let p = parse("label=a&label=b&path=x%25_&limit=5&status=ready").ok();
        assert_eq!(
            p.as_ref().map(|p| p.labels.clone()),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(
            p.as_ref().and_then(|p| p.path.clone()),
            Some("x%_".to_owned())
        );
        for bad in [
            "name=a%00b",
            "path=%0A",
            "limit=0",
            "limit=1001",
            "limit=x",
            "status=gone",
            "unknown=1",
            "name=a&name=b",
            "workspace_uuid=1",
            "label=",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
