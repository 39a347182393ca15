//! Which URLs an import may fetch, and which addresses it may connect to: the SSRF
//! guard. A URL must be `http` or `https`, name a host, and carry no credentials; the
//! addresses its host resolves to (or the address it names) must all be public unicast
//! ones: no loopback, private, link-local (cloud metadata included), carrier-grade NAT,
//! multicast, unspecified, broadcast, reserved or documentation address, in IPv4, IPv6
//! or IPv4 embedded in IPv6 (mapped, compatible, NAT64, 6to4). Hosts an operator names
//! in `FILEGATE_IMPORT_ALLOWED_HOSTS` are exempt from the address rules (never from the
//! scheme and credential rules).
//!
//! The address rules are a table of ranges written here rather than a crate's: the
//! standard library's `is_global` is not stable, and the table is short enough to read
//! and test whole.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// The longest URL filegate fetches or posts to.
pub const MAX_URL_BYTES: usize = 2048;

/// Why an import URL or address was refused (the sentence the client is told).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

fn refuse(why: impl Into<String>) -> Refusal {
    Refusal(why.into())
}

/// A host an operator allowed (`host` or `host:port`), compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    pub host: String,
    pub port: Option<u16>,
}

impl AllowedHost {
    /// Parses `host` or `host:port` (an IPv6 address in brackets).
    ///
    /// # Errors
    /// A message when it is neither.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{raw:?}: an IPv6 host needs its closing bracket"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(format!("{raw:?} is not host[:port]")),
            };
            (host.to_owned(), port)
        } else {
            match raw.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), Some(port)),
                None => (raw.to_owned(), None),
            }
        };
        if host.is_empty() || host.contains(['/', '@', ' ', '?', '#']) {
            return Err(format!("{raw:?} is not host[:port]"));
        }
        let port = port
            .map(|p| p.parse::<u16>().map_err(|_| format!("{raw:?}: bad port")))
            .transpose()?;
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// The guard's settings.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub allowed: Vec<AllowedHost>,
}

/// What the URL checks concluded about a URL's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An allowed host: connect to whatever it resolves to.
    Allowed,
    /// A public address the URL names.
    Address(IpAddr),
    /// A name: resolve it, and connect only to public addresses.
    Name(String),
}

impl Policy {
    /// Whether `host` (as a URL names it) on `port` is one the operator allowed.
    #[must_use]
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.allowed
            .iter()
            .any(|a| a.host.eq_ignore_ascii_case(host) && a.port.is_none_or(|p| p == port))
    }

    /// Whether a name the resolver is asked for is an allowed host (on any port: the
    /// URL check held the port to the rule).
    #[must_use]
    pub fn allows_name(&self, name: &str) -> bool {
        self.allowed
            .iter()
            .any(|a| a.host.eq_ignore_ascii_case(name))
    }

    /// Parses `raw` as a URL of at most [`MAX_URL_BYTES`] and checks it by
    /// [`Self::check_url`]; `what` names it in the refusal (`remote_uri`, `the URL`).
    ///
    /// # Errors
    /// The [`Refusal`] saying why not.
    pub fn parse(&self, raw: &str, what: &str) -> Result<(reqwest::Url, Host), Refusal> {
        if raw.len() > MAX_URL_BYTES {
            return Err(refuse(format!(
                "{what} is longer than {MAX_URL_BYTES} bytes"
            )));
        }
        let url =
            reqwest::Url::parse(raw).map_err(|e| refuse(format!("{what} is not a URL: {e}")))?;
        let host = self.check_url(&url)?;
        Ok((url, host))
    }

    /// [`Self::parse`], and for a name, every address it resolves to: what a URL must
    /// pass before anything is saved for it (the client's resolver checks again when
    /// it connects).
    ///
    /// # Errors
    /// The [`Refusal`] saying why not.
    pub async fn check(&self, raw: &str, what: &str) -> Result<reqwest::Url, Refusal> {
        let (url, host) = self.parse(raw, what)?;
        if let Host::Name(name) = host {
            resolve_checked(self, &name).await?;
        }
        Ok(url)
    }

    /// Checks a URL an import would fetch (or be redirected to).
    ///
    /// # Errors
    /// The [`Refusal`] saying why not.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<Host, Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refuse(format!(
                "only http and https URIs are imported, not {}:",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse(
                "an import URI must not carry credentials (user:password@)",
            ));
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| refuse("the URI names no port"))?;
        let host = match url.host() {
            None => return Err(refuse("the URI names no host")),
            Some(url::Host::Domain(name)) => {
                if self.allows(name, port) {
                    return Ok(Host::Allowed);
                }
                // A name that is an address in another spelling is read as the address.
                match name.parse::<IpAddr>() {
                    Ok(ip) => Host::Address(ip),
                    Err(_) => Host::Name(name.to_ascii_lowercase()),
                }
            }
            Some(url::Host::Ipv4(ip)) => Host::Address(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Host::Address(IpAddr::V6(ip)),
        };
        if let Host::Address(ip) = host {
            if self.allows(&ip.to_string(), port) {
                return Ok(Host::Allowed);
            }
            check_address(ip)?;
        }
        Ok(host)
    }
}

