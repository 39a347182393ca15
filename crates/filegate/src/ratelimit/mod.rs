//! Token-bucket rate limiting in front of every `/v2` route.
//!
//! Requests are keyed by API key once authenticated, and by client IP when they fail or
//! lack authentication, so key guessing is throttled too. Buckets live in one of two
//! stores: `local` (in-process; each replica limits on its own) or `postgres` (one row
//! per bucket, one atomic statement per check; every replica shares one limit).

mod ip;
mod local;
mod middleware;
mod scopes;
mod target;

use std::time::Instant;

use filegate_db::Pool;

pub use ip::{IpNet, client_ip};
pub use local::LocalStore;
pub use middleware::authenticate_and_limit;
pub use scopes::Scopes;
pub use target::{Addressed, addressed, workspace_in_body};

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

/// Where buckets live.
#[derive(Debug)]
pub enum Limiter {
    /// No limiting and no headers.
    Off,
    Local(LocalStore),
    Postgres(Pool),
}

impl Limiter {
    /// Takes one token from `key`'s bucket.
    pub async fn check(&self, key: &str, quota: Quota) -> Option<Decision> {
        match self {
            Self::Off => None,
            Self::Local(store) => Some(store.check(key, quota, Instant::now())),
            Self::Postgres(pool) => {
                match filegate_db::ratelimit::take(
                    pool,
                    key,
                    quota.per_second,
                    f64::from(quota.burst),
                )
                .await
                {
                    Ok(state) => Some(Decision::from_tokens(state.allowed, state.tokens, quota)),
                    Err(e) => {
                        // Every /v2 route needs Postgres anyway: admit, and let the route answer 503.
                        tracing::warn!(error = %e, "rate-limit store unavailable; admitting");
                        None
                    }
                }
            }
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
