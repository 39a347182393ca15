//! The actix-web `Transform` that authenticates, picks the bucket (API key, or client
//! IP when authentication fails) and answers `429` when it is empty.

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError, web};
use futures_util::future::LocalBoxFuture;

use super::{Decision, Quota, client_ip};
use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::state::AppState;

static LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Wrap a scope with this to rate-limit it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RateLimit;

impl<S, B> Transform<S, ServiceRequest> for RateLimit
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RateLimitMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RateLimitMiddleware {
            service: Rc::new(service),
        }))
    }
}

#[derive(Debug)]
pub struct RateLimitMiddleware<S> {
    service: Rc<S>,
}

fn set_headers(res: &mut HttpResponse<impl MessageBody>, d: &Decision) {
    let headers = res.headers_mut();
    headers.insert(LIMIT.clone(), HeaderValue::from(d.limit));
    headers.insert(REMAINING.clone(), HeaderValue::from(d.remaining));
    headers.insert(RESET.clone(), HeaderValue::from(d.reset_secs));
}

impl<S, B> Service<ServiceRequest> for RateLimitMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        Box::pin(async move {
            let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
                return service
                    .call(req)
                    .await
                    .map(ServiceResponse::map_into_left_body);
            };
            if matches!(state.limiter, super::Limiter::Off) {
                return service
                    .call(req)
                    .await
                    .map(ServiceResponse::map_into_left_body);
            }
            let settings = &state.settings.rate_limit;
            let default = Quota {
                per_second: settings.rate_limit_per_second,
                burst: settings.rate_limit_burst,
            };
            let ip_bucket = || {
                let ip = client_ip(req.request(), &state.trusted_proxies)
                    .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
                format!("ip:{ip}")
            };
            // Authenticate here so the bucket is the key's; the handler's extractor then
            // finds the caller in the request extensions. A key id this process has not
            // seen valid is paid for by the client's IP before the database is asked.
            let mut ip_decision = None;
            let outcome = match auth::presented_key(req.request()) {
                Err(e) => Err(e),
                Ok(key) => match auth::check_cached(&state, key) {
                    auth::CacheCheck::Decided(outcome) => outcome,
                    auth::CacheCheck::Lookup { id, known: true } => {
                        auth::lookup(&state, key, id).await
                    }
                    auth::CacheCheck::Lookup { id, known: false } => {
                        let decision = state.limiter.check(&ip_bucket(), default).await;
                        if let Some(d) = decision.as_ref().filter(|d| !d.allowed) {
                            crate::metrics::get()
                                .rate_limited
                                .with_label_values(&["ip"])
                                .inc();
                            let mut res =
                                ApiError::rate_limited(d.retry_after_secs).error_response();
                            set_headers(&mut res, d);
                            return Ok(req.into_response(res).map_into_right_body());
                        }
                        ip_decision = decision;
                        auth::lookup(&state, key, id).await
                    }
                },
            };
            let (bucket, quota, refused) = match outcome {
                Ok(caller) => {
                    let quota = caller.rate_limit.unwrap_or(default);
                    let bucket = format!("k:{}", caller.key_id);
                    tracing::Span::current()
                        .record("key_id", tracing::field::display(caller.key_id));
                    req.extensions_mut().insert::<Caller>(caller);
                    (bucket, quota, None)
                }
                // The database is down: there is nothing to limit against; say so.
                Err(e) if e.status_code() == StatusCode::SERVICE_UNAVAILABLE => {
                    return Ok(req.into_response(e.error_response()).map_into_right_body());
                }
                Err(e) => (ip_bucket(), default, Some(e)),
            };
            // A failed look-up already paid its IP token: charge nothing twice.
            let decision = match (&refused, ip_decision) {
                (Some(_), Some(paid)) => Some(paid),
                _ => state.limiter.check(&bucket, quota).await,
            };
            let Some(decision) = decision else {
                return service
                    .call(req)
                    .await
                    .map(ServiceResponse::map_into_left_body);
            };
            if !decision.allowed {
                let kind = if refused.is_some() { "ip" } else { "key" };
                crate::metrics::get()
                    .rate_limited
                    .with_label_values(&[kind])
                    .inc();
                let mut res = ApiError::rate_limited(decision.retry_after_secs).error_response();
                set_headers(&mut res, &decision);
                return Ok(req.into_response(res).map_into_right_body());
            }
            if let Some(e) = refused {
                let mut res = e.error_response();
                set_headers(&mut res, &decision);
                return Ok(req.into_response(res).map_into_right_body());
            }
            let mut res = service.call(req).await?;
            set_headers(res.response_mut(), &decision);
            Ok(res.map_into_left_body())
        })
    }
}