/// Refuses an address that is not public unicast.
///
/// # Errors
/// The [`Refusal`] naming the kind of address.
pub fn check_address(ip: IpAddr) -> Result<(), Refusal> {
    match forbidden(ip) {
        Some(kind) => Err(refuse(format!(
            "the URI leads to a {kind} address ({ip}), which imports may not reach"
        ))),
        None => Ok(()),
    }
}

/// The kind of a non-public address, or `None` for a public unicast one.
#[must_use]
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

/// IPv4 ranges no import may reach, with what each is.
const V4: &[([u8; 4], u32, &str)] = &[
    ([0, 0, 0, 0], 8, "\"this network\""),
    ([10, 0, 0, 0], 8, "private"),
    ([100, 64, 0, 0], 10, "carrier-grade NAT"),
    ([127, 0, 0, 0], 8, "loopback"),
    ([169, 254, 0, 0], 16, "link-local (cloud metadata)"),
    ([172, 16, 0, 0], 12, "private"),
    ([192, 0, 0, 0], 24, "IETF protocol assignment"),
    ([192, 0, 2, 0], 24, "documentation"),
    ([192, 88, 99, 0], 24, "6to4 relay"),
    ([192, 168, 0, 0], 16, "private"),
    ([198, 18, 0, 0], 15, "benchmarking"),
    ([198, 51, 100, 0], 24, "documentation"),
    ([203, 0, 113, 0], 24, "documentation"),
    ([224, 0, 0, 0], 4, "multicast"),
    ([240, 0, 0, 0], 4, "reserved"),
];

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    if ip == Ipv4Addr::BROADCAST {
        return Some("broadcast");
    }
    V4.iter()
        .find(|(net, bits, _)| in_v4(ip, *net, *bits))
        .map(|(_, _, kind)| *kind)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64
    // (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::) are judged by the IPv4 address.
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if s[..6] == [0, 0, 0, 0, 0, 0xffff] {
        return forbidden_v4(embedded(s[6], s[7]));
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] {
        return Some("IPv4-compatible (deprecated)");
    }
    if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return forbidden_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return forbidden_v4(embedded(s[1], s[2]));
    }
    let first = s[0];
    if first & 0xff00 == 0xff00 {
        return Some("multicast");
    }
    if first & 0xfe00 == 0xfc00 {
        return Some("unique local (private)");
    }
    if first & 0xffc0 == 0xfe80 {
        return Some("link-local");
    }
    if first & 0xffc0 == 0xfec0 {
        return Some("site-local");
    }
    if first == 0x2001 && s[1] == 0x0db8 {
        return Some("documentation");
    }
    if first == 0x0100 && s[1..4] == [0, 0, 0] {
        return Some("discard-only");
    }
    // Anything outside global unicast (2000::/3) is reserved.
    if first & 0xe000 != 0x2000 {
        return Some("reserved");
    }
    None
}

