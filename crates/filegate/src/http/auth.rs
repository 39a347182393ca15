//! Who is calling: the key a request presents, checked against the key cache or the
//! database ([`crate::service::keys`]), and the [`Caller`] extractor. Looking up an id
//! this process has never seen valid costs the client's IP a token first (see the
//! rate-limit middleware), so random keys cannot reach the database faster than the IP
//! bucket admits.

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use filegate_db::keys::ApiKey;
use futures_util::future::LocalBoxFuture;
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::http::ratelimit::bucket::Quota;
use crate::http::state::AppState;
use crate::metrics::{self, KeyLookup};
use crate::service::keys::{self, Cached};

/// Who is calling: an authenticated, unrevoked key and what it may reach.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: Uuid,
    pub organization_id: Uuid,
    /// `None`: every workspace of the organization.
    pub workspace_scope: Option<Arc<[Uuid]>>,
    pub default_workspace: Option<Uuid>,
    /// The rate-limit override of the key's default workspace.
    pub rate_limit: Option<Quota>,
    /// Another workspace of the organization has an override of its own (as of the
    /// key's cached row): only then does the workspace a request addresses matter to
    /// the limiter.
    pub overrides_elsewhere: bool,
}

impl Caller {
    /// True when the key's scope admits the workspace (its organization is checked
    /// against the workspace row by the caller).
    #[must_use]
    pub fn scope_admits(&self, workspace: Uuid) -> bool {
        self.workspace_scope
            .as_ref()
            .is_none_or(|s| s.contains(&workspace))
    }

    /// The workspace a request means: the one it names, else the key's default.
    ///
    /// # Errors
    /// 403 when the named workspace is outside the key's scope; 400 when none is named
    /// and the key has no default.
    pub fn target_workspace(&self, named: Option<Uuid>) -> Result<Uuid, ApiError> {
        match named.or(self.default_workspace) {
            Some(ws) if self.scope_admits(ws) => Ok(ws),
            Some(_) => Err(forbidden_workspace()),
            None => Err(ApiError::invalid_request(
                "workspace_uuid is required: this API key has no default workspace",
            )),
        }
    }

    /// True when `organization` is the key's: the check every workspace row a request
    /// reaches must pass.
    #[must_use]
    pub fn owns(&self, organization: Uuid) -> bool {
        organization == self.organization_id
    }

    /// The workspace a request means ([`Self::target_workspace`]), read from the
    /// database, when the key may reach it.
    ///
    /// # Errors
    /// As [`Self::target_workspace`]; 403 for a workspace of another organization or
    /// none at all (the same answer, so ids cannot be probed); 503 without Postgres.
    pub async fn reach_workspace(
        &self,
        pool: &filegate_db::Pool,
        named: Option<Uuid>,
    ) -> Result<filegate_db::workspaces::Workspace, ApiError> {
        let id = self.target_workspace(named)?;
        filegate_db::workspaces::get(pool, id)
            .await?
            .filter(|w| self.owns(w.organization_id))
            .ok_or_else(forbidden_workspace)
    }
}

/// The one answer for a workspace a key may not reach, whether or not it exists.
#[must_use]
pub fn forbidden_workspace() -> ApiError {
    ApiError::forbidden("this API key has no access to that workspace")
}

/// The key a request presents, from `Authorization: Bearer` or `X-API-Key`.
///
/// # Errors
/// 401 when neither header is there, or they are malformed or disagree.
pub fn presented_key(req: &HttpRequest) -> Result<&str, ApiError> {
    let bearer = match req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value.to_str().map_err(|_| malformed())?;
            let (scheme, token) = value.trim().split_once(' ').ok_or_else(malformed)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(malformed());
            }
            Some(token.trim())
        }
    };
    let api_key = match req.headers().get("x-api-key") {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| malformed())?.trim()),
    };
    match (bearer, api_key) {
        (Some(a), Some(b)) if a != b => Err(ApiError::unauthenticated(
            "Authorization and X-API-Key name different keys",
        )),
        (Some(k), _) | (None, Some(k)) => Ok(k),
        (None, None) => Err(ApiError::unauthenticated(
            "an API key is required: send Authorization: Bearer <key> or X-API-Key: <key>",
        )),
    }
}

