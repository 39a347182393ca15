//! One module per resource; handlers extract, parse, call db/storage and shape the answer.

pub(crate) mod events;
pub(crate) mod files;
pub(crate) mod health;
pub(crate) mod metrics;
pub(crate) mod ui;
pub(crate) mod workspaces;

use actix_web::web;

use crate::error::ApiError;

/// Registers every route; the upload page only when enabled.
pub fn configure(cfg: &mut web::ServiceConfig, upload_page: bool, max_body: usize, metrics: bool) {
    if upload_page {
        cfg.service(resource("/", "GET").route(web::get().to(ui::index)))
            .service(resource("/ui/app.js", "GET").route(web::get().to(ui::app_js)))
            .service(resource("/ui/app.css", "GET").route(web::get().to(ui::app_css)));
    }
    if metrics {
        cfg.service(metrics_resource());
    }
    cfg.service(resource("/healthz", "GET").route(web::get().to(health::healthz)))
        .service(
            resource("/openapi.json", "GET").route(web::get().to(crate::openapi::openapi_json)),
        )
        .service(resource("/readyz", "GET").route(web::get().to(health::readyz)))
        // Before the /v2 scope: deliveries carry the events secret, not an API key.
        .service(
            resource("/v2/events/s3", "POST")
                .app_data(web::PayloadConfig::new(max_body))
                .route(web::post().to(events::s3)),
        )
        .service(
            web::scope("/v2")
                // Authentication, then the rate limit, then the route.
                .wrap(actix_web::middleware::from_fn(
                    crate::ratelimit::authenticate_and_limit,
                ))
                .service(
                    resource("/files", "GET, POST")
                        .route(web::get().to(files::list::list))
                        .route(web::post().to(files::create::create)),
                )
                // Before `/files/{file_uuid}`, which would take the path as an id.
                .service(
                    resource("/files/complete", "POST")
                        .route(web::post().to(files::complete::complete_batch)),
                )
                .service(
                    resource("/files/{file_uuid}", "GET, PATCH, DELETE")
                        .route(web::get().to(files::get::get))
                        .route(web::patch().to(files::update::update))
                        .route(web::delete().to(files::delete::delete)),
                )
                .service(
                    resource("/files/{file_uuid}/complete", "POST")
                        .route(web::post().to(files::complete::complete)),
                )
                .service(
                    resource("/files/{file_uuid}/parts", "GET, POST")
                        .route(web::get().to(files::parts::list_parts))
                        .route(web::post().to(files::parts::sign_parts)),
                )
                .service(
                    resource("/workspaces/{workspace_uuid}/usage", "GET")
                        .route(web::get().to(workspaces::usage)),
                ),
        );
}

/// `GET /metrics`, on the API's address or a listener of its own.
pub fn metrics_resource() -> actix_web::Resource {
    resource("/metrics", "GET").route(web::get().to(metrics::metrics))
}

/// A resource whose other methods answer 405 with `Allow: allow`.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<(), _>(ApiError::method_not_allowed(allow))
    }))
}

/// The answer for a path no route matches.
pub async fn not_found() -> Result<(), ApiError> {
    Err(ApiError::not_found("no such route"))
}
