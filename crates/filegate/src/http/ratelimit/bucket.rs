//! A token bucket: whose it is ([`BucketKey`]), its size and rate ([`Quota`]), and
//! what one check of it decides ([`Decision`]).

use std::fmt;
use std::net::IpAddr;

use uuid::Uuid;

/// A bucket's refill rate and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub per_second: f64,
    pub burst: u32,
}

/// The outcome of one check, and what the `RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// `RateLimit-Limit`: the bucket size.
    pub limit: u32,
    /// `RateLimit-Remaining`: whole tokens left.
    pub remaining: u32,
    /// `RateLimit-Reset`: whole seconds until the bucket is full again.
    pub reset_secs: u64,
    /// `Retry-After` when refused: whole seconds (≥ 1) until a token is there.
    pub retry_after_secs: u64,
}

impl Decision {
    /// The decision for a bucket holding `tokens` after the check.
    #[must_use]
    pub fn from_tokens(allowed: bool, tokens: f64, quota: Quota) -> Self {
        let tokens = tokens.max(0.0);
        let burst = f64::from(quota.burst);
        let secs = |t: f64| (t / quota.per_second).ceil().max(0.0);
        // Whole tokens and whole seconds: the casts truncate values already floored or ceiled.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Self {
            allowed,
            limit: quota.burst,
            remaining: tokens.floor().min(burst) as u32,
            reset_secs: secs(burst - tokens) as u64,
            retry_after_secs: (secs(1.0 - tokens) as u64).max(1),
        }
    }
}

/// Whose bucket a request draws from. Its text (`ip:…`, `k:…`, `k:…:…`) is the key of
/// the bucket in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketKey {
    /// A client address (`None`: the peer's address is unknown): requests that failed
    /// authentication.
    Ip(Option<IpAddr>),
    /// An API key's own bucket (its default workspace's).
    Key(Uuid),
    /// An API key's bucket for another workspace it addresses.
    KeyInWorkspace { key: Uuid, workspace: Uuid },
}

impl fmt::Display for BucketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(Some(ip)) => write!(f, "ip:{ip}"),
            Self::Ip(None) => f.write_str("ip:unknown"),
            Self::Key(key) => write!(f, "k:{key}"),
            Self::KeyInWorkspace { key, workspace } => write!(f, "k:{key}:{workspace}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Quota = Quota {
        per_second: 2.0,
        burst: 10,
    };

    #[test]
    fn headers_round_the_right_way() {
        let d = Decision::from_tokens(true, 4.5, Q);
        assert_eq!((d.limit, d.remaining, d.reset_secs), (10, 4, 3));
        let refused = Decision::from_tokens(false, 0.25, Q);
        assert_eq!(
            refused.retry_after_secs, 1,
            "0.75 tokens at 2/s is 0.375 s, rounded up"
        );
        let slow = Decision::from_tokens(
            false,
            0.0,
            Quota {
                per_second: 0.1,
                burst: 1,
            },
        );
        assert_eq!(slow.retry_after_secs, 10);
    }
}
