//! The one table of routes. Each route's path, methods, handlers and the workspace each
//! method charges are declared here once; registration ([`super::configure`]), the
//! `Allow` header of a 405, the rate limiter's addressing ([`addressed`]) and the test
//! that holds the routes against the OpenAPI document all read it.

use std::sync::LazyLock;

use actix_web::http::Method;
use actix_web::web;
use uuid::Uuid;

use super::{events, files, health, metrics, studio, ui, uploads, webhooks, workspaces};
use crate::http::openapi;

/// Who may call a route, and how it is guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Health, readiness and the OpenAPI document: no key, no limit.
    Operations,
    /// `/metrics`: on the API's address, or on a listener of its own.
    Metrics,
    /// The upload page, served only with `--upload-page` (not in the OpenAPI document).
    Page,
    /// S3 event deliveries: the events secret, outside the API keys' limits; the
    /// handler reads the raw body.
    Events,
    /// Uploads through filegate: a URL filegate signed, no key; the handler streams
    /// the raw body.
    Upload,
    /// The `/v2` API: an API key, then the token bucket of the workspace charged.
    V2,
    /// AI21's library (`/studio/v1`): guarded as `/v2` is.
    Studio,
}

impl Surface {
    /// Behind an API key and the rate limit.
    #[must_use]
    pub fn keyed(self) -> bool {
        matches!(self, Self::V2 | Self::Studio)
    }
}

/// Which bucket of the key a `/v2` request pays into: the key's own (its default
/// workspace's) or that of the workspace the request addresses, where it names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Names no workspace: the key's own bucket.
    Key,
    /// The workspace in the path (`{workspace_uuid}`).
    PathWorkspace,
    /// The `workspace_uuid` of the query string.
    QueryWorkspace,
    /// The `workspace_uuid` of the JSON body.
    BodyWorkspace,
    /// The workspace of the file in the path (`{file_uuid}`).
    PathFile,
}

/// One method of a route.
#[derive(Debug)]
pub struct Endpoint {
    pub method: Method,
    pub charge: Charge,
    /// The handler, as actix registers it.
    pub route: fn() -> actix_web::Route,
}

/// One route: a path pattern (actix syntax) and its methods.
#[derive(Debug)]
pub struct RouteDef {
    pub path: &'static str,
    pub surface: Surface,
    pub endpoints: Vec<Endpoint>,
    /// The `Allow` header of a 405 on this path: its methods, in the table's order.
    pub allow: String,
}

