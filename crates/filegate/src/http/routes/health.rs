use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::error::{ApiError, ErrorEnvelope};
use crate::http::state::AppState;

/// Liveness.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: String,
}

/// Readiness and the state of each dependency.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    status: String,
    /// `ok` or `unavailable` per dependency (`database`, `object_store`).
    #[schema(value_type = Object)]
    checks: serde_json::Value,
    /// What the start-up probe found the store to do, per capability (`yes`, `no`,
    /// `skipped`, `unknown`; see `filegate doctor`); `null` when the probe is off.
    #[schema(value_type = Option<Object>)]
    store_capabilities: Option<serde_json::Value>,
}

/// The process is up; no dependency is checked.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "Up", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
    })
}

/// 200 when Postgres and the bucket both answer, else 503 naming which failed (causes
/// go to the log only).
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A dependency is unreachable; `details` names it", body = ErrorEnvelope),
    ))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (db, store) = tokio::join!(filegate_db::ping(&state.pool), state.storage.check());
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let checks = json!({ "database": word(db.is_ok()), "object_store": word(store.is_ok()) });
    if let Err(e) = &db {
        tracing::warn!(error = %e, cause = ?std::error::Error::source(e).map(ToString::to_string), "readiness: database");
    }
    if let Err(e) = &store {
        tracing::warn!(error = %e, cause = ?std::error::Error::source(e).map(ToString::to_string), "readiness: object store");
    }
    match (db, store) {
        (Ok(()), Ok(())) => Ok(HttpResponse::Ok().json(Readiness {
            status: "ready".into(),
            checks,
            store_capabilities: state
                .store_report
                .as_ref()
                .map(crate::service::trust::summary),
        })),
        _ => Err(
            ApiError::from_status(actix_web::http::StatusCode::SERVICE_UNAVAILABLE)
                .with_details(checks),
        ),
    }
}
