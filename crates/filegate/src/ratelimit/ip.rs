//! The client's address: the socket peer, or `X-Forwarded-For` when (and only when)
//! the peer is a configured trusted proxy.

use std::net::IpAddr;
use std::str::FromStr;

use actix_web::HttpRequest;

/// An address range in CIDR notation (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("bad prefix in {s:?}"))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

impl IpNet {
    /// True when `ip` is inside this range (IPv4-mapped IPv6 addresses count as IPv4).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The client address. `X-Forwarded-For` is read right to left, skipping trusted
/// proxies; the first address that is not one is the client. A peer that is not
/// trusted is the client, whatever the header says.
#[must_use]
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let hops: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    Some(
        hops.iter()
            .rev()
            .copied()
            .find(|ip| !is_trusted(*ip))
            .or_else(|| hops.first().copied())
            .unwrap_or(peer),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().filter_map(|n| n.parse().ok()).collect()
    }

    #[test]
    fn ranges_contain_what_they_should() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap_or(IpNet {
            addr: IpAddr::from([0, 0, 0, 0]),
            prefix: 32,
        });
        assert!(net.contains("10.1.200.3".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))));
        assert!(!net.contains("10.2.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))));
        assert!(
            "::ffff:10.1.0.9".parse().is_ok_and(|ip| net.contains(ip)),
            "mapped IPv4"
        );
        assert!(
            "0.0.0.0/0"
                .parse::<IpNet>()
                .is_ok_and(|n| n.contains(IpAddr::from([8, 8, 8, 8])))
        );
        assert!(
            "fd00::/8"
                .parse::<IpNet>()
                .is_ok_and(|n| "fd12::1".parse().is_ok_and(|ip| n.contains(ip)))
        );
        for bad in ["10.0.0.0/33", "nope", "::/129"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_read_only_from_trusted_proxies() {
        let req =
            |peer: &str| {
                TestRequest::default()
                    .peer_addr(format!("{peer}:5000").parse().unwrap_or_else(|_| {
                        "127.0.0.1:1".parse().unwrap_or_else(|_| unreachable!())
                    }))
                    .insert_header(("X-Forwarded-For", "1.2.3.4, 10.0.0.7"))
                    .to_http_request()
            };
        let trusted = nets(&["10.0.0.0/8"]);
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        // The peer and the last hop are proxies: the client is the hop before.
        assert_eq!(client_ip(&req("10.0.0.2"), &trusted), ip("1.2.3.4"));
        // An untrusted peer is the client; its header is ignored.
        assert_eq!(client_ip(&req("5.6.7.8"), &trusted), ip("5.6.7.8"));
        assert_eq!(client_ip(&req("10.0.0.2"), &[]), ip("10.0.0.2"));
    }
}
