//! The outermost middleware: gives every request an id ([`crate::http::request_id`]),
//! runs it inside a tracing span and the id's task-local scope, sends the id back on
//! every response, turns any error that escaped the handlers into the envelope, and
//! logs (and counts) one line per request.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use tracing::Instrument;

use crate::http::error::ApiError;
use crate::http::request_id::{self, REQUEST_ID, X_REQUEST_ID};

/// The middleware function (see the module docs).
///
/// # Errors
/// Never: every error becomes an envelope response.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = request_id::of(
        req.headers()
            .get(&X_REQUEST_ID)
            .and_then(|v| v.to_str().ok()),
    );
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route = tracing::field::Empty,
        key_id = tracing::field::Empty,
    );
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let result = REQUEST_ID
        .scope(id.clone(), next.call(req).instrument(span.clone()))
        .await;
    let log = |status: u16, route: &str, path: &str| {
        span.record("route", route);
        let elapsed = started.elapsed();
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        span.in_scope(|| tracing::info!(status, latency_ms, path, "request"));
        crate::metrics::http_request(route, &method, status, elapsed);
    };
    match result {
        Ok(res) => {
            let (request, response) = res.into_parts();
            let response = finish(response.map_into_boxed_body(), &id);
            let route = request
                .match_pattern()
                .unwrap_or_else(|| "<unmatched>".to_owned());
            log(response.status().as_u16(), &route, request.path());
            Ok(ServiceResponse::new(request, response))
        }
        // An error from an inner middleware: render it (ours keep their envelope), and
        // hand actix the finished response to send as is.
        Err(err) => {
            let response = finish(
                REQUEST_ID.sync_scope(id.clone(), || err.error_response()),
                &id,
            );
            log(response.status().as_u16(), "<middleware>", "");
            Err(InternalError::from_response(err, response).into())
        }
    }
}

/// Replaces a non-2xx answer that is not already our JSON envelope (a bare status from
/// a library layer) with the envelope for its status, and sets `X-Request-Id`.
fn finish(mut response: HttpResponse, id: &str) -> HttpResponse {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let api = ApiError::from_status(status);
        response = REQUEST_ID.sync_scope(id.to_owned(), || api.error_response());
    }
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}
