//! Who the client is. The connection loop ([`super::server`]) sets [`ClientIp`] on every
//! request: the TCP peer's address, or, when the peer is one of `http.trusted_proxies`, the
//! right-most `X-Forwarded-For` entry that is not a trusted proxy (what the last trusted proxy
//! saw; the entries left of it are the client's own word). The header is read as bytes: an entry
//! that is not an address ends the walk at the nearest trusted hop, except one that is not
//! ASCII (unreadable): then the client is [`UNREADABLE_CLIENT`], never the proxy, so that
//! such requests share one throttle bucket instead of the proxy's. Login throttling, the audit log's
//! "from where" and the logs all take this one address; the per-address connection cap counts
//! TCP peers ([`cap_key`]), and does not cap trusted proxies.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// The client's address of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The header proxies add the address they were called from to.
const FORWARDED_FOR: &str = "x-forwarded-for";

/// The client of a request whose trusted proxy forwarded an `X-Forwarded-For` entry that is
/// not ASCII: the unspecified address, one bucket for all such requests, never the proxy's.
pub const UNREADABLE_CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

/// The client of a request from `peer` with `headers`, believing `X-Forwarded-For` only from a
/// peer in `trusted`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Bytes, not text: a header line a proxy merged with the client's non-UTF-8 one still
    // holds the proxy's own entries.
    let entries: Vec<&[u8]> = headers
        .get_all(FORWARDED_FOR)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        let Some(text) = std::str::from_utf8(entry).ok().filter(|t| t.is_ascii()) else {
            // Unreadable: not the trusted hop (so not the proxy) either.
            return UNREADABLE_CLIENT;
        };
        // An entry that is not an address: the nearest trusted hop is the best known.
        let Some(ip) = parse_entry(text) else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// An `X-Forwarded-For` entry: an address, with a port or (IPv6) in brackets.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')?
                .strip_suffix(']')?
                .parse::<Ipv6Addr>()
                .ok()
                .map(IpAddr::V6)
        })?;
    Some(ip.to_canonical())
}

/// What the per-address connection cap counts: an IPv4 address, or an IPv6 /64 (one host
/// usually holds a whole /64).
pub fn cap_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append(FORWARDED_FOR, v.parse().unwrap());
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ignores_the_header_from_an_untrusted_peer() {
        let h = headers(&["1.2.3.4"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &[]), ip("10.0.0.5"));
        let trusted = nets(&["127.0.0.1/32"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("10.0.0.5"));
    }

    #[test]
    fn takes_the_right_most_untrusted_entry() {
        let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
        // The client claims 6.6.6.6; the proxies saw 1.2.3.4, then 10.1.1.1.
        let h = headers(&["6.6.6.6, 1.2.3.4", "10.1.1.1"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("1.2.3.4"));
        let h = headers(&["[2001:db8::1]:443", "1.2.3.4:5555"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("1.2.3.4"));
        let h = headers(&["2001:db8::1"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("2001:db8::1"));
    }

    #[test]
    fn falls_back_to_the_nearest_trusted_hop() {
        let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
        let h = headers(&["unknown, 10.2.2.2"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("10.2.2.2"));
        assert_eq!(
            client_ip(ip("127.0.0.1"), &headers(&[]), &trusted),
            ip("127.0.0.1")
        );
        let mapped = ip("::ffff:127.0.0.1");
        let h = headers(&["1.2.3.4"]);
        assert_eq!(client_ip(mapped, &h, &trusted), ip("1.2.3.4"));
    }

    fn raw(lines: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in lines {
            h.append(
                FORWARDED_FOR,
                axum::http::HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn reads_a_line_with_non_utf8_bytes() {
        let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
        let proxy = ip("127.0.0.1");
        // The proxy merged the client's line with its own entry: its entry counts.
        let h = raw(&[b"\xff\xfe, 1.2.3.4"]);
        assert_eq!(client_ip(proxy, &h, &trusted), ip("1.2.3.4"));
        let h = raw(&[b"6.6.6.6 , \xc3\xa9,10.1.1.1 ,\t1.2.3.4\t"]);
        assert_eq!(client_ip(proxy, &h, &trusted), ip("1.2.3.4"));
        // Non-UTF-8 bytes in an ignored header from an untrusted peer change nothing.
        let h = raw(&[b"\xff"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &[]), ip("10.0.0.5"));
    }

    #[test]
    fn an_unreadable_entry_is_never_the_proxy() {
        let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
        let proxy = ip("127.0.0.1");
        for line in [
            &b"\xff"[..],
            b"1.2.3.4, \xff",
            b"\xff, 10.2.2.2",
            b"1.2.3.4, \xef\xbc\x91.2.3.4",
        ] {
            let got = client_ip(proxy, &raw(&[line]), &trusted);
            assert_eq!(got, UNREADABLE_CLIENT, "{line:?}");
            assert!(!trusted.iter().any(|n| n.contains(&got)), "{line:?}");
        }
        // In a second line, to the right of the proxy's entry, too.
        let h = raw(&[b"1.2.3.4", b"\xff"]);
        assert_eq!(client_ip(proxy, &h, &trusted), UNREADABLE_CLIENT);
        // Left of the first untrusted entry it is never reached.
        let h = raw(&[b"\xff", b"1.2.3.4"]);
        assert_eq!(client_ip(proxy, &h, &trusted), ip("1.2.3.4"));
    }

    #[test]
    fn caps_ipv6_per_64() {
        assert_eq!(cap_key(ip("2001:db8:1:2::7")), ip("2001:db8:1:2::"));
        assert_eq!(cap_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }
}
