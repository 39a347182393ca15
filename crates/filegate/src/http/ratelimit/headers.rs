//! What a limiter's decision adds to an answer: the `RateLimit-*` headers, and the
//! `429` of an empty bucket. The `/v2` middleware and the event route both answer
//! with them; neither depends on the other.

use actix_web::body::MessageBody;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

use super::bucket::Decision;
use crate::http::error::ApiError;
use crate::metrics::{self, Bucket};

static LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// The `429` for an empty bucket of `kind`, counted, with its headers.
pub fn refuse(kind: Bucket, d: &Decision) -> HttpResponse {
    metrics::rate_limited(kind);
    let mut res = ApiError::rate_limited(d.retry_after_secs).error_response();
    set_headers(&mut res, d);
    res
}

/// Sets the `RateLimit-*` headers of `d` on `res`.
pub fn set_headers(res: &mut HttpResponse<impl MessageBody>, d: &Decision) {
    let headers = res.headers_mut();
    headers.insert(LIMIT.clone(), HeaderValue::from(d.limit));
    headers.insert(REMAINING.clone(), HeaderValue::from(d.remaining));
    headers.insert(RESET.clone(), HeaderValue::from(d.reset_secs));
}
