//! The [`Limiter`]: where buckets live, and one check against it.

use std::time::Instant;

use filegate_db::Pool;

use super::bucket::{BucketKey, Decision, Quota};
use super::local::LocalStore;

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
    pub async fn check(&self, key: BucketKey, quota: Quota) -> Option<Decision> {
        let key = key.to_string();
        let key = key.as_str();
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
