//! The library listing's query string and its page cursor, parsed strictly.
//!
//! `GET /v2/files` repeats `label`, which is why the query is parsed here rather than by
//! a generic form extractor. A cursor names the workspace it belongs to and the last row
//! of its page; it is opaque to clients and only ever read within the (access-checked)
//! workspace of the request, so a forged cursor can reach nothing the key could not list
//! anyway.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{FileKind, FileStatus, Label, normalize_text};

/// Page size when the query names none.
pub const DEFAULT_PAGE: i64 = 100;
/// The largest page a query may ask for.
pub const MAX_PAGE: i64 = 1000;
/// Label filters one query may carry.
pub const MAX_LABEL_FILTERS: usize = 100;
/// Longest name filter, in bytes (a stored name's limit).
pub const MAX_NAME_FILTER: usize = 255;
/// Longest path filter, in bytes (a stored path's limit).
pub const MAX_PATH_FILTER: usize = 1024;
/// The deepest `offset` a query may ask for: offset pages (Aymara's) read and skip
/// every row before them, so past this a client pages with `cursor`.
pub const MAX_OFFSET: i64 = 100_000;

const CURSOR_VERSION: u8 = 1;
const CURSOR_BYTES: usize = 1 + 16 + 8 + 16;

/// Why a query string or cursor was refused: the message of a `400 invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

fn bad(message: impl Into<String>) -> QueryError {
    QueryError(message.into())
}

/// A parsed `GET /v2/files` query string. Text filters are NFC, like stored values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ListParams {
    pub workspace_uuid: Option<Uuid>,
    pub name: Option<String>,
    pub path: Option<String>,
    pub labels: Vec<String>,
    pub status: Option<FileStatus>,
    /// Files of this kind (Aymara's `file_type`).
    pub file_type: Option<FileKind>,
    pub limit: Option<i64>,
    /// The cursor as sent (decode it with [`decode_cursor`] once the workspace is known).
    pub cursor: Option<String>,
    /// Rows skipped (Aymara's offset paging); never with a cursor.
    pub offset: Option<i64>,
}

impl ListParams {
    /// The page size asked for, or the default.
    #[must_use]
    pub fn page_size(&self) -> i64 {
        self.limit.unwrap_or(DEFAULT_PAGE)
    }
}

/// A name or path filter: what could be stored (NFC, no control or invisible format
/// characters, bounded length), so NFD spellings find NFC names.
fn filter_text(key: &str, value: &str, max: usize) -> Result<String, QueryError> {
    let value = normalize_text(key, value).map_err(|e| bad(e.message))?;
    if value.len() > max || value.chars().any(char::is_control) {
        return Err(bad(format!(
            "{key} must be at most {max} bytes without control characters"
        )));
    }
    Ok(value)
}

/// Parses a `GET /v2/files` query string: known keys only, each at most once except
/// `label`.
///
/// # Errors
/// A [`QueryError`] naming the first key that breaks its rule.
pub fn parse_list_query(query: &str) -> Result<ListParams, QueryError> {
    let mut p = ListParams::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
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
                p.name = Some(filter_text("name", &value, MAX_NAME_FILTER)?);
            }
            "path" => {
                once(p.path.is_some())?;
                p.path = Some(filter_text("path", &value, MAX_PATH_FILTER)?);
            }
            "label" => {
                let label = Label::parse(&value).map_err(|e| bad(format!("label: {e}")))?;
                if p.labels.len() >= MAX_LABEL_FILTERS {
                    return Err(bad(format!("at most {MAX_LABEL_FILTERS} label filters")));
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
                    .filter(|l| (1..=MAX_PAGE).contains(l));
                p.limit = Some(limit.ok_or_else(|| {
                    bad(format!("limit must be an integer from 1 to {MAX_PAGE}"))
                })?);
            }
            "cursor" => {
                once(p.cursor.is_some())?;
                // An empty cursor is the first page.
                p.cursor = Some(value.into_owned()).filter(|c| !c.is_empty());
            }
            "offset" => {
                once(p.offset.is_some())?;
                let offset = value
                    .parse::<i64>()
                    .ok()
                    .filter(|o| (0..=MAX_OFFSET).contains(o));
                p.offset = Some(offset.ok_or_else(|| {
                    bad(format!(
                        "offset must be an integer from 0 to {MAX_OFFSET} (page further with cursor)"
                    ))
                })?);
            }
            "file_type" => {
                once(p.file_type.is_some())?;
                // Aymara's SDK sends an empty value for "any".
                if !value.is_empty() {
                    p.file_type = Some(FileKind::from_name(&value).ok_or_else(|| {
                        bad("file_type must be one of text, image, video, audio, document")
                    })?);
                }
            }
            other => return Err(bad(format!("unknown query parameter {other:?}"))),
        }
    }
    if p.offset.is_some_and(|o| o > 0) && p.cursor.is_some() {
        return Err(bad("offset and cursor cannot be combined"));
    }
    Ok(p)
}