fn malformed() -> ApiError {
    ApiError::unauthenticated(
        "malformed credentials: send Authorization: Bearer <key> or X-API-Key: <key>",
    )
}

fn invalid() -> ApiError {
    ApiError::unauthenticated("invalid or revoked API key")
}

/// What checking a key against the cache alone decided.
#[derive(Debug)]
pub enum CacheCheck {
    /// Decided without the database.
    Decided(Result<Caller, ApiError>),
    /// The database must be asked about this id; `known` when the id was valid before
    /// (a stale row), so the look-up is a refresh, not a guess.
    Lookup { id: Uuid, known: bool },
}

/// Checks a presented key against the cache only (no I/O).
#[must_use]
pub fn check_cached(state: &AppState, key: &str) -> CacheCheck {
    let Some(id) = keys::parse_id(key) else {
        return CacheCheck::Decided(Err(invalid()));
    };
    match state.keys.get(id) {
        Cached::Fresh(row) => CacheCheck::Decided(verify(&row, key)),
        Cached::Unknown => CacheCheck::Decided(Err(invalid())),
        Cached::Stale => CacheCheck::Lookup { id, known: true },
        Cached::Miss => CacheCheck::Lookup { id, known: false },
    }
}

/// Looks the key id up in the database (counted in `filegate_api_key_lookups_total`)
/// and remembers the answer, found or not.
///
/// # Errors
/// 401 for an unknown, wrong or revoked key; 503 when the database is down.
pub async fn lookup(state: &AppState, key: &str, id: Uuid) -> Result<Caller, ApiError> {
    let found = filegate_db::keys::find(&state.pool, id)
        .await?
        .map(Arc::new);
    metrics::key_lookup(if found.is_some() {
        KeyLookup::Found
    } else {
        KeyLookup::Unknown
    });
    state.keys.put(id, found.clone());
    let row = found.ok_or_else(invalid)?;
    verify(&row, key)
}

/// Checks a presented key against the cache or the database.
///
/// # Errors
/// 401 for a malformed, unknown, wrong or revoked key; 503 when the database is down.
pub async fn authenticate(state: &AppState, key: &str) -> Result<Caller, ApiError> {
    match check_cached(state, key) {
        CacheCheck::Decided(outcome) => outcome,
        CacheCheck::Lookup { id, .. } => lookup(state, key, id).await,
    }
}

/// The caller a key's row makes, if the presented key is that row's and not revoked.
fn verify(row: &ApiKey, key: &str) -> Result<Caller, ApiError> {
    if !keys::matches(row, key) || row.revoked_at.is_some() {
        return Err(invalid());
    }
    Ok(Caller {
        key_id: row.id,
        organization_id: row.organization_id,
        workspace_scope: row.workspace_scope.as_deref().map(Arc::from),
        default_workspace: row.default_workspace_id,
        rate_limit: row.rate_limit.and_then(|(per_second, burst)| {
            Some(Quota {
                per_second,
                burst: u32::try_from(burst).ok()?,
            })
        }),
        overrides_elsewhere: row.overrides_elsewhere,
    })
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some(caller) = req.extensions().get::<Self>() {
            let caller = caller.clone();
            return Box::pin(async move { Ok(caller) });
        }
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal("application state missing"))?
                .clone();
            let key = presented_key(&req)?.to_owned();
            let caller = authenticate(&state, &key).await?;
            tracing::Span::current().record("key_id", tracing::field::display(caller.key_id));
            req.extensions_mut().insert(caller.clone());
            Ok(caller)
        })
    }
}
