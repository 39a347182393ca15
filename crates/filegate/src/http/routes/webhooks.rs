//! `/v2/workspaces/{workspace_uuid}/webhooks…`: a workspace's webhook endpoints (create,
//! list, read, change, delete, rotate the secret) and their deliveries (list, redeliver).
//! Any key that reaches the workspace manages its endpoints.

use actix_web::{HttpResponse, web};
use filegate_api::{
    CreateWebhookRequest, DeliveryList, DeliveryStatus, EventType, RedeliverRequest,
    RedeliverResponse, UpdateWebhookRequest, Webhook, WebhookDelivery, WebhookList,
    WebhookWithSecret,
};
use filegate_db::webhooks::{
    self as db, Delivery, Endpoint, EndpointPatch, MAX_ENDPOINTS, NewEndpoint,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::http::state::AppState;
use crate::service::webhooks::{event_type_names, new_secret};

/// The most deliveries one listing returns.
const MAX_LISTED: i64 = 500;

fn webhook(e: Endpoint) -> Webhook {
    Webhook {
        webhook_uuid: e.id,
        workspace_uuid: e.workspace_id,
        url: e.url,
        // The table's check admits only these names.
        event_types: e
            .event_types
            .iter()
            .filter_map(|t| t.parse().ok())
            .collect(),
        enabled: e.enabled,
        disabled_reason: e.disabled_reason,
        previous_secret_expires_at: e.previous_secret_until,
        last_success_at: e.last_success_at,
        created_at: e.created_at,
        updated_at: e.updated_at,
    }
}

fn delivery(d: Delivery) -> Result<WebhookDelivery, ApiError> {
    let status: DeliveryStatus = d
        .status
        .parse()
        .map_err(|_| ApiError::internal(format!("delivery status {:?}", d.status)))?;
    Ok(WebhookDelivery {
        delivery_uuid: d.id,
        webhook_uuid: d.endpoint_id,
        event_type: d
            .event_type
            .parse()
            .map_err(|_| ApiError::internal(format!("event type {:?}", d.event_type)))?,
        file_uuid: d.file_id,
        sequence: d.seq,
        status,
        attempts: d.attempts,
        occurred_at: d.occurred_at,
        next_attempt_at: (status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
        last_attempt_at: d.last_attempt_at,
        last_status_code: d.last_status_code,
        last_error: d.last_error,
        settled_at: d.settled_at,
    })
}

fn no_webhook() -> ApiError {
    ApiError::not_found("no such webhook in this workspace")
}

/// The event types as stored ([`event_type_names`]); a list naming none is refused.
fn event_types(named: Option<Vec<EventType>>) -> Result<Vec<String>, ApiError> {
    if named.as_ref().is_some_and(Vec::is_empty) {
        return Err(ApiError::invalid_request(
            "event_types must name at least one event type",
        ));
    }
    Ok(event_type_names(named))
}

async fn checked_url(state: &AppState, raw: &str) -> Result<String, ApiError> {
    state
        .webhooks
        .check_url(raw)
        .await
        .map(|u| u.to_string())
        .map_err(|r| ApiError::invalid_request(format!("url is refused: {r}")))
}

/// The workspace of the path, when the key reaches it.
async fn workspace(state: &AppState, caller: &Caller, id: Uuid) -> Result<Uuid, ApiError> {
    Ok(caller.reach_workspace(&state.pool, Some(id)).await?.id)
}

/// The endpoint `id` of the path's workspace, when the key reaches the workspace.
async fn endpoint(
    state: &AppState,
    caller: &Caller,
    (ws, id): (Uuid, Uuid),
) -> Result<Endpoint, ApiError> {
    let ws = workspace(state, caller, ws).await?;
    db::get(&state.pool, ws, id).await?.ok_or_else(no_webhook)
}

/// Creates a webhook endpoint; its signing secret is in this answer only.
#[utoipa::path(
    post, path = "/v2/workspaces/{workspace_uuid}/webhooks", tag = "webhooks", operation_id = "create_webhook",
    params(("workspace_uuid" = Uuid, Path, description = "The workspace")),
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "The endpoint, with its secret", body = WebhookWithSecret),
        (status = 400, description = "A URL that is malformed or refused by the SSRF guard, or no event types", body = ErrorEnvelope),
        (status = 403, description = "Workspace outside the key's reach", body = ErrorEnvelope),
        (status = 409, description = "The workspace has 16 endpoints already (`quota_exceeded`)", body = ErrorEnvelope),
    )
)]
pub async fn create(
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<CreateWebhookRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ws = workspace(&state, &caller, path.into_inner()).await?;
    let body = body.into_inner();
    let types = event_types(body.event_types)?;
    let url = checked_url(&state, &body.url).await?;
    let secret = new_secret().map_err(ApiError::internal)?;
    let created = db::create(
        &state.pool,
        &NewEndpoint {
            id: Uuid::now_v7(),
            workspace_id: ws,
            url: &url,
            event_types: &types,
            enabled: body.enabled.unwrap_or(true),
            secret: &secret,
        },
    )
    .await?
    .ok_or_else(|| {
        ApiError::new(
            ErrorCode::QuotaExceeded,
            format!("a workspace has at most {MAX_ENDPOINTS} webhook endpoints"),
        )
    })?;
    Ok(HttpResponse::Created().json(WebhookWithSecret {
        webhook: webhook(created),
        secret,
    }))
}

