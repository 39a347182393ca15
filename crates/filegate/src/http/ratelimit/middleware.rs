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
use crate::metrics::{self, Bucket, ScopeLookup};

/// The `/v2` scope's middleware, in this order: authenticate the presented key (an id
/// this process has never seen valid costs the client's IP a token before the
/// database is asked), then charge the key's bucket (and the bucket of the workspace
/// the request addresses, when that workspace has a rate of its own; the client IP's
/// when authentication failed), then call the route with the `Caller` in the
/// request's extensions, or answer `401`/`429` without calling it.
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
        // A token the IP paid already (for a failed key look-up) is this request's.
        Err(e) => (
            Charge {
                bucket: ip_bucket(),
                quota: default,
                paid: ip_decision,
                workspace: None,
            },
            Some(e),
        ),
    };
    let kind = if refused.is_some() {
        Bucket::Ip
    } else {
        Bucket::Key
    };
    let own = match charge.paid {
        Some(paid) => Some(paid),
        None => state.limiter.check(charge.bucket, charge.quota).await,
    };
    let Some(mut decision) = own else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    // A workspace's own rate caps what any key does in it, on top of the key's.
    if decision.allowed
        && let Some((bucket, quota)) = charge.workspace
        && let Some(there) = state.limiter.check(bucket, quota).await
    {
        decision = tighter(decision, there);
    }
    if !decision.allowed {
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

/// What a request costs: a token of `bucket` (the key's own, or the client IP's when
/// authentication failed), unless one was `paid` already for a look-up, and a token
/// of the bucket of the workspace it addresses when that workspace has a rate of its
/// own.
#[derive(Debug)]
struct Charge {
    bucket: BucketKey,
    quota: Quota,
    paid: Option<Decision>,
    workspace: Option<(BucketKey, Quota)>,
}

impl Charge {
    /// The key's own bucket (its default workspace's, with that workspace's override),
    /// with the workspace `scope` describes when it has a rate of its own.
    fn key(
        caller: &Caller,
        default: Quota,
        paid: Option<Decision>,
        scope: Option<&RateScope>,
    ) -> Self {
        Self {
            bucket: BucketKey::Key(caller.key_id),
            quota: caller.rate_limit.unwrap_or(default),
            paid,
            workspace: scope.and_then(|s| workspace_bucket(caller, s)),
        }
    }
}

/// Of two decisions for one request, the one that binds: a refusal, else the bucket
/// with fewer tokens left (its headers are the ones that matter to the client).
fn tighter(a: Decision, b: Decision) -> Decision {
    match (a.allowed, b.allowed) {
        (true, false) => b,
        (false, _) => a,
        _ if b.remaining < a.remaining => b,
        _ => a,
    }
}

/// The key's bucket for the workspace `scope` describes, when the workspace has a rate
/// of its own and the caller may address it (and it is not the key's default, whose
/// override sizes the key's own bucket). Every request draws from the key's own bucket
/// too, so naming many workspaces never multiplies a key's rate.
fn workspace_bucket(caller: &Caller, scope: &RateScope) -> Option<(BucketKey, Quota)> {
    if scope.organization_id != caller.organization_id
        || !caller.scope_admits(scope.workspace_id)
        || Some(scope.workspace_id) == caller.default_workspace
    {
        return None;
    }
    let (per_second, burst) = scope.rate_limit?;
    Some((
        BucketKey::KeyInWorkspace {
            key: caller.key_id,
            workspace: scope.workspace_id,
        },
        Quota {
            per_second,
            burst: u32::try_from(burst).ok()?,
        },
    ))
}

/// What an authenticated request costs: a token of the key's own bucket, and of the
/// bucket of the workspace it addresses (in its path, query or body, or through the
/// file it names) when that workspace has a rate of its own. A workspace or file this
/// process does not know yet is looked up once, and the key's own token this request
/// pays is taken before that look-up.
async fn charge_for(
    state: &AppState,
    req: &mut ServiceRequest,
    caller: &Caller,
    default: Quota,
) -> Result<Charge, HttpResponse> {
    // No other workspace of the organization has a rate of its own: whatever the
    // request addresses, the key's bucket alone pays, and nothing is looked up (nor
    // a body read).
    if !caller.overrides_elsewhere {
        return Ok(Charge::key(caller, default, None, None));
    }
    let scopes: &Scopes = &state.rate_scopes;
    let named = match addressed(req.method(), req.path(), req.query_string()) {
        Addressed::Default => None,
        Addressed::Workspace(ws) => Some(ws),
        Addressed::Body => peek_body(req, state.settings.http.max_body_bytes).await,
        Addressed::File(id) => match scopes.file(id) {
            Some(ws) => Some(ws),
            None => {
                let paid = pay_for_lookup(state, caller, default).await?;
                metrics::scope_lookup(ScopeLookup::File);
                let scope = filegate_db::workspaces::rate_scope_of_file(&state.pool, id)
                    .await
                    .map_err(|e| ApiError::from(e).error_response())?;
                if let Some(s) = scope {
                    scopes.remember_files(s.workspace_id, [id]);
                    scopes.remember_workspace(s.workspace_id, Some(s));
                }
                return Ok(Charge::key(caller, default, paid, scope.as_ref()));
            }
        },
    };
    let Some(ws) =
        named.filter(|ws| Some(*ws) != caller.default_workspace && caller.scope_admits(*ws))
    else {
        return Ok(Charge::key(caller, default, None, None));
    };
    if let Some(scope) = scopes.workspace(ws) {
        return Ok(Charge::key(caller, default, None, scope.as_ref()));
    }
    let paid = pay_for_lookup(state, caller, default).await?;
    metrics::scope_lookup(ScopeLookup::Workspace);
    let scope = filegate_db::workspaces::rate_scope(&state.pool, ws)
        .await
        .map_err(|e| ApiError::from(e).error_response())?;
    scopes.remember_workspace(ws, scope);
    Ok(Charge::key(caller, default, paid, scope.as_ref()))
}

/// Takes the request's token from the key's own bucket before a look-up; `Err` is the
/// 429 to send.
async fn pay_for_lookup(
    state: &AppState,
    caller: &Caller,
    default: Quota,
) -> Result<Option<Decision>, HttpResponse> {
    let bucket = BucketKey::Key(caller.key_id);
    let quota = caller.rate_limit.unwrap_or(default);
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
