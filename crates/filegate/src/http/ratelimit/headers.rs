//! What a limiter's decision adds to an answer: the `RateLimit-*` headers, and the
//! `429` of an empty bucket. The `/v2` middleware and the event route both answer
//! with them; neither depends on the other.

use actix_web::body::MessageBody;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

use std::net::IpAddr;

use actix_web::HttpRequest;

use super::bucket::{BucketKey, Decision, Quota};
use super::ip::client_ip;
use crate::http::error::ApiError;
use crate::http::state::AppState;
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

/// A request refused before any API key was looked at (a wrong events secret, an
/// upload URL that is not live) costs its client address a token of the bucket
/// `bucket` names, at the API's rate: the `429` when that bucket is empty, so guessing
/// is throttled; `None` when the request may be answered with its own refusal.
pub async fn charge_refused(
    state: &AppState,
    req: &HttpRequest,
    bucket: fn(Option<IpAddr>) -> BucketKey,
) -> Option<HttpResponse> {
    let limits = &state.settings.rate_limit;
    let quota = Quota {
        per_second: limits.rate_limit_per_second,
        burst: limits.rate_limit_burst,
    };
    let ip = client_ip(req, &limits.trusted_proxies);
    let decision = state.limiter.check(bucket(ip), quota).await?;
    (!decision.allowed).then(|| refuse(Bucket::Ip, &decision))
}

/// Sets the `RateLimit-*` headers of `d` on `res`.
pub fn set_headers(res: &mut HttpResponse<impl MessageBody>, d: &Decision) {
    let headers = res.headers_mut();
    headers.insert(LIMIT.clone(), HeaderValue::from(d.limit));
    headers.insert(REMAINING.clone(), HeaderValue::from(d.remaining));
    headers.insert(RESET.clone(), HeaderValue::from(d.reset_secs));
}
