use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: the process is up; no dependency is checked.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when Postgres and the bucket both answer, else 503 naming which
/// failed (causes go to the log only).
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
        (Ok(()), Ok(())) => {
            Ok(HttpResponse::Ok().json(json!({ "status": "ready", "checks": checks })))
        }
        _ => Err(
            ApiError::from_status(actix_web::http::StatusCode::SERVICE_UNAVAILABLE)
                .with_details(checks),
        ),
    }
}