/// The workspace's webhook endpoints (without their secrets).
#[utoipa::path(
    get, path = "/v2/workspaces/{workspace_uuid}/webhooks", tag = "webhooks", operation_id = "list_webhooks",
    params(("workspace_uuid" = Uuid, Path, description = "The workspace")),
    responses(
        (status = 200, description = "Its endpoints, oldest first", body = WebhookList),
        (status = 403, description = "Workspace outside the key's reach", body = ErrorEnvelope),
    )
)]
pub async fn list(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ws = workspace(&state, &caller, path.into_inner()).await?;
    let items = db::list(&state.pool, ws)
        .await?
        .into_iter()
        .map(webhook)
        .collect();
    Ok(HttpResponse::Ok().json(WebhookList { items }))
}

/// One webhook endpoint.
#[utoipa::path(
    get, path = "/v2/workspaces/{workspace_uuid}/webhooks/{webhook_uuid}", tag = "webhooks", operation_id = "get_webhook",
    params(
        ("workspace_uuid" = Uuid, Path, description = "The workspace"),
        ("webhook_uuid" = Uuid, Path, description = "The endpoint"),
    ),
    responses(
        (status = 200, description = "The endpoint", body = Webhook),
        (status = 403, description = "Workspace outside the key's reach", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint in the workspace", body = ErrorEnvelope),
    )
)]
pub async fn get(
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let found = endpoint(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(webhook(found)))
}

/// Changes an endpoint's URL, event types or whether it is enabled. Enabling clears
/// `disabled_reason`, and its deliveries still pending resume.
#[utoipa::path(
    patch, path = "/v2/workspaces/{workspace_uuid}/webhooks/{webhook_uuid}", tag = "webhooks", operation_id = "update_webhook",
    params(
        ("workspace_uuid" = Uuid, Path, description = "The workspace"),
        ("webhook_uuid" = Uuid, Path, description = "The endpoint"),
    ),
    request_body = UpdateWebhookRequest,
    responses(
        (status = 200, description = "The endpoint as it is now", body = Webhook),
        (status = 400, description = "A refused URL, or no event types", body = ErrorEnvelope),
        (status = 403, description = "Workspace outside the key's reach", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint in the workspace", body = ErrorEnvelope),
    )
)]
pub async fn update(
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Json<UpdateWebhookRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (ws, id) = path.into_inner();
    let ws = workspace(&state, &caller, ws).await?;
    let body = body.into_inner();
    let types = match body.event_types {
        Some(named) => Some(event_types(Some(named))?),
        None => None,
    };
    let url = match body.url.as_deref() {
        Some(raw) => Some(checked_url(&state, raw).await?),
        None => None,
    };
    let patch = EndpointPatch {
        url: url.as_deref(),
        event_types: types.as_deref(),
        enabled: body.enabled,
    };
    let updated = db::update(&state.pool, ws, id, &patch)
        .await?
        .ok_or_else(no_webhook)?;
    Ok(HttpResponse::Ok().json(webhook(updated)))
}

