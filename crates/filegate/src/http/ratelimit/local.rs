//! The `local` store: buckets in this process, in shards behind mutexes, with a hard
//! bound on how many are kept.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::bucket::{Decision, Quota};

const SHARDS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    /// When the bucket will be full again; from then on it is the same as no bucket.
    full_at: Instant,
}

/// In-process token buckets. At most `max_buckets` are kept: when a shard is full,
/// buckets that have refilled completely are dropped first (they carry no state), then
/// the half closest to full.
#[derive(Debug)]
pub struct LocalStore {
    shards: Vec<Mutex<HashMap<String, Bucket>>>,
    per_shard: usize,
    hasher: RandomState,
}

impl LocalStore {
    #[must_use]
    pub fn new(max_buckets: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: max_buckets.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
        }
    }

    /// Takes one token from `key`'s bucket at time `now`.
    pub fn check(&self, key: &str, quota: Quota, now: Instant) -> Decision {
        let index = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        let Ok(mut shard) = self.shards[index].lock() else {
            // A poisoned shard (a panic elsewhere) must not take the API down.
            return Decision::from_tokens(true, f64::from(quota.burst), quota);
        };
        if !shard.contains_key(key) && shard.len() >= self.per_shard {
            evict(&mut shard, now, self.per_shard);
        }
        let burst = f64::from(quota.burst);
        let bucket = shard.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            updated: now,
            full_at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        let refilled = (bucket.tokens + elapsed * quota.per_second).min(burst);
        let allowed = refilled >= 1.0;
        bucket.tokens = if allowed { refilled - 1.0 } else { refilled };
        bucket.updated = now;
        bucket.full_at = now
            + Duration::from_secs_f64(((burst - bucket.tokens) / quota.per_second).clamp(0.0, 1e9));
        Decision::from_tokens(allowed, bucket.tokens, quota)
    }

    /// Buckets currently held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.len()))
            .sum()
    }

    /// True when no bucket is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn evict(shard: &mut HashMap<String, Bucket>, now: Instant, per_shard: usize) {
    shard.retain(|_, b| b.full_at > now);
    if shard.len() >= per_shard {
        let mut full_ats: Vec<Instant> = shard.values().map(|b| b.full_at).collect();
        let (_, median, _) = full_ats.select_nth_unstable(shard.len() / 2);
        let median = *median;
        shard.retain(|_, b| b.full_at > median);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Quota = Quota {
        per_second: 1.0,
        burst: 3,
    };

    #[test]
    fn a_burst_beyond_the_bucket_is_refused_and_refills_at_the_rate() {
        let store = LocalStore::new(100);
        let t0 = Instant::now();
        let allowed: Vec<bool> = (0..5).map(|_| store.check("k", Q, t0).allowed).collect();
        assert_eq!(allowed, [true, true, true, false, false]);
        let refused = store.check("k", Q, t0);
        assert_eq!(refused.retry_after_secs, 1);
        // After Retry-After, a request succeeds; a second one does not.
        let later = t0 + Duration::from_secs(refused.retry_after_secs);
        assert!(store.check("k", Q, later).allowed);
        assert!(!store.check("k", Q, later).allowed);
        // Two seconds refill two tokens.
        let two = later + Duration::from_secs(2);
        assert!(store.check("k", Q, two).allowed);
        assert!(store.check("k", Q, two).allowed);
        assert!(!store.check("k", Q, two).allowed);
    }

    #[test]
    fn keys_have_their_own_buckets() {
        let store = LocalStore::new(100);
        let t0 = Instant::now();
        for _ in 0..3 {
            store.check("a", Q, t0);
        }
        assert!(!store.check("a", Q, t0).allowed);
        assert!(store.check("b", Q, t0).allowed);
    }

    #[test]
    fn a_million_distinct_keys_stay_within_the_bound() {
        let store = LocalStore::new(10_000);
        let t0 = Instant::now();
        for i in 0..1_000_000u32 {
            store.check(
                &format!("ip:{i}"),
                Q,
                t0 + Duration::from_micros(u64::from(i)),
            );
        }
        let held = store.len();
        assert!(held <= 10_000 + SHARDS, "held {held} buckets");
        assert!(held > 1000, "recent buckets are kept ({held})");
    }

    #[test]
    fn refilled_buckets_are_evicted_first() {
        let store = LocalStore::new(SHARDS * 100);
        let t0 = Instant::now();
        // An exhausted key, then many idle ones long after: the exhausted one, still
        // refilling, survives eviction while idle full buckets go.
        for _ in 0..3 {
            store.check(
                "hot",
                Quota {
                    per_second: 0.0001,
                    burst: 3,
                },
                t0,
            );
        }
        for i in 0..5000 {
            store.check(&format!("idle{i}"), Q, t0 + Duration::from_secs(10 + i));
        }
        assert!(store.len() <= SHARDS * 100);
        // 5020 s at 0.0001/s refill half a token: still refused, so its state was kept.
        assert!(
            !store
                .check(
                    "hot",
                    Quota {
                        per_second: 0.0001,
                        burst: 3
                    },
                    t0 + Duration::from_secs(5020)
                )
                .allowed
        );
    }
}
