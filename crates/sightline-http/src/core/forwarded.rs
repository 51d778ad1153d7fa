//! The client behind trusted proxies: `Forwarded` (RFC 7239) or `X-Forwarded-For`, believed
//! only when the connection comes from a proxy the operator trusts, and then only as far back
//! as the chain of trusted proxies goes.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

/// The proxies whose forwarding headers are believed. Empty: none are (the default).
#[derive(Clone, Debug, Default)]
pub(crate) struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Nobody trusted.
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    pub(crate) const NONE: Self = Self(Vec::new());

    pub(crate) fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address when `peer` (the connection's) is a trusted proxy and the headers
    /// name one: the rightmost hop that is not itself a trusted proxy. `None` otherwise, and
    /// for a chain with a hop that is not an address (`unknown`, an obfuscated name, garbage),
    /// whose origin cannot be told.
    pub(crate) fn client(&self, peer: IpAddr, headers: &HeaderMap) -> Option<IpAddr> {
        if self.is_empty() || !self.trusts(peer) {
            return None;
        }
        let hops = hops(headers)?;
        let mut client = None;
        for hop in hops.iter().rev() {
            let ip = (*hop)?;
            client = Some(ip);
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// An IPv4-mapped IPv6 address as IPv4, so `::ffff:10.0.0.1` matches `10.0.0.0/8`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The hops, leftmost (the original client) first: from `Forwarded` when present, else from
/// `X-Forwarded-For`; each an address or `None` when the hop is not one. `None` without
/// either header, or when a header is not text.
fn hops(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let forwarded = headers.get_all(http::header::FORWARDED);
    if forwarded.iter().next().is_some() {
        let mut hops = Vec::new();
        for value in forwarded {
            for element in value.to_str().ok()?.split(',') {
                // An element without `for=` says nothing about the client: skip it.
                if let Some(node) = element.split(';').find_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("for")
                        .then_some(value.trim())
                }) {
                    hops.push(forwarded_node(node));
                }
            }
        }
        return (!hops.is_empty()).then_some(hops);
    }
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        for hop in value.to_str().ok()?.split(',') {
            hops.push(bare_address(hop.trim()));
        }
    }
    (!hops.is_empty()).then_some(hops)
}

/// A `Forwarded` node: `192.0.2.60`, `"192.0.2.60:8080"`, `"[2001:db8::1]:4711"`.
fn forwarded_node(node: &str) -> Option<IpAddr> {
    let node = node
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(node);
    if let Some(rest) = node.strip_prefix('[') {
        let (ip, _port) = rest.split_once(']')?;
        return ip.parse().ok().map(canonical);
    }
    let host = match node.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => node,
    };
    host.parse().ok().map(canonical)
}

/// An `X-Forwarded-For` hop: an address, possibly with a port (`10.0.0.1:1234`, `[::1]:80`).
fn bare_address(hop: &str) -> Option<IpAddr> {
    hop.parse()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().expect("a network")).collect())
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("a header value"));
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn only_trusted_peers_are_believed_and_only_as_far_as_the_trusted_chain() {
        let proxies = trusted(&["10.0.0.0/8", "192.168.1.1/32"]);
        // (peer, headers, client)
        type Case<'a> = (&'a str, &'a [(&'static str, &'static str)], Option<&'a str>);
        let cases: &[Case<'_>] = &[
            // Not a trusted proxy: nothing it says is believed.
            ("203.0.113.9", &[("x-forwarded-for", "1.2.3.4")], None),
            (
                "10.1.2.3",
                &[("x-forwarded-for", "1.2.3.4")],
                Some("1.2.3.4"),
            ),
            // A spoofed leftmost hop stays spoofed: the client is the first untrusted hop
            // from the right.
            (
                "10.1.2.3",
                &[("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.9.9.9")],
                Some("1.2.3.4"),
            ),
            // Several header lines are one list.
            (
                "10.1.2.3",
                &[
                    ("x-forwarded-for", "6.6.6.6"),
                    ("x-forwarded-for", "1.2.3.4"),
                ],
                Some("1.2.3.4"),
            ),
            // Every hop trusted: the leftmost.
            (
                "10.1.2.3",
                &[("x-forwarded-for", "10.0.0.7, 192.168.1.1")],
                Some("10.0.0.7"),
            ),
            // Garbage in the chain before a trusted hop: unknown origin, not believed.
            (
                "10.1.2.3",
                &[("x-forwarded-for", "1.2.3.4, nonsense")],
                None,
            ),
            ("10.1.2.3", &[("x-forwarded-for", "")], None),
            ("10.1.2.3", &[], None),
            // Forwarded wins over X-Forwarded-For, with quotes, ports and IPv6.
            (
                "10.1.2.3",
                &[
                    (
                        "forwarded",
                        "for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.0.0.2",
                    ),
                    ("x-forwarded-for", "6.6.6.6"),
                ],
                Some("2001:db8:cafe::17"),
            ),
            (
                "10.1.2.3",
                &[("forwarded", "For=\"198.51.100.7:8080\"")],
                Some("198.51.100.7"),
            ),
            ("10.1.2.3", &[("forwarded", "for=unknown")], None),
            (
                "10.1.2.3",
                &[("forwarded", "proto=https;by=10.0.0.1")],
                None,
            ),
            // An IPv4-mapped peer is the IPv4 address.
            (
                "::ffff:10.0.0.1",
                &[("x-forwarded-for", "1.2.3.4:5555")],
                Some("1.2.3.4"),
            ),
        ];
        for (peer, pairs, expected) in cases {
            let got = proxies.client(ip(peer), &headers(pairs));
            assert_eq!(got, expected.map(ip), "{peer} {pairs:?}");
        }
        assert_eq!(
            TrustedProxies::default()
                .client(ip("10.0.0.1"), &headers(&[("x-forwarded-for", "1.2.3.4")])),
            None,
            "nobody is trusted by default"
        );
    }
}
