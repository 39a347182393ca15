//! The one `ResponseError`: every non-2xx answer is an [`ApiError`] rendered as the
//! contract's envelope, `{"error": {code, message, details}, "request_id"}`. The lower
//! layers' errors (the services', the database's, the store's) become answers here, in
//! one `From` impl each.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
pub use filegate_api::ErrorCode;
use filegate_db::DbError;
use filegate_storage::StorageError;
use serde::Serialize;
use serde_json::Value;

use crate::causes::chain;
use crate::http::request_id;
use crate::service::completion::CompletionError;
use crate::service::ingest::IngestError;
use crate::service::uploads::UploadError;

/// Any error, boxed: the cause behind a 5xx, or why a command failed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Seconds a client is told to wait after a 503.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

/// An error answer: a status, a stable code, one sentence, optional details, and for
/// 5xx the hidden cause that only the log sees.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    details: Option<Value>,
    retry_after: Option<u64>,
    /// The `Allow` header of a 405.
    allow: Option<&'static str>,
    source: Option<BoxError>,
}

/// The body of every non-2xx response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ErrorEnvelope)]
pub struct Envelope<'a> {
    error: Body<'a>,
    /// Also sent as the `X-Request-Id` header.
    request_id: &'a str,
}

/// What went wrong.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ErrorBody)]
struct Body<'a> {
    /// A stable code.
    code: ErrorCode,
    /// One human-readable sentence.
    message: &'a str,
    /// Structured context; for a batch, `files` lists `{index, code, message}` per failing entry.
    #[schema(value_type = Object)]
    details: &'a Value,
}

/// The name the OpenAPI document gives [`Envelope`].
pub type ErrorEnvelope = Envelope<'static>;

impl ApiError {
    /// An answer with `code` (and the status that code has) and one sentence.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
            retry_after: None,
            allow: None,
            source: None,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// 405 `method_not_allowed`, with the `Allow` header (also named in `details`).
    pub fn method_not_allowed(allow: &'static str) -> Self {
        let mut e = Self::new(
            ErrorCode::MethodNotAllowed,
            "method not allowed on this route",
        );
        e.details = Some(serde_json::json!({ "allow": allow }));
        e.allow = Some(allow);
        e
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            ErrorCode::PayloadTooLarge,
            format!("request body exceeds {limit} bytes"),
        )
    }

    /// 429 `rate_limited` with `Retry-After`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut e = Self::new(ErrorCode::RateLimited, "too many requests; retry later");
        e.retry_after = Some(retry_after_secs.max(1));
        e
    }

    /// 500 `internal`; the cause is logged, never sent.
    pub fn internal(source: impl Into<BoxError>) -> Self {
        let mut e = Self::new(ErrorCode::Internal, "internal error");
        e.source = Some(source.into());
        e
    }

    /// 503 `unavailable` with `Retry-After`; the cause is logged, never sent.
    pub fn unavailable(what: &str, source: impl Into<BoxError>) -> Self {
        let mut e = Self::new(
            ErrorCode::Unavailable,
            format!("{what} is unavailable; retry later"),
        );
        e.retry_after = Some(UNAVAILABLE_RETRY_AFTER_SECS);
        e.source = Some(source.into());
        e
    }

    /// The generic answer for a status nothing more specific produced.
    #[must_use]
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            400 => Self::invalid_request("invalid request"),
            401 => Self::unauthenticated("authentication required"),
            403 => Self::forbidden("forbidden"),
            404 => Self::not_found("no such route"),
            405 => Self::new(
                ErrorCode::MethodNotAllowed,
                "method not allowed on this route",
            ),
            408 => Self::new(
                ErrorCode::RequestTimeout,
                "the request body arrived too slowly",
            ),
            413 => Self::new(ErrorCode::PayloadTooLarge, "request body too large"),
            429 => Self::rate_limited(1),
            503 => {
                let mut e = Self::new(ErrorCode::Unavailable, "service unavailable; retry later");
                e.retry_after = Some(UNAVAILABLE_RETRY_AFTER_SECS);
                e
            }
            s if s >= 500 => Self::new(ErrorCode::Internal, "internal error"),
            _ => Self::invalid_request("invalid request"),
        }
    }

    /// Sends `Retry-After: secs` (at least 1).
    #[must_use]
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// Attaches `details`.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl ApiError {
    /// This error as one entry of a batch's answer, for an item that failed while
    /// the request as a whole succeeded; the cause of a 5xx is logged here, as
    /// [`ResponseError::error_response`] logs it for a whole request.
    #[must_use]
    pub fn into_entry(self) -> filegate_api::FileError {
        if let Some(source) = &self.source {
            tracing::error!(request_id = %request_id::current(), code = self.code.as_str(), error = %chain(source.as_ref()), "batch item failed");
        }
        filegate_api::FileError {
            code: self.code,
            message: self.message,
            details: self
                .details
                .unwrap_or_else(|| Value::Object(serde_json::Map::new())),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.code.status(), self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status(self.code)
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = request_id::current();
        if let Some(source) = &self.source {
            tracing::error!(request_id = %request_id, code = self.code.as_str(), error = %chain(source.as_ref()), "request failed");
        }
        let empty = Value::Object(serde_json::Map::new());
        let envelope = Envelope {
            error: Body {
                code: self.code,
                message: &self.message,
                details: self.details.as_ref().unwrap_or(&empty),
            },
            request_id: &request_id,
        };
        let mut res = HttpResponse::build(status(self.code));
        res.content_type(header::ContentType::json());
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        if let Some(allow) = self.allow {
            res.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
        }
        // Serializing plain strings and a JSON value cannot fail.
        res.body(serde_json::to_vec(&envelope).unwrap_or_default())
    }
}