fn route(path: &'static str, surface: Surface, endpoints: Vec<Endpoint>) -> RouteDef {
    let allow = endpoints
        .iter()
        .map(|e| e.method.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    RouteDef {
        path,
        surface,
        endpoints,
        allow,
    }
}

fn endpoint(method: Method, charge: Charge, route: fn() -> actix_web::Route) -> Endpoint {
    Endpoint {
        method,
        charge,
        route,
    }
}

/// Every route, in registration order: a literal path before a pattern that would take
/// it (`/v2/files/complete` before `/v2/files/{file_uuid}`).
pub static ROUTES: LazyLock<Vec<RouteDef>> = LazyLock::new(|| {
    use Charge::{BodyWorkspace, Key, PathFile, PathWorkspace, QueryWorkspace};
    use Method as M;
    use Surface::{Events, Operations, Page, Studio, Upload, V2};
    vec![
        route(
            "/",
            Page,
            vec![endpoint(M::GET, Key, || web::get().to(ui::index))],
        ),
        route(
            "/ui/app.js",
            Page,
            vec![endpoint(M::GET, Key, || web::get().to(ui::app_js))],
        ),
        route(
            "/ui/app.css",
            Page,
            vec![endpoint(M::GET, Key, || web::get().to(ui::app_css))],
        ),
        route(
            "/metrics",
            Surface::Metrics,
            vec![endpoint(M::GET, Key, || web::get().to(metrics::metrics))],
        ),
        route(
            "/healthz",
            Operations,
            vec![endpoint(M::GET, Key, || web::get().to(health::healthz))],
        ),
        route(
            "/openapi.json",
            Operations,
            vec![endpoint(M::GET, Key, || {
                web::get().to(openapi::openapi_json)
            })],
        ),
        route(
            "/readyz",
            Operations,
            vec![endpoint(M::GET, Key, || web::get().to(health::readyz))],
        ),
        route(
            "/v2/events/s3",
            Events,
            vec![endpoint(M::POST, Key, || web::post().to(events::s3))],
        ),
        route(
            "/v2/uploads/{file_uuid}",
            Upload,
            vec![endpoint(M::PUT, Key, || web::put().to(uploads::put))],
        ),
        route(
            "/v2/files",
            V2,
            vec![
                endpoint(M::GET, QueryWorkspace, || web::get().to(files::list::list)),
                endpoint(M::POST, BodyWorkspace, || {
                    web::post().to(files::create::create)
                }),
            ],
        ),
        route(
            "/v2/files/-/uploads",
            V2,
            vec![endpoint(M::POST, QueryWorkspace, || {
                web::post().to(files::upload::upload)
            })],
        ),
        route(
            "/v2/files/complete",
            V2,
            // A batch names no single workspace.
            vec![endpoint(M::POST, Key, || {
                web::post().to(files::complete::complete_batch)
            })],
        ),
        route(
            "/v2/files/{file_uuid}",
            V2,
            vec![
                endpoint(M::GET, PathFile, || web::get().to(files::get::get)),
                endpoint(M::PATCH, PathFile, || {
                    web::patch().to(files::update::update)
                }),
                endpoint(M::DELETE, PathFile, || {
                    web::delete().to(files::delete::delete)
                }),
            ],
        ),
        route(
            "/v2/files/{file_uuid}/status",
            V2,
            vec![endpoint(M::GET, PathFile, || {
                web::get().to(files::status::status)
            })],
        ),
        route(
            "/v2/files/{file_uuid}/frames",
            V2,
            vec![endpoint(M::GET, PathFile, || {
                web::get().to(files::frames::frames)
            })],
        ),
        route(
            "/v2/files/{file_uuid}/complete",
            V2,
            vec![endpoint(M::POST, PathFile, || {
                web::post().to(files::complete::complete)
            })],
        ),
        route(
            "/v2/files/{file_uuid}/parts",
            V2,
            vec![
                endpoint(M::GET, PathFile, || web::get().to(files::parts::list_parts)),
                endpoint(M::POST, PathFile, || {
                    web::post().to(files::parts::sign_parts)
                }),
            ],
        ),
        route(
            "/v2/workspaces/{workspace_uuid}/usage",
            V2,
            vec![endpoint(M::GET, PathWorkspace, || {
                web::get().to(workspaces::usage)
            })],
        ),
        route(
            "/v2/workspaces/{workspace_uuid}/webhooks",
            V2,
            vec![
                endpoint(M::GET, PathWorkspace, || web::get().to(webhooks::list)),
                endpoint(M::POST, PathWorkspace, || web::post().to(webhooks::create)),
            ],
        ),
        route(
            "/v2/workspaces/{workspace_uuid}/webhooks/{webhook_uuid}",
            V2,
            vec![
                endpoint(M::GET, PathWorkspace, || web::get().to(webhooks::get)),
                endpoint(M::PATCH, PathWorkspace, || {
                    web::patch().to(webhooks::update)
                }),
                endpoint(M::DELETE, PathWorkspace, || {
                    web::delete().to(webhooks::delete)
                }),
            ],
        ),
        route(
            "/v2/workspaces/{workspace_uuid}/webhooks/{webhook_uuid}/rotate-secret",
            V2,
            vec![endpoint(M::POST, PathWorkspace, || {
                web::post().to(webhooks::rotate)
            })],
        ),
        route(
            "/v2/workspaces/{workspace_uuid}/webhooks/{webhook_uuid}/deliveries",
            V2,
            vec![endpoint(M::GET, PathWorkspace, || {
                web::get().to(webhooks::deliveries)
            })],
        ),
        route(
            "/v2/workspaces/{workspace_uuid}/webhooks/{webhook_uuid}/deliveries/{delivery_uuid}/redeliver",
            V2,
            vec![endpoint(M::POST, PathWorkspace, || {
                web::post().to(webhooks::redeliver_one)
            })],
        ),
        route(
            "/v2/workspaces/{workspace_uuid}/webhooks/{webhook_uuid}/redeliver",
            V2,
            vec![endpoint(M::POST, PathWorkspace, || {
                web::post().to(webhooks::redeliver)
            })],
        ),
        route(
            "/studio/v1/library/files",
            Studio,
            vec![
                endpoint(M::GET, QueryWorkspace, || web::get().to(studio::list)),
                endpoint(M::POST, QueryWorkspace, || web::post().to(studio::create)),
            ],
        ),
        route(
            "/studio/v1/library/files/{file_uuid}",
            Studio,
            vec![
                endpoint(M::GET, PathFile, || web::get().to(studio::get)),
                endpoint(M::PUT, PathFile, || web::put().to(studio::update)),
                endpoint(M::DELETE, PathFile, || web::delete().to(studio::delete)),
            ],
        ),
        route(
            "/studio/v1/library/batches/{batch_id}/status",
            Studio,
            vec![endpoint(M::GET, QueryWorkspace, || {
                web::get().to(studio::batch_status)
            })],
        ),
    ]
});

/// The route `path` matches (a trailing `/` aside), and the values of its `{…}`
/// segments by name.
#[must_use]
pub fn find(path: &str) -> Option<(&'static RouteDef, Vec<(&'static str, &str)>)> {
    let path = path.trim_end_matches('/');
    // Every `/v2` request is matched here (the rate limiter's addressing): segment by
    // segment, allocating only for the parameters of the route that matches.
    ROUTES.iter().find_map(|r| {
        let mut params = Vec::new();
        let mut wanted = path.split('/');
        for p in r.path.trim_end_matches('/').split('/') {
            let w = wanted.next()?;
            match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) if !w.is_empty() => params.push((name, w)),
                None if p == w => {}
                _ => return None,
            }
        }
        wanted.next().is_none().then_some((r, params))
    })
}

