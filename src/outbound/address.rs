//! Which addresses are internal: loopback, private, link-local, unique-local, unspecified,
//! multicast, broadcast, reserved, documentation and benchmarking ranges, and the IPv6 forms
//! that carry an IPv4 address (mapped, compatible, SIIT, NAT64, 6to4) judged by that address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `ip` is not reached without `security.outbound_allow` (`"a loopback address"`), or
/// `None` for an ordinary public address.
pub fn internal(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4).map(String::from),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

fn internal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let why = match (a, b, c) {
        (0, _, _) => "an unspecified address (0.0.0.0/8 reaches this host)",
        (127, _, _) => "a loopback address",
        (10, _, _) => "a private address",
        (172, 16..=31, _) | (192, 168, _) => "a private address",
        (100, 64..=127, _) => "a shared (carrier-grade NAT) address",
        (169, 254, _) => "a link-local address (cloud metadata lives there)",
        (192, 0, 0) => "a reserved (IETF protocol) address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (198, 18..=19, _) => "a benchmarking address",
        (192, 88, 99) => "a reserved (6to4 relay) address",
        (224..=239, _, _) => "a multicast address",
        _ if ip.is_broadcast() => "a broadcast address",
        (240..=255, _, _) => "a reserved address",
        _ => return None,
    };
    Some(why)
}

fn internal_v6(ip: Ipv6Addr) -> Option<String> {
    let s = ip.segments();
    // The IPv4 address in the last 32 bits, and in bits 16..48 (6to4).
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let carried =
        |form: &str, v4: Ipv4Addr| internal_v4(v4).map(|why| format!("{why} ({form} {v4})"));
    let fixed = |why: &str| Some(why.to_string());
    if ip.is_unspecified() {
        return fixed("an unspecified address");
    }
    if ip.is_loopback() {
        return fixed("a loopback address");
    }
    match s {
        // ::ffff:a.b.c.d (mapped) and ::ffff:0:a.b.c.d (SIIT translated).
        [0, 0, 0, 0, 0, 0xffff, _, _] => return carried("IPv4-mapped", low),
        [0, 0, 0, 0, 0xffff, 0, _, _] => return carried("IPv4-translated", low),
        // ::a.b.c.d, the deprecated IPv4-compatible form.
        [0, 0, 0, 0, 0, 0, _, _] => {
            return carried("IPv4-compatible", low).or(fixed("a reserved address"));
        }
        // 64:ff9b::/96, well-known NAT64.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => return carried("NAT64", low),
        [0x64, 0xff9b, 1, ..] => return fixed("a private (local-use NAT64) address"),
        [0x2002, hi, lo, ..] => {
            let v4 = Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
            return carried("6to4", v4);
        }
        [0x2001, 0, ..] => return fixed("a Teredo tunnel address"),
        [0x2001, 0xdb8, ..] => return fixed("a documentation address"),
        [0x2001, 2, 0, ..] => return fixed("a benchmarking address"),
        [0x0100, 0, 0, 0, ..] => return fixed("a reserved (discard-only) address"),
        _ => {}
    }
    let first = s[0];
    let why = if first & 0xfe00 == 0xfc00 {
        "a unique-local (private) address"
    } else if first & 0xffc0 == 0xfe80 {
        "a link-local address"
    } else if first & 0xffc0 == 0xfec0 {
        "a site-local address"
    } else if first & 0xff00 == 0xff00 {
        "a multicast address"
    } else if first == 0x3fff && s[1] & 0xf000 == 0 {
        "a documentation address"
    } else if first & 0xe000 != 0x2000 {
        // Outside 2000::/3, the only global unicast block in use.
        "a reserved address"
    } else {
        return None;
    };
    Some(why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(ip: &str) -> Option<String> {
        internal(ip.parse().unwrap())
    }

    #[test]
    fn every_internal_ipv4_range_is_named() {
        for (ip, word) in [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("10.0.0.1", "private"),
            ("10.255.255.255", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.0.1", "private"),
            ("100.64.0.1", "carrier-grade"),
            ("100.127.255.255", "carrier-grade"),
            ("169.254.169.254", "link-local"),
            ("192.0.0.8", "reserved"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.1", "documentation"),
            ("203.0.113.1", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("192.88.99.1", "6to4"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "broadcast"),
        ] {
            let got = why(ip).unwrap_or_else(|| panic!("{ip} passed"));
            assert!(got.contains(word), "{ip}: {got}");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert_eq!(why(ip), None, "{ip}");
        }
    }

    #[test]
    fn every_internal_ipv6_range_and_carried_ipv4_is_named() {
        for (ip, word) in [
            ("::", "unspecified"),
            ("::1", "loopback"),
            (
                "::ffff:127.0.0.1",
                "loopback address (IPv4-mapped 127.0.0.1)",
            ),
            ("::ffff:7f00:1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::ffff:10.1.2.3", "private"),
            ("::ffff:0.0.0.0", "unspecified"),
            ("::ffff:0:127.0.0.1", "IPv4-translated"),
            ("::127.0.0.1", "loopback address (IPv4-compatible"),
            ("::10.0.0.1", "private"),
            ("::8.8.8.8", "reserved"),
            ("64:ff9b::127.0.0.1", "loopback address (NAT64"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("64:ff9b:1::1", "local-use NAT64"),
            ("2002:7f00:1::1", "loopback address (6to4 127.0.0.1)"),
            ("2002:c0a8:101::", "private address (6to4"),
            ("2001::1", "Teredo"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("2001:2::1", "benchmarking"),
            ("100::1", "discard"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("ff0e::1", "multicast"),
            ("4000::1", "reserved"),
            ("::2", "IPv4-compatible"),
        ] {
            let got = why(ip).unwrap_or_else(|| panic!("{ip} passed"));
            assert!(got.contains(word), "{ip}: {got}");
        }
        for ip in [
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2400:cb00::1",
            "3ffe::1",
        ] {
            assert_eq!(why(ip), None, "{ip}");
        }
    }
}
