//! API keys: their format, minting, and the per-process cache of their rows.
//!
//! A key reads `fg_<key id: 32 hex>_<secret: 43 base64url>`. The id finds the row by
//! primary key; the SHA-256 of the whole key is compared with the stored digest in
//! constant time ([`matches`]). Rows are cached per process for
//! `--auth-cache-ttl-secs`, which is therefore the longest a revoked key keeps working;
//! ids with no row are cached as unknown for as long, so a new key works at most that
//! long after a client first tried it too early.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use filegate_db::keys::ApiKey;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

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
#[must_use]
pub fn parse_id(key: &str) -> Option<Uuid> {
    if key.len() != KEY_LEN || !key.starts_with(PREFIX) {
        return None;
    }
    let (id, secret) = key[PREFIX.len()..].split_once('_')?;
    if id.len() != 32 || secret.len() != 43 {
        return None;
    }
    Uuid::try_parse(id).ok()
}

/// True when the presented `key` is the one whose digest `row` stores (compared in
/// constant time).
#[must_use]
pub fn matches(row: &ApiKey, key: &str) -> bool {
    digest(key).ct_eq(row.secret_sha256.as_slice()).into()
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

    /// Remembers a look-up of `id` (`None`: the database has no such key).
    pub fn put(&self, id: Uuid, key: Option<Arc<ApiKey>>) {
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