/// Where a `/v2` request names the workspace it is charged to.
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

/// The workspace a `/v2` request addresses, as its route's [`Charge`] says, read from
/// the request alone (no I/O). Anything malformed, and any method or path no route
/// has, is [`Addressed::Default`]: the route refuses it, and the key's own bucket pays.
#[must_use]
pub fn addressed(method: &Method, path: &str, query: &str) -> Addressed {
    let Some((route, params)) = find(path) else {
        return Addressed::Default;
    };
    let Some(endpoint) = route.endpoints.iter().find(|e| e.method == *method) else {
        return Addressed::Default;
    };
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| Uuid::try_parse(v).ok())
    };
    match endpoint.charge {
        Charge::Key => Addressed::Default,
        Charge::BodyWorkspace => Addressed::Body,
        Charge::PathWorkspace => {
            param("workspace_uuid").map_or(Addressed::Default, Addressed::Workspace)
        }
        Charge::PathFile => param("file_uuid").map_or(Addressed::Default, Addressed::File),
        Charge::QueryWorkspace => form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "workspace_uuid")
            .and_then(|(_, v)| Uuid::try_parse(&v).ok())
            .map_or(Addressed::Default, Addressed::Workspace),
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
    use std::collections::BTreeSet;

    use super::*;

    /// `(path, method)` of every route the OpenAPI document describes.
    fn documented() -> BTreeSet<(String, String)> {
        let doc: serde_json::Value = serde_json::from_str(&openapi::document()).unwrap_or_default();
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                out.insert((path.clone(), method.to_uppercase()));
            }
        }
        out
    }

    #[test]
    fn every_registered_route_is_in_the_openapi_document_and_nothing_else_is() {
        let registered: BTreeSet<(String, String)> = ROUTES
            .iter()
            .filter(|r| r.surface != Surface::Page)
            .flat_map(|r| {
                r.endpoints
                    .iter()
                    .map(|e| (r.path.to_owned(), e.method.as_str().to_owned()))
            })
            .collect();
        let documented = documented();
        assert!(!documented.is_empty(), "the document lists no paths");
        assert_eq!(
            registered.difference(&documented).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "registered but not in the OpenAPI document"
        );
        assert_eq!(
            documented.difference(&registered).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "in the OpenAPI document but not registered"
        );
    }

    /// A route that names a file or a workspace in its path charges that one's bucket,
    /// on every method; `/v2` routes that name neither are charged by their query or
    /// body, or to the key. Only keyed routes (`/v2`, `/studio/v1`) are charged at all.
    #[test]
    fn each_route_charges_the_workspace_its_path_names() {
        for r in ROUTES.iter() {
            for e in &r.endpoints {
                let expected = if !r.surface.keyed() {
                    vec![Charge::Key]
                } else if r.path.contains("{file_uuid}") {
                    vec![Charge::PathFile]
                } else if r.path.contains("{workspace_uuid}") {
                    vec![Charge::PathWorkspace]
                } else {
                    vec![Charge::Key, Charge::QueryWorkspace, Charge::BodyWorkspace]
                };
                assert!(
                    expected.contains(&e.charge),
                    "{} {}: charged {:?}",
                    e.method,
                    r.path,
                    e.charge
                );
            }
        }
    }

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
                Method::POST,
                "/v2/files/complete".to_owned(),
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
                format!("/v2/files/{file}/parts"),
                String::new(),
                Addressed::File(file),
            ),
            (
                Method::POST,
                format!("/v2/files/{file}/parts"),
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
            // A method the route does not have is refused with 405: the key pays.
            (
                Method::PUT,
                format!("/v2/files/{file}"),
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
    fn allow_lists_each_routes_methods_in_order() {
        let allow = |path: &str| find(path).map(|(r, _)| r.allow.as_str());
        assert_eq!(allow("/v2/files"), Some("GET, POST"));
        assert_eq!(
            allow("/v2/files/0190c6d0-0000-7000-8000-000000000001"),
            Some("GET, PATCH, DELETE")
        );
        assert_eq!(allow("/v2/files/complete"), Some("POST"));
        assert_eq!(allow("/v2/nope"), None);
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