/// The status `code` is answered with.
fn status(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl ApiError {
    /// The answer to a database failure, owned or shared (a settling statement's,
    /// by every completion that was in it); the failure is the logged cause.
    fn database<E>(e: E) -> Self
    where
        E: std::borrow::Borrow<DbError> + Into<BoxError>,
    {
        if e.borrow().is_unavailable() {
            Self::unavailable("the database", e)
        } else {
            Self::internal(e)
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        Self::database(e)
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            // A store answering 501 to an operation filegate needs is as unusable as a
            // store that is down (and was reported as such before it had a name).
            StorageError::Unavailable(_) | StorageError::NotImplemented(_) => {
                Self::unavailable("the object store", e)
            }
            _ => Self::internal(e),
        }
    }
}

impl From<CompletionError> for ApiError {
    fn from(e: CompletionError) -> Self {
        match e {
            CompletionError::Database(e) => e.into(),
            CompletionError::Settlement(shared) => Self::database(shared),
            CompletionError::Store(e) => e.into(),
            CompletionError::TooSlow | CompletionError::AssemblyBusy => {
                Self::unavailable("the object store", e)
            }
            CompletionError::ClaimOutlived => Self::unavailable("this file's completion", e),
            CompletionError::NoEtag | CompletionError::NoFirstBytes => Self::internal(e),
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::WindowClosed => Self::new(ErrorCode::InvalidState, e.to_string()),
            UploadError::Store(e) => e.into(),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Busy => Self::new(ErrorCode::Unavailable, e.to_string())
                .with_retry_after(UNAVAILABLE_RETRY_AFTER_SECS),
            IngestError::InProgress => Self::new(ErrorCode::InvalidState, e.to_string())
                .with_details(serde_json::json!({ "status": "pending" })),
            IngestError::Settled(status) => Self::new(ErrorCode::InvalidState, e.to_string())
                .with_details(serde_json::json!({ "status": status.as_str() })),
            IngestError::Gone => Self::not_found(e.to_string()),
            IngestError::TooLarge { limit } => Self::new(ErrorCode::PayloadTooLarge, e.to_string())
                .with_details(serde_json::json!({ "limit_bytes": limit })),
            IngestError::TooSlow => Self::new(ErrorCode::RequestTimeout, e.to_string()),
            IngestError::Body(_) => Self::invalid_request(e.to_string()),
            IngestError::Store(e) => e.into(),
            IngestError::Database(e) => e.into(),
            IngestError::Completion(e) => e.into(),
        }
    }
}

impl From<actix_web::error::JsonPayloadError> for ApiError {
    fn from(e: actix_web::error::JsonPayloadError) -> Self {
        use actix_web::error::JsonPayloadError as J;
        match e {
            J::OverflowKnownLength { limit, .. } | J::Overflow { limit } => {
                Self::payload_too_large(limit)
            }
            J::ContentType => {
                Self::invalid_request("expected a JSON body with Content-Type: application/json")
            }
            J::Deserialize(err) => Self::invalid_request(format!("invalid JSON body: {err}")),
            J::Payload(actix_web::error::PayloadError::Overflow) => {
                Self::from_status(StatusCode::PAYLOAD_TOO_LARGE)
            }
            other => Self::invalid_request(format!("could not read the JSON body: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator as _;

    use super::*;

    #[test]
    fn each_code_keeps_its_status_through_from_status() {
        for code in ErrorCode::iter() {
            let status = status(code);
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code}"
            );
            // `from_status` (for statuses actix answers by itself) keeps the status.
            if ![StatusCode::CONFLICT, StatusCode::UNPROCESSABLE_ENTITY].contains(&status) {
                assert_eq!(
                    super::status(ApiError::from_status(status).code),
                    status,
                    "{code}"
                );
            }
        }
    }

    #[test]
    fn a_405_carries_allow_as_a_header_and_in_details() {
        let res = ApiError::method_not_allowed("GET, POST").error_response();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            res.headers()
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok()),
            Some("GET, POST")
        );
    }
}
