//! The OpenAPI 3.1 document, generated from the handlers' annotations and the response
//! types, then completed with what every operation shares: security schemes, the error
//! responses any `/v2` route can give, and the headers every response carries.

use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Type};
use utoipa::{Modify, OpenApi};

use crate::http::error::ErrorEnvelope;
use crate::http::routes::files::{
    complete, create, delete, frames, get, list, parts, status, update, upload,
};
use crate::http::routes::{events, health, metrics, studio, uploads, webhooks, workspaces};

/// The one `/v2` route outside the API keys' rate limits (it has a secret of its own).
const EVENTS_PATH: &str = "/v2/events/s3";
/// Uploads through filegate: outside the API keys too, authorized by the URL itself.
const UPLOADS_PREFIX: &str = "/v2/uploads/";

/// The document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "filegate",
        description = "A workspace file library behind presigned uploads: reserve uploads against a quota, \
                       upload straight to the object store, complete after verification, then list, read, \
                       rename, relabel and delete.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        create::create, upload::upload, list::list, get::get, status::status, frames::frames, update::update, delete::delete, complete::complete, complete::complete_batch,
        parts::sign_parts, parts::list_parts, uploads::put, workspaces::usage, events::s3, health::healthz, health::readyz, metrics::metrics, openapi_json,
        studio::create, studio::list, studio::get, studio::update, studio::delete, studio::batch_status,
        webhooks::create, webhooks::list, webhooks::get, webhooks::update, webhooks::delete, webhooks::rotate,
        webhooks::deliveries, webhooks::redeliver_one, webhooks::redeliver,
    ),
    components(schemas(ErrorEnvelope, crate::http::error::ErrorCode, uploads::UploadStored, filegate_api::WebhookEvent)),
    modifiers(&Shared),
    tags(
        (name = "files", description = "Uploads and the file library"),
        (name = "workspaces", description = "Quota and limits"),
        (name = "library", description = "AI21's library API (`/studio/v1/library`, the `ai21` SDK's `library.files`) over the same files"),
        (name = "events", description = "S3 event notifications that complete uploads at once"),
        (name = "webhooks", description = "Signed webhooks on every file transition (Standard Webhooks headers: \
                                           `webhook-id`, `webhook-timestamp`, `webhook-signature`), delivered \
                                           from a transactional outbox until acknowledged; the body is a `WebhookEvent`"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    ),
    security(("bearer" = []), ("api_key" = [])),
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json",
               body = Object)))]
pub async fn openapi_json() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}

/// The document as pretty JSON, as served and checked in as `docs/openapi.json`.
#[must_use]
pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

struct Shared;

fn header(description: &str, ty: Type) -> Header {
    let mut h = Header::new(utoipa::openapi::ObjectBuilder::new().schema_type(ty));
    h.description = Some(description.to_owned());
    h
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                .build(),
        )
        .build()
        .into()
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}

impl Modify for Shared {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "events_secret",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The events secret (FILEGATE_EVENTS_SECRET); also accepted bare or as the HTTP Basic password",
                    ))
                    .build(),
            ),
        );
        for (path, item) in &mut doc.paths.paths {
            let v2 = path.starts_with("/v2/") || path.starts_with("/studio/v1/");
            let signed_url = path.starts_with(UPLOADS_PREFIX);
            let limited = v2 && path != EVENTS_PATH && !signed_url;
            for op in operations(item) {
                let responses = &mut op.responses.responses;
                if v2 {
                    let common = [
                        (
                            "400",
                            "`invalid_request`: malformed JSON, wrong types, unknown fields, bad UUID or query",
                        ),
                        (
                            "401",
                            "`unauthenticated`: missing, unknown, malformed or revoked key",
                        ),
                        ("405", "`method_not_allowed`"),
                        ("500", "`internal`"),
                        (
                            "503",
                            "`unavailable`: database or object store unreachable; retry after `Retry-After` seconds",
                        ),
                    ];
                    for (status, description) in common {
                        if signed_url && status == "401" {
                            continue;
                        }
                        responses
                            .entry(status.to_owned())
                            .or_insert_with(|| error_response(description));
                    }
                    if limited {
                        responses.entry("429".to_owned()).or_insert_with(|| {
                            error_response("`rate_limited`; retry after `Retry-After` seconds")
                        });
                    }
                }
                if !v2 || signed_url {
                    op.security = Some(vec![SecurityRequirement::default()]);
                }
                for (status, response) in responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    response.headers.insert(
                        "X-Request-Id".into(),
                        header(
                            "The request id (echoed when the request sent a sane one)",
                            Type::String,
                        ),
                    );
                    if limited {
                        for (name, description) in [
                            ("RateLimit-Limit", "Bucket size"),
                            ("RateLimit-Remaining", "Whole tokens left"),
                            ("RateLimit-Reset", "Seconds until the bucket is full"),
                        ] {
                            response
                                .headers
                                .insert(name.into(), header(description, Type::Integer));
                        }
                    }
                    if status == "429" || status == "503" {
                        response.headers.insert(
                            "Retry-After".into(),
                            header("Whole seconds to wait", Type::Integer),
                        );
                    }
                    if status == "405" {
                        response.headers.insert(
                            "Allow".into(),
                            header("The methods the route accepts", Type::String),
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// Generated clients name their methods by operation id: two alike break them.
    #[test]
    fn every_operation_id_is_unique() {
        let doc: serde_json::Value = serde_json::from_str(&super::document()).unwrap_or_default();
        let mut seen = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let id = op["operationId"].as_str().unwrap_or_default().to_owned();
                assert!(!id.is_empty(), "{method} {path} has no operation id");
                assert!(
                    seen.insert(id.clone()),
                    "{method} {path}: operation id {id} repeats"
                );
            }
        }
    }

    #[test]
    fn the_readme_lists_every_registered_type() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
        let readme = std::fs::read_to_string(path).unwrap_or_default();
        for r in &filegate_domain::REGISTRY {
            let row = r.table_row();
            assert!(
                readme.lines().any(|l| l == row),
                "README.md's type table lacks or differs from:\n{row}"
            );
        }
    }

    #[test]
    fn the_checked_in_document_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in.trim_end() == super::document().trim_end(),
            "docs/openapi.json has drifted from the code: run `cargo run -q -p filegate -- openapi > docs/openapi.json`"
        );
    }
}
