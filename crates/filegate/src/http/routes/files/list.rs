//! `GET /v2/files`: filters, newest first, keyset pages with an opaque cursor; the same
//! answer carries Aymara's `items` and `count`, and pages by `offset` for its SDK.

use actix_web::{HttpRequest, HttpResponse, web};
use filegate_api::{FileKindSchema, FileStatusSchema, ListResponse};
use filegate_db::files::ListQuery;
use filegate_domain::listing::{
    Position, QueryError, decode_cursor, encode_cursor, parse_list_query,
};

use super::file_object;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorEnvelope};
use crate::http::state::AppState;

/// How many matches past the end of a page the count reads at most; with more, the
/// count says offset + limit + this and `count_exact` is false.
const COUNT_PAST: i64 = 1_000;

fn bad(e: QueryError) -> ApiError {
    ApiError::invalid_request(e.0)
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
        ("file_type" = Option<FileKindSchema>, Query, description = "Only files of this kind (Aymara's `file_type`; empty: any)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("offset" = Option<i64>, Query, minimum = 0, maximum = 100000,
         description = "Rows to skip (Aymara's offset paging; not with `cursor`, which pages at any depth)"),
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
    let p = parse_list_query(req.query_string()).map_err(bad)?;
    let workspace_id = caller
        .reach_workspace(&state.pool, p.workspace_uuid)
        .await?
        .id;
    let after = p
        .cursor
        .as_deref()
        .map(|c| decode_cursor(workspace_id, c))
        .transpose()
        .map_err(bad)?;
    let limit = p.page_size();
    let types: Vec<&str> = p.file_type.map(|k| k.mimes().collect()).unwrap_or_default();
    let query = ListQuery {
        workspace_id,
        name: p.name.as_deref(),
        path_prefix: p.path.as_deref(),
        labels: &p.labels,
        statuses: p.status.as_slice(),
        in_flight: None,
        types: &types,
        after,
        offset: p.offset.unwrap_or(0),
        limit: limit + 1,
    };
    // The page and the count go out together. The count reads at most COUNT_PAST rows
    // past the page's end, so a page costs the same in a workspace of a million files.
    let cap = query
        .offset
        .saturating_add(limit)
        .saturating_add(COUNT_PAST);
    let (rows, count) = futures_util::future::join(
        filegate_db::files::list(&state.pool, &query),
        filegate_db::files::count(&state.pool, &query, cap),
    )
    .await;
    let (mut rows, count) = (rows?, count?);
    let count_exact = count < cap;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = if more {
        rows.last().map(|r| {
            encode_cursor(
                workspace_id,
                Position {
                    created_at: r.created_at,
                    id: r.id,
                },
            )
        })
    } else {
        None
    };
    let files: Vec<_> = rows.into_iter().map(file_object).collect();
    Ok(HttpResponse::Ok().json(ListResponse {
        workspace_uuid: workspace_id,
        items: files.clone(),
        files,
        next_cursor,
        count,
        count_exact,
    }))
}
