//! The one `ResponseError`: every non-2xx answer is an [`ApiError`] rendered as the
//! contract's envelope, `{"error": {code, message, details}, "request_id"}`.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use filegate_db::DbError;
use filegate_storage::StorageError;
use serde::Serialize;
use serde_json::Value;

use crate::request_id;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Seconds a client is told to wait after a 503.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

/// An error answer: a status, a stable code, one sentence, optional details, and for
/// 5xx the hidden cause that only the log sees.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<Value>,
    retry_after: Option<u64>,
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
    #[schema(value_type = ErrorCode)]
    code: &'a str,
    /// One human-readable sentence.
    message: &'a str,
    /// Structured context; for a batch, `files` lists `{index, code, message}` per failing entry.
    #[schema(value_type = Object)]
    details: &'a Value,
}

/// The stable error codes, by status: 400 `invalid_request`; 401 `unauthenticated`;
/// 403 `forbidden`; 404 `not_found`; 405 `method_not_allowed`; 409 `quota_exceeded`,
/// `idempotency_conflict`, `invalid_state`; 413 `payload_too_large`; 422
/// `unsupported_type`, `file_too_large`, `duplicate_file`, `invalid_metadata`,
/// `upload_missing`, `upload_mismatch`; 429 `rate_limited`; 500 `internal`; 503 `unavailable`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // The codes travel as strings; this enum documents them in the OpenAPI document.
pub enum ErrorCode {
    InvalidRequest,
    Unauthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    QuotaExceeded,
    IdempotencyConflict,
    InvalidState,
    PayloadTooLarge,
    UnsupportedType,
    FileTooLarge,
    DuplicateFile,
    InvalidMetadata,
    UploadMissing,
    UploadMismatch,
    RateLimited,
    Internal,
    Unavailable,
}

/// The name the OpenAPI document gives [`Envelope`].
pub type ErrorEnvelope = Envelope<'static>;

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
            source: None,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 405 `method_not_allowed`, with the `Allow` header.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this route",
        );
        e.details = Some(serde_json::json!({ "allow": allow }));
        e
    }

    /// 409 with one of `quota_exceeded`, `idempotency_conflict`, `invalid_state`.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body exceeds {limit} bytes"),
        )
    }

    /// 422 with one of the contract's 422 codes.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 429 `rate_limited` with `Retry-After`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; retry later",
        );
        e.retry_after = Some(retry_after_secs.max(1));
        e
    }

    /// 500 `internal`; the cause is logged, never sent.
    pub fn internal(source: impl Into<BoxError>) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        );
        e.source = Some(source.into());
        e
    }

    /// 503 `unavailable` with `Retry-After`; the cause is logged, never sent.
    pub fn unavailable(what: &str, source: impl Into<BoxError>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
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
                status,
                "method_not_allowed",
                "method not allowed on this route",
            ),
            413 => Self::new(status, "payload_too_large", "request body too large"),
            429 => Self::rate_limited(1),
            503 => {
                let mut e = Self::new(status, "unavailable", "service unavailable; retry later");
                e.retry_after = Some(UNAVAILABLE_RETRY_AFTER_SECS);
                e
            }
            s if s >= 500 => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            ),
            _ => Self::invalid_request("invalid request"),
        }
    }

    /// Attaches `details`.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Sets `Retry-After`.
    #[must_use]
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// The stable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = request_id::current();
        if let Some(source) = &self.source {
            tracing::error!(request_id = %request_id, code = self.code, error = %chain(source.as_ref()), "request failed");
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
        let mut res = HttpResponse::build(self.status);
        res.content_type(header::ContentType::json());
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        if self.status == StatusCode::METHOD_NOT_ALLOWED
            && let Some(allow) = self
                .details
                .as_ref()
                .and_then(|d| d.get("allow"))
                .and_then(Value::as_str)
            && let Ok(v) = HeaderValue::from_str(allow)
        {
            res.insert_header((header::ALLOW, v));
        }
        // Serializing plain strings and a JSON value cannot fail.
        res.body(serde_json::to_vec(&envelope).unwrap_or_default())
    }
}

/// The error and its causes, one after another, for the log.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(_) => Self::unavailable("the database", e),
            DbError::Query(_) => Self::internal(e),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Unavailable(_) => Self::unavailable("the object store", e),
            _ => Self::internal(e),
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
