//! The client's address: the socket peer, or `X-Forwarded-For` when (and only when)
//! the peer is a configured trusted proxy.

use std::net::IpAddr;

use actix_web::HttpRequest;

use crate::net::IpNet;

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