/// Deletes an endpoint and its deliveries (those not yet sent are not).
#[utoipa::path(
    delete, path = "/v2/workspaces/{workspace_uuid}/webhooks/{webhook_uuid}", tag = "webhooks", operation_id = "delete_webhook",
    params(
        ("workspace_uuid" = Uuid, Path, description = "The workspace"),
        ("webhook_uuid" = Uuid, Path, description = "The endpoint"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Workspace outside the key's reach", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint in the workspace", body = ErrorEnvelope),
    )
)]
pub async fn delete(
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (ws, id) = path.into_inner();
    let ws = workspace(&state, &caller, ws).await?;
    if !db::delete(&state.pool, ws, id).await? {
        return Err(no_webhook());
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Gives an endpoint a new signing secret, shown in this answer only. The secret it
/// replaces signs deliveries beside the new one (two `v1,` signatures) for
/// `--webhook-secret-grace-secs`, so a receiver can switch without losing any.
#[utoipa::path(
    post, path = "/v2/workspaces/{workspace_uuid}/webhooks/{webhook_uuid}/rotate-secret", tag = "webhooks", operation_id = "rotate_webhook_secret",
    params(
        ("workspace_uuid" = Uuid, Path, description = "The workspace"),
        ("webhook_uuid" = Uuid, Path, description = "The endpoint"),
    ),
    responses(
        (status = 200, description = "The endpoint, with its new secret", body = WebhookWithSecret),
        (status = 403, description = "Workspace outside the key's reach", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint in the workspace", body = ErrorEnvelope),
    )
)]
pub async fn rotate(
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (ws, id) = path.into_inner();
    let ws = workspace(&state, &caller, ws).await?;
    let secret = new_secret().map_err(ApiError::internal)?;
    let grace = state.webhooks.settings().webhook_secret_grace;
    let rotated = db::rotate(&state.pool, ws, id, &secret, grace)
        .await?
        .ok_or_else(no_webhook)?;
    Ok(HttpResponse::Ok().json(WebhookWithSecret {
        webhook: webhook(rotated),
        secret,
    }))
}

/// The query of a delivery listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only deliveries of this status.
    #[param(value_type = Option<DeliveryStatus>)]
    status: Option<DeliveryStatus>,
    /// At most this many (default 50, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// An endpoint's most recent deliveries, newest first: status, attempts, the last
/// response code or error.
#[utoipa::path(
    get, path = "/v2/workspaces/{workspace_uuid}/webhooks/{webhook_uuid}/deliveries", tag = "webhooks", operation_id = "list_webhook_deliveries",
    params(
        ("workspace_uuid" = Uuid, Path, description = "The workspace"),
        ("webhook_uuid" = Uuid, Path, description = "The endpoint"),
        DeliveryQuery,
    ),
    responses(
        (status = 200, description = "Its deliveries", body = DeliveryList),
        (status = 400, description = "A limit out of range", body = ErrorEnvelope),
        (status = 403, description = "Workspace outside the key's reach", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint in the workspace", body = ErrorEnvelope),
    )
)]
pub async fn deliveries(
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    query: web::Query<DeliveryQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (ws, id) = path.into_inner();
    let ws = workspace(&state, &caller, ws).await?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_LISTED).contains(&limit) {
        return Err(ApiError::invalid_request(format!(
            "limit must be 1 to {MAX_LISTED}"
        )));
    }
    db::get(&state.pool, ws, id).await?.ok_or_else(no_webhook)?;
    let status: Option<&'static str> = query.status.map(Into::into);
    let items = db::deliveries(&state.pool, id, status, limit)
        .await?
        .into_iter()
        .map(delivery)
        .collect::<Result<_, _>>()?;
    Ok(HttpResponse::Ok().json(DeliveryList { items }))
}

/// Sends one delivery again, whatever its status (same `webhook-id`), with a new retry
/// horizon.
#[utoipa::path(
    post, path = "/v2/workspaces/{workspace_uuid}/webhooks/{webhook_uuid}/deliveries/{delivery_uuid}/redeliver",
    tag = "webhooks", operation_id = "redeliver_webhook_delivery",
    params(
        ("workspace_uuid" = Uuid, Path, description = "The workspace"),
        ("webhook_uuid" = Uuid, Path, description = "The endpoint"),
        ("delivery_uuid" = Uuid, Path, description = "The delivery"),
    ),
    responses(
        (status = 202, description = "Queued: the delivery as it is now", body = WebhookDelivery),
        (status = 403, description = "Workspace outside the key's reach", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint or delivery", body = ErrorEnvelope),
    )
)]
pub async fn redeliver_one(
    caller: Caller,
    path: web::Path<(Uuid, Uuid, Uuid)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (ws, id, delivery_id) = path.into_inner();
    endpoint(&state, &caller, (ws, id)).await?;
    let queued = db::redeliver(&state.pool, id, delivery_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such delivery of this webhook"))?;
    Ok(HttpResponse::Accepted().json(delivery(queued)?))
}

/// Sends again every failed delivery of an endpoint whose event happened at or after
/// `since`.
#[utoipa::path(
    post, path = "/v2/workspaces/{workspace_uuid}/webhooks/{webhook_uuid}/redeliver", tag = "webhooks", operation_id = "redeliver_failed_webhook_deliveries",
    params(
        ("workspace_uuid" = Uuid, Path, description = "The workspace"),
        ("webhook_uuid" = Uuid, Path, description = "The endpoint"),
    ),
    request_body = RedeliverRequest,
    responses(
        (status = 202, description = "How many were queued", body = RedeliverResponse),
        (status = 403, description = "Workspace outside the key's reach", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint in the workspace", body = ErrorEnvelope),
    )
)]
pub async fn redeliver(
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Json<RedeliverRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (_, id) = *path;
    endpoint(&state, &caller, path.into_inner()).await?;
    let redelivered = db::redeliver_failed(&state.pool, id, body.since).await?;
    Ok(HttpResponse::Accepted().json(RedeliverResponse { redelivered }))
}
