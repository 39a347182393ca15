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
    /// A client address that sent an S3 event delivery without the events secret:
    /// a bucket of its own, so such deliveries and failed API keys never drain each
    /// other's.
    EventsIp(Option<IpAddr>),
    /// An API key's own bucket (its default workspace's).
    Key(Uuid),
    /// An API key's bucket for another workspace it addresses.
    KeyInWorkspace { key: Uuid, workspace: Uuid },
}

impl fmt::Display for BucketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(Some(ip)) => write!(f, "ip:{}", Network(*ip)),
            Self::Ip(None) => f.write_str("ip:unknown"),
            Self::EventsIp(Some(ip)) => write!(f, "events-ip:{}", Network(*ip)),
            Self::EventsIp(None) => f.write_str("events-ip:unknown"),
            Self::Key(key) => write!(f, "k:{key}"),
            Self::KeyInWorkspace { key, workspace } => write!(f, "k:{key}:{workspace}"),
        }
    }
}

/// The network a client address stands for: an IPv4 address itself, an IPv6 address
/// its /64 (one subscriber's prefix: a client holds every address in it, and would
/// otherwise get a bucket per address).
struct Network(IpAddr);

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => write!(f, "{v4}"),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    write!(f, "{}/64", std::net::Ipv6Addr::from(prefix))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_a_bucket_per_64_and_mapped_ipv4_is_ipv4() {
        let key = |s: &str| BucketKey::Ip(s.parse().ok()).to_string();
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_eq!(key("2001:db8:1:2::1"), "ip:2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
        assert_ne!(
            BucketKey::EventsIp("192.0.2.7".parse().ok()).to_string(),
            key("192.0.2.7")
        );
    }

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
