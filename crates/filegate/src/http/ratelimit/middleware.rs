//! The `/v2` middleware (an actix `from_fn`): authenticates, picks the bucket (the
//! key's for the workspace addressed, or the client IP's when authentication fails)
//! and answers `429` when it is empty.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::Payload;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError, web};
use filegate_db::workspaces::RateScope;
use futures_util::{StreamExt as _, stream};
use uuid::Uuid;

use super::bucket::{BucketKey, Decision, Quota};
use super::headers::{refuse, set_headers};
use super::ip::client_ip;
use super::limiter::Limiter;
use super::scopes::Scopes;
use crate::http::auth::{self, Caller};
use crate::http::error::ApiError;
use crate::http::routes::table::{Addressed, addressed, workspace_in_body};
use crate::http::state::AppState;
use crate::metrics::Bucket;

/// The `/v2` scope's middleware, in this order: authenticate the presented key (an id
/// this process has never seen valid costs the client's IP a token before the
/// database is asked), then charge the bucket the request addresses (the key's, per
/// workspace; the client IP's when authentication failed), then call the route with
/// the `Caller` in the request's extensions, or answer `401`/`429` without calling it.
/// With the limiter off it calls the route directly, whose `Caller` extractor then
/// authenticates.
///
/// # Errors
/// Only what the route itself returns.
pub async fn authenticate_and_limit(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    if matches!(state.limiter, Limiter::Off) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    let settings = &state.settings.rate_limit;
    let default = Quota {
        per_second: settings.rate_limit_per_second,
        burst: settings.rate_limit_burst,
    };
    let ip_bucket = || {
        BucketKey::Ip(client_ip(
            req.request(),
            &state.settings.rate_limit.trusted_proxies,
        ))
    };
    // Authenticate here so the bucket is the key's; the handler's extractor then
    // finds the caller in the request extensions. A key id this process has not
    // seen valid is paid for by the client's IP before the database is asked.
    let mut ip_decision = None;
    let outcome = match auth::presented_key(req.request()) {
        Err(e) => Err(e),
        Ok(key) => match auth::check_cached(&state, key) {
            auth::CacheCheck::Decided(outcome) => outcome,
            auth::CacheCheck::Lookup { id, known: true } => auth::lookup(&state, key, id).await,
            auth::CacheCheck::Lookup { id, known: false } => {
                let decision = state.limiter.check(ip_bucket(), default).await;
                if let Some(d) = decision.as_ref().filter(|d| !d.allowed) {
                    return Ok(req
                        .into_response(refuse(Bucket::Ip, d))
                        .map_into_boxed_body());
                }
                ip_decision = decision;
                auth::lookup(&state, key, id).await
            }
        },
    };
    let (charge, refused) = match outcome {
        Ok(caller) => {
            tracing::Span::current().record("key_id", tracing::field::display(caller.key_id));
            let charge = match charge_for(&state, &mut req, &caller, default).await {
                Ok(charge) => charge,
                Err(res) => return Ok(req.into_response(res).map_into_boxed_body()),
            };
            req.extensions_mut().insert::<Caller>(caller);
            (charge, None)
        }
        // The database is down: there is nothing to limit against; say so.
        Err(e) if e.status_code() == StatusCode::SERVICE_UNAVAILABLE => {
            return Ok(req.into_response(e.error_response()).map_into_boxed_body());
        }
        Err(e) => (Charge::Bucket(ip_bucket(), default), Some(e)),
    };
    // A token paid already (by the IP for a failed key look-up, or by the key for
    // a scope look-up) is this request's: charge nothing twice.
    let decision = match (charge, refused.is_some(), ip_decision) {
        (Charge::Paid(paid), ..) | (Charge::Bucket(..), true, Some(paid)) => Some(paid),
        (Charge::Bucket(bucket, quota), ..) => state.limiter.check(bucket, quota).await,
    };
    let Some(decision) = decision else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    if !decision.allowed {
        let kind = if refused.is_some() {
            Bucket::Ip
        } else {
            Bucket::Key
        };
        let res = refuse(kind, &decision);
        return Ok(req.into_response(res).map_into_boxed_body());
    }
    if let Some(e) = refused {
        let mut res = e.error_response();
        set_headers(&mut res, &decision);
        return Ok(req.into_response(res).map_into_boxed_body());
    }
    let mut res = next.call(req).await?;
    set_headers(res.response_mut(), &decision);
    Ok(res.map_into_boxed_body())
}

/// What a request costs: a token from this bucket, or the token it already paid.
#[derive(Debug)]
enum Charge {
    Bucket(BucketKey, Quota),
    Paid(Decision),
}

/// The key's own bucket: its default workspace's (with that workspace's override).
fn own_bucket(caller: &Caller, default: Quota) -> (BucketKey, Quota) {
    (
        BucketKey::Key(caller.key_id),
        caller.rate_limit.unwrap_or(default),
    )
}