/// A position in a newest-first listing: the last row of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

/// The cursor that continues a listing of `workspace` after `pos`.
#[must_use]
pub fn encode_cursor(workspace: Uuid, pos: Position) -> String {
    let mut bytes = Vec::with_capacity(CURSOR_BYTES);
    bytes.push(CURSOR_VERSION);
    bytes.extend_from_slice(workspace.as_bytes());
    bytes.extend_from_slice(&pos.created_at.timestamp_micros().to_be_bytes());
    bytes.extend_from_slice(pos.id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The position a cursor names, if it is one of ours for `workspace`.
///
/// # Errors
/// One [`QueryError`] for every way a cursor can be wrong: it says nothing of why.
pub fn decode_cursor(workspace: Uuid, cursor: &str) -> Result<Position, QueryError> {
    let invalid = || bad("cursor is not valid for this listing");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    if bytes.len() != CURSOR_BYTES || bytes[0] != CURSOR_VERSION {
        return Err(invalid());
    }
    let ws = Uuid::from_slice(&bytes[1..17]).map_err(|_| invalid())?;
    if ws != workspace {
        return Err(invalid());
    }
    let micros = i64::from_be_bytes(bytes[17..25].try_into().map_err(|_| invalid())?);
    let created_at = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(invalid)?;
    let id = Uuid::from_slice(&bytes[25..41]).map_err(|_| invalid())?;
    Ok(Position { created_at, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bind_to_their_workspace() {
        let ws = Uuid::new_v4();
        let pos = Position {
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
    fn a_cursor_with_an_impossible_time_is_refused_not_a_panic() {
        let ws = Uuid::new_v4();
        let mut bytes = vec![CURSOR_VERSION];
        bytes.extend_from_slice(ws.as_bytes());
        bytes.extend_from_slice(&i64::MAX.to_be_bytes());
        bytes.extend_from_slice(Uuid::new_v4().as_bytes());
        assert!(decode_cursor(ws, &URL_SAFE_NO_PAD.encode(bytes)).is_err());
    }

    #[test]
    fn query_strings_parse_strictly() {
        let p = parse_list_query("label=a&label=b&path=x%25_&limit=5&status=ready").ok();
        assert_eq!(
            p.as_ref().map(|p| p.labels.clone()),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(
            p.as_ref().and_then(|p| p.path.clone()),
            Some("x%_".to_owned())
        );
        assert_eq!(p.as_ref().map(ListParams::page_size), Some(5));
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
            "name=%E2%80%AEfdp",
            "offset=-1",
            "offset=100001",
            "offset=x",
            "file_type=pdf",
            "offset=5&cursor=abc",
        ] {
            assert!(parse_list_query(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn aymara_pages_by_offset_and_filters_by_file_type() {
        let p = parse_list_query("limit=10&offset=20&file_type=image").ok();
        assert_eq!(p.as_ref().and_then(|p| p.offset), Some(20));
        assert_eq!(p.as_ref().and_then(|p| p.file_type), Some(FileKind::Image));
        let any = parse_list_query("file_type=&offset=0&cursor=x").ok();
        assert_eq!(
            any.as_ref().and_then(|p| p.file_type),
            None,
            "empty means any"
        );
        assert_eq!(any.and_then(|p| p.cursor), Some("x".to_owned()));
    }

    #[test]
    fn text_filters_are_nfc_and_an_empty_cursor_is_the_first_page() {
        let p = parse_list_query("name=re%CC%81sume%CC%81.txt&cursor=").ok();
        assert_eq!(
            p.as_ref().and_then(|p| p.name.clone()),
            Some("r\u{e9}sum\u{e9}.txt".to_owned())
        );
        assert_eq!(p.and_then(|p| p.cursor), None);
    }
}
