//! The routes: the table that declares them ([`table`]) and one module per resource;
//! handlers extract, parse, call a service or the database, and shape the answer.

pub(crate) mod events;
pub(crate) mod files;
pub(crate) mod health;
pub(crate) mod metrics;
pub(crate) mod studio;
pub mod table;
pub(crate) mod ui;
pub(crate) mod uploads;
pub(crate) mod webhooks;
pub(crate) mod workspaces;

use actix_web::middleware::from_fn;
use actix_web::web;

use self::table::{ROUTES, RouteDef, Surface};
use crate::http::error::ApiError;
use crate::http::ratelimit::middleware::authenticate_and_limit;

/// Registers every route of the table: the upload page only when enabled, `/metrics`
/// unless it has a listener of its own, and the `/v2` API and AI21's library
/// (`/studio/v1`) behind authentication and the rate limit.
pub fn configure(cfg: &mut web::ServiceConfig, upload_page: bool, max_body: usize, metrics: bool) {
    for r in ROUTES.iter() {
        match r.surface {
            Surface::V2 | Surface::Studio => continue,
            Surface::Page if !upload_page => continue,
            Surface::Metrics if !metrics => continue,
            // Before the /v2 scope, which would take the path: deliveries carry the
            // events secret, and uploads a signed URL, not an API key.
            Surface::Events => {
                cfg.service(resource(r, r.path).app_data(web::PayloadConfig::new(max_body)));
            }
            _ => {
                cfg.service(resource(r, r.path));
            }
        }
    }
    let mut v2 = web::scope("/v2");
    for r in ROUTES.iter().filter(|r| r.surface == Surface::V2) {
        v2 = v2.service(resource(r, r.path.trim_start_matches("/v2")));
    }
    // Authentication, then the rate limit, then the route.
    cfg.service(v2.wrap(from_fn(authenticate_and_limit)));
    let mut studio = web::scope("/studio/v1");
    for r in ROUTES.iter().filter(|r| r.surface == Surface::Studio) {
        studio = studio.service(resource(r, r.path.trim_start_matches("/studio/v1")));
    }
    cfg.service(studio.wrap(from_fn(authenticate_and_limit)));
}

/// `GET /metrics`, on the API's address or a listener of its own.
#[must_use]
pub fn metrics_resource() -> actix_web::Resource {
    let r = ROUTES
        .iter()
        .find(|r| r.surface == Surface::Metrics)
        .unwrap_or_else(|| unreachable!("the table has /metrics"));
    resource(r, r.path)
}

/// The resource of `route` at `path` (relative to its scope): its methods, and 405
/// with `Allow` for the others.
fn resource(route: &'static RouteDef, path: &str) -> actix_web::Resource {
    let allow = route.allow.as_str();
    route.endpoints.iter().fold(
        web::resource(path).default_service(web::to(move || async move {
            Err::<(), _>(ApiError::method_not_allowed(allow))
        })),
        |resource, e| resource.route((e.route)()),
    )
}

/// The answer for a path no route matches.
pub async fn not_found() -> Result<(), ApiError> {
    Err(ApiError::not_found("no such route"))
}
