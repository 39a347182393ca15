//! API keys: their format, how they are checked, and the [`Caller`] extractor.
//!
//! A key reads `fg_<key id: 32 hex>_<secret: 43 base64url>`. The id finds the row by
//! primary key; the SHA-256 of the whole key is compared with the stored digest in
//! constant time. Rows are cached per process for `--auth-cache-ttl-secs`, which is
//! therefore the longest a revoked key keeps working; ids with no row are cached as
//! unknown for as long, so a new key works at most that long after a client first
//! tried it too early. Looking up an id this process has never seen valid costs the
//! client's IP a token first (see the rate-limit middleware), so random keys cannot
//! reach the database faster than the IP bucket admits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use filegate_db::keys::ApiKey;
use futures_util::future::LocalBoxFuture;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

const PREFIX: &str = "fg_";
const SECRET_BYTES: usize = 32;
/// `fg_` + 32 hex + `_` + 43 base64url characters.
const KEY_LEN: usize = 3 + 32 + 1 + 43;
/// Entries kept before stale ones are swept; the cache never grows past this.
const CACHE_CAPACITY: usize = 10_000;

/// A newly minted key: the id to store and revoke by, the secret to hand out once,
/// and the digest to store.
#[derive(Debug)]
pub struct MintedKey {
    pub id: Uuid,
    pub secret: String,
    pub sha256: [u8; 32],
}

/// Mints a key from the operating system's randomness.
///
/// # Errors
/// When the system has no randomness to give.
pub fn mint() -> Result<MintedKey, getrandom::Error> {
    let mut raw = [0u8; SECRET_BYTES];
    getrandom::fill(&mut raw)?;
    let id = Uuid::now_v7();
    let secret = format!("{PREFIX}{}_{}", id.simple(), URL_SAFE_NO_PAD.encode(raw));
    let sha256 = digest(&secret);
    Ok(MintedKey { id, secret, sha256 })
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The key id a well-formed key names, or `None` for anything malformed.
fn parse_id(key: &str) -> Option<Uuid> {
    if key.len() != KEY_LEN || !key.starts_with(PREFIX) {
        return None;
    }
    let (id, secret) = key[PREFIX.len()..].split_once('_')?;
    if id.len() != 32 || secret.len() != 43 {
        return None;
    }
    Uuid::try_parse(id).ok()
}

/// Who is calling: an authenticated, unrevoked key and what it may reach.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: Uuid,
    pub organization_id: Uuid,
    /// `None`: every workspace of the organization.
    pub workspace_scope: Option<Arc<[Uuid]>>,
    pub default_workspace: Option<Uuid>,
    /// The rate-limit override of the key's default workspace.
    pub rate_limit: Option<crate::ratelimit::Quota>,
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

/// When an id was looked up, and its row (`None`: the database had no such key).
type Entry = (Instant, Option<Arc<ApiKey>>);

/// Key rows (and ids with no row) cached per process; see the module docs for the
/// bounds this puts on revocation and on new keys.
#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<Uuid, Entry>>,
}

/// What the cache knows of a key id, without asking the database.
#[derive(Debug)]
pub enum Cached {
    /// A row younger than the TTL.
    Fresh(Arc<ApiKey>),
    /// A row older than the TTL: the id was valid, so refreshing it is not a guess.
    Stale,
    /// No such key, as of less than a TTL ago.
    Unknown,
    /// Never seen (or forgotten).
    Miss,
}

impl KeyCache {
    #[must_use]
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// What is known of `id`.
    pub fn get(&self, id: Uuid) -> Cached {
        let Ok(entries) = self.entries.lock() else {
            return Cached::Miss;
        };
        match entries.get(&id) {
            Some((at, Some(key))) if at.elapsed() < self.ttl => Cached::Fresh(Arc::clone(key)),
            Some((_, Some(_))) => Cached::Stale,
            Some((at, None)) if at.elapsed() < self.ttl => Cached::Unknown,
            _ => Cached::Miss,
        }
    }

    fn put(&self, id: Uuid, key: Option<Arc<ApiKey>>) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= CACHE_CAPACITY {
            // Unknown ids go first, then anything past its TTL; valid rows are what
            // let known keys skip the IP bucket.
            let ttl = self.ttl;
            entries.retain(|_, (at, key)| key.is_some() && at.elapsed() < ttl * 4);
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(id, (Instant::now(), key));
    }
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
    let Some(id) = parse_id(key) else {
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
    crate::metrics::get()
        .key_lookups
        .with_label_values(&[if found.is_some() { "found" } else { "unknown" }])
        .inc();
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
    let matches: bool = digest(key).ct_eq(row.secret_sha256.as_slice()).into();
    if !matches || row.revoked_at.is_some() {
        return Err(invalid());
    }
    Ok(Caller {
        key_id: row.id,
        organization_id: row.organization_id,
        workspace_scope: row.workspace_scope.as_deref().map(Arc::from),
        default_workspace: row.default_workspace_id,
        rate_limit: row.rate_limit.and_then(|(per_second, burst)| {
            Some(crate::ratelimit::Quota {
                per_second,
                burst: u32::try_from(burst).ok()?,
            })
        }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_parse_back_to_their_id() {
        let key = mint().ok();
        let key = key.as_ref();
        assert_eq!(key.map(|k| k.secret.len()), Some(KEY_LEN));
        assert_eq!(key.and_then(|k| parse_id(&k.secret)), key.map(|k| k.id));
        assert_eq!(key.map(|k| digest(&k.secret)), key.map(|k| k.sha256));
    }

    #[test]
    fn malformed_keys_have_no_id() {
        let good = mint().map(|k| k.secret).unwrap_or_default();
        assert!(parse_id(&good[1..]).is_none());
        assert!(parse_id(&format!("{good}x")).is_none());
        assert!(parse_id(&good.replacen("fg_", "xx_", 1)).is_none());
        assert!(parse_id("").is_none());
        let not_hex = format!("fg_{}_{}", "z".repeat(32), "a".repeat(43));
        assert!(parse_id(&not_hex).is_none());
    }
}
