//! Which workspace a request addresses, read from the request alone (no I/O), so the
//! rate-limit middleware can charge the bucket whose override applies.

use actix_web::http::Method;
use uuid::Uuid;

/// Where a request names its workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressed {
    /// In its path or query string.
    Workspace(Uuid),
    /// Through a file it names: the file's workspace.
    File(Uuid),
    /// In its JSON body's `workspace_uuid` (`POST /v2/files`).
    Body,
    /// Nowhere: the key's default workspace.
    Default,
}

/// The workspace a `/v2` request addresses. Anything malformed is [`Addressed::Default`]:
/// the route refuses it, and the key's own bucket pays for that.
#[must_use]
pub fn addressed(method: &Method, path: &str, query: &str) -> Addressed {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        ["", "v2", "files"] if method == Method::POST => Addressed::Body,
        ["", "v2", "files"] => form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "workspace_uuid")
            .and_then(|(_, v)| Uuid::try_parse(&v).ok())
            .map_or(Addressed::Default, Addressed::Workspace),
        ["", "v2", "files", "complete"] => Addressed::Default,
        ["", "v2", "files", id] | ["", "v2", "files", id, "complete"] => {
            Uuid::try_parse(id).map_or(Addressed::Default, Addressed::File)
        }
        ["", "v2", "workspaces", id, "usage"] => {
            Uuid::try_parse(id).map_or(Addressed::Default, Addressed::Workspace)
        }
        _ => Addressed::Default,
    }
}

/// The `workspace_uuid` of a JSON request body, if it is a JSON object naming one.
#[must_use]
pub fn workspace_in_body(body: &[u8]) -> Option<Uuid> {
    #[derive(serde::Deserialize)]
    struct Peek {
        workspace_uuid: Option<Uuid>,
    }
    serde_json::from_slice::<Peek>(body)
        .ok()
        .and_then(|p| p.workspace_uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_names_its_workspace_where_it_does() {
        let ws = Uuid::new_v4();
        let file = Uuid::new_v4();
        let cases = [
            (
                Method::POST,
                "/v2/files".to_owned(),
                String::new(),
                Addressed::Body,
            ),
            (
                Method::GET,
                "/v2/files".to_owned(),
                format!("label=a&workspace_uuid={ws}"),
                Addressed::Workspace(ws),
            ),
            (
                Method::GET,
                "/v2/files".to_owned(),
                "workspace_uuid=nope".to_owned(),
                Addressed::Default,
            ),
            (
                Method::GET,
                "/v2/files".to_owned(),
                String::new(),
                Addressed::Default,
            ),
            (
                Method::GET,
                format!("/v2/files/{file}"),
                String::new(),
                Addressed::File(file),
            ),
            (
                Method::DELETE,
                format!("/v2/files/{file}/"),
                String::new(),
                Addressed::File(file),
            ),
            (
                Method::POST,
                format!("/v2/files/{file}/complete"),
                String::new(),
                Addressed::File(file),
            ),
            (
                Method::GET,
                format!("/v2/workspaces/{ws}/usage"),
                String::new(),
                Addressed::Workspace(ws),
            ),
            (
                Method::GET,
                "/v2/files/not-a-uuid".to_owned(),
                String::new(),
                Addressed::Default,
            ),
            (
                Method::GET,
                "/v2/nope".to_owned(),
                String::new(),
                Addressed::Default,
            ),
        ];
        for (method, path, query, want) in cases {
            assert_eq!(
                addressed(&method, &path, &query),
                want,
                "{method} {path}?{query}"
            );
        }
    }

    #[test]
    fn the_body_names_a_workspace_only_as_a_uuid_string() {
        let ws = Uuid::new_v4();
        let body = format!(r#"{{"files":[{{"name":"a.pdf"}}],"workspace_uuid":"{ws}"}}"#);
        assert_eq!(workspace_in_body(body.as_bytes()), Some(ws));
        for other in [
            r#"{"files":[]}"#,
            r#"{"workspace_uuid":null}"#,
            r#"{"workspace_uuid":7}"#,
            r#"{"workspace_uuid":"x"}"#,
            "[]",
            "not json",
            "",
        ] {
            assert_eq!(workspace_in_body(other.as_bytes()), None, "{other}");
        }
    }
}