/// Resolves `name` and refuses it unless every address is public (or it is allowed).
///
/// # Errors
/// The [`Refusal`] when it does not resolve or an address is not public.
pub async fn resolve_checked(policy: &Policy, name: &str) -> Result<Vec<SocketAddr>, Refusal> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, 0))
        .await
        .map_err(|e| Refusal(format!("the URI's host {name:?} does not resolve: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(Refusal(format!("the URI's host {name:?} has no address")));
    }
    if !policy.allows_name(name) {
        for a in &addrs {
            check_address(a.ip())?;
        }
    }
    Ok(addrs)
}

/// An HTTP client's resolver: the addresses it returns, which the client connects to,
/// are the ones it checked, so a name cannot be re-resolved elsewhere in between.
#[derive(Debug)]
pub struct GuardedResolver {
    policy: Arc<Policy>,
}

impl GuardedResolver {
    /// A resolver bound to `policy`.
    #[must_use]
    pub fn new(policy: Arc<Policy>) -> Self {
        Self { policy }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let addrs = resolve_checked(&policy, name.as_str()).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap()
    }

    #[test]
    fn every_non_public_address_is_refused_and_public_ones_pass() {
        for bad in [
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "192.0.0.192",
            "198.18.0.1",
            "192.0.2.1",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "ff02::1",
            "2001:db8::1",
            "100::1",
            "fec0::1",
            "4000::1",
        ] {
            let ip: IpAddr = bad.parse().unwrap();
            assert!(forbidden(ip).is_some(), "{bad} must be refused");
        }
        for good in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            let ip: IpAddr = good.parse().unwrap();
            assert_eq!(forbidden(ip), None, "{good} is public");
        }
    }

    #[test]
    fn urls_must_be_http_without_credentials_and_name_a_public_host() {
        let policy = Policy::default();
        for (bad, why) in [
            ("file:///etc/passwd", "only http and https"),
            ("ftp://example.com/a", "only http and https"),
            ("gopher://example.com/", "only http and https"),
            ("http://user:pw@example.com/a", "credentials"),
            ("http://user@example.com/a", "credentials"),
            ("http://127.0.0.1/a", "loopback"),
            ("http://[::1]/a", "loopback"),
            ("http://[::ffff:127.0.0.1]/a", "loopback"),
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://10.0.0.1/", "private"),
            ("http://2130706433/", "loopback"),
            ("http://0x7f.1/", "loopback"),
        ] {
            let refusal = policy.check_url(&url(bad)).err();
            assert!(
                refusal.as_ref().is_some_and(|r| r.0.contains(why)),
                "{bad}: {refusal:?}"
            );
        }
        assert_eq!(
            policy.check_url(&url("https://Example.COM/a.pdf")),
            Ok(Host::Name("example.com".into()))
        );
        assert_eq!(
            policy.check_url(&url("http://8.8.8.8:8080/a")),
            Ok(Host::Address("8.8.8.8".parse().unwrap()))
        );
    }

    #[test]
    fn allowed_hosts_are_exempt_from_the_address_rules_on_their_port_only() {
        let policy = Policy {
            allowed: vec![
                AllowedHost::parse("127.0.0.1:8081").unwrap(),
                AllowedHost::parse("files.internal").unwrap(),
                AllowedHost::parse("[::1]:9000").unwrap(),
            ],
        };
        assert_eq!(
            policy.check_url(&url("http://127.0.0.1:8081/a")),
            Ok(Host::Allowed)
        );
        assert!(policy.check_url(&url("http://127.0.0.1:8082/a")).is_err());
        assert_eq!(
            policy.check_url(&url("http://FILES.internal:1234/a")),
            Ok(Host::Allowed)
        );
        assert_eq!(
            policy.check_url(&url("http://[::1]:9000/a")),
            Ok(Host::Allowed)
        );
        assert!(policy.allows_name("files.internal") && !policy.allows_name("other"));
        // Credentials and schemes are never allowed.
        assert!(
            policy
                .check_url(&url("http://u:p@127.0.0.1:8081/"))
                .is_err()
        );
        assert!(AllowedHost::parse("a/b").is_err());
        assert!(AllowedHost::parse("host:notaport").is_err());
        assert!(AllowedHost::parse("[::1").is_err());
    }
}
