//! IP address ranges, as `--trusted-proxies` names them.

use std::net::IpAddr;
use std::str::FromStr;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