/// The bucket of the workspace `scope` describes, when the caller may address it;
/// otherwise the key's own bucket (the route refuses the request, and the key pays).
fn bucket_of(caller: &Caller, scope: Option<&RateScope>, default: Quota) -> (BucketKey, Quota) {
    match scope {
        Some(s)
            if s.organization_id == caller.organization_id
                && caller.scope_admits(s.workspace_id)
                && Some(s.workspace_id) != caller.default_workspace =>
        {
            let quota = s
                .rate_limit
                .and_then(|(per_second, burst)| {
                    Some(Quota {
                        per_second,
                        burst: u32::try_from(burst).ok()?,
                    })
                })
                .unwrap_or(default);
            (
                BucketKey::KeyInWorkspace {
                    key: caller.key_id,
                    workspace: s.workspace_id,
                },
                quota,
            )
        }
        _ => own_bucket(caller, default),
    }
}

/// The bucket an authenticated request is charged to: that of the workspace it
/// addresses (in its path, query or body, or through the file it names), for the key.
/// A workspace or file this process does not know yet is looked up once, and that
/// look-up is paid with a token of the key's own bucket.
async fn charge_for(
    state: &AppState,
    req: &mut ServiceRequest,
    caller: &Caller,
    default: Quota,
) -> Result<Charge, HttpResponse> {
    let scopes: &Scopes = &state.rate_scopes;
    let named = match addressed(req.method(), req.path(), req.query_string()) {
        Addressed::Default => None,
        Addressed::Workspace(ws) => Some(ws),
        Addressed::Body => peek_body(req, state.settings.http.max_body_bytes).await,
        Addressed::File(id) => match scopes.file(id) {
            Some(ws) => Some(ws),
            None => {
                let paid = pay_for_lookup(state, caller, default).await?;
                let scope = filegate_db::workspaces::rate_scope_of_file(&state.pool, id)
                    .await
                    .map_err(|e| ApiError::from(e).error_response())?;
                if let Some(s) = scope {
                    scopes.remember_files(s.workspace_id, [id]);
                    scopes.remember_workspace(s.workspace_id, Some(s));
                }
                return Ok(settle(caller, scope.as_ref(), default, paid));
            }
        },
    };
    let Some(ws) =
        named.filter(|ws| Some(*ws) != caller.default_workspace && caller.scope_admits(*ws))
    else {
        let (bucket, quota) = own_bucket(caller, default);
        return Ok(Charge::Bucket(bucket, quota));
    };
    if let Some(scope) = scopes.workspace(ws) {
        let (bucket, quota) = bucket_of(caller, scope.as_ref(), default);
        return Ok(Charge::Bucket(bucket, quota));
    }
    let paid = pay_for_lookup(state, caller, default).await?;
    let scope = filegate_db::workspaces::rate_scope(&state.pool, ws)
        .await
        .map_err(|e| ApiError::from(e).error_response())?;
    scopes.remember_workspace(ws, scope);
    Ok(settle(caller, scope.as_ref(), default, paid))
}

/// After a paid look-up: the workspace's bucket, or the token already paid when the
/// request falls to the key's own bucket anyway.
fn settle(
    caller: &Caller,
    scope: Option<&RateScope>,
    default: Quota,
    paid: Option<Decision>,
) -> Charge {
    let (bucket, quota) = bucket_of(caller, scope, default);
    match paid {
        Some(paid) if bucket == own_bucket(caller, default).0 => Charge::Paid(paid),
        _ => Charge::Bucket(bucket, quota),
    }
}

/// Takes a token from the key's own bucket for a look-up; `Err` is the 429 to send.
async fn pay_for_lookup(
    state: &AppState,
    caller: &Caller,
    default: Quota,
) -> Result<Option<Decision>, HttpResponse> {
    let (bucket, quota) = own_bucket(caller, default);
    let decision = state.limiter.check(bucket, quota).await;
    if let Some(d) = decision.filter(|d| !d.allowed) {
        return Err(refuse(Bucket::Key, &d));
    }
    Ok(decision)
}

/// Reads the request body (up to `limit` bytes; a longer one is left for the route to
/// refuse) for its `workspace_uuid`, and puts it back for the route.
async fn peek_body(req: &mut ServiceRequest, limit: usize) -> Option<Uuid> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return None;
    }
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    let mut failed = None;
    let mut complete = false;
    while body.len() <= limit {
        match payload.next().await {
            Some(Ok(chunk)) => body.extend_from_slice(&chunk),
            Some(Err(e)) => {
                failed = Some(e);
                break;
            }
            None => {
                complete = true;
                break;
            }
        }
    }
    let body = body.freeze();
    let named = if complete {
        workspace_in_body(&body)
    } else {
        None
    };
    if complete {
        req.set_payload(Payload::from(body));
    } else {
        // Hand the route exactly what the client sent: the bytes read, then the error
        // or the rest of the stream.
        let rest: BoxedPayloadStream = Box::pin(
            stream::once(async move { Ok(body) })
                .chain(stream::iter(failed.map(Err)))
                .chain(payload),
        );
        req.set_payload(Payload::from(rest));
    }
    named
}

type BoxedPayloadStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, PayloadError>>>>;
