//! Addresses: `server.address`/`server.port` from an authority, the peer's `client.address`,
//! and a client's upstream.

use std::net::SocketAddr;
use std::sync::Arc;

use http::Request;

/// Splits `host[:port]` or `[v6]:port` (userinfo is never recorded, so it is dropped); `None`
/// for an empty host.
pub(crate) fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    (!host.is_empty()).then(|| (host, port.and_then(|p| p.parse().ok())))
}

/// The host and port of the request URI's authority (HTTP/2, absolute-form).
#[cfg_attr(not(feature = "grpc"), allow(dead_code))]
pub(crate) fn uri_authority<B>(req: &Request<B>) -> Option<(&str, Option<u16>)> {
    split_host_port(req.uri().authority()?.as_str())
}

/// `server.address` and `server.port` attributes for an authority; the host text is shared
/// with the previous request's while it repeats.
pub(crate) fn address_attributes(
    authority: Option<(&str, Option<u16>)>,
    attrs: &mut Vec<opentelemetry::KeyValue>,
) {
    use opentelemetry::KeyValue;
    use opentelemetry_semantic_conventions::attribute;

    let Some((host, port)) = authority else {
        return;
    };
    attrs.push(KeyValue::new(
        attribute::SERVER_ADDRESS,
        super::text_cache::host(host),
    ));
    if let Some(port) = port {
        attrs.push(KeyValue::new(attribute::SERVER_PORT, i64::from(port)));
    }
}

/// `server.address` and `server.port` of a request: the URI authority, or the `Host` header.
pub(crate) fn server_authority<B>(req: &Request<B>) -> Option<(&str, Option<u16>)> {
    let authority = match req.uri().authority() {
        Some(authority) => authority.as_str(),
        None => req.headers().get(http::header::HOST)?.to_str().ok()?,
    };
    split_host_port(authority)
}

/// The peer's address, when the server put it in the request extensions: tonic's
/// `TcpConnectInfo`, or axum's `ConnectInfo<SocketAddr>`.
pub(crate) fn client_addr<B>(req: &Request<B>) -> Option<SocketAddr> {
    #[cfg(feature = "grpc")]
    if let Some(addr) = req
        .extensions()
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(|info| info.remote_addr())
    {
        return Some(addr);
    }
    #[cfg(feature = "axum")]
    if let Some(info) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(info.0);
    }
    let _ = req;
    None
}

/// The default port of a scheme.
pub(crate) fn default_port(https: bool) -> u16 {
    if https { 443 } else { 80 }
}

/// The upstream of a client call: `server.address`, `server.port` and the scheme.
pub(crate) struct Target {
    pub(crate) scheme: &'static str,
    pub(crate) host: Option<Arc<str>>,
    pub(crate) port: u16,
}

impl Target {
    /// The upstream of an outgoing request: its URI authority, or its `Host` header; the port
    /// defaults by scheme.
    pub(crate) fn of<B>(req: &Request<B>) -> Self {
        let https = req
            .uri()
            .scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("https"));
        let split = server_authority(req);
        Self {
            scheme: if https { "https" } else { "http" },
            host: split.map(|(host, _)| Arc::from(host)),
            port: split
                .and_then(|(_, port)| port)
                .unwrap_or(default_port(https)),
        }
    }

    /// A channel's target (`http://host:port`): host and port, `None` when it does not parse.
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    pub(crate) fn parse(target: &str) -> Option<(Arc<str>, u16)> {
        let uri = target.parse::<http::Uri>().ok()?;
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
        let port = uri
            .port_u16()
            .unwrap_or(default_port(uri.scheme_str() == Some("https")));
        Some((Arc::from(host), port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        assert_eq!(
            split_host_port("example.com:8080"),
            Some(("example.com", Some(8080)))
        );
        assert_eq!(split_host_port("example.com"), Some(("example.com", None)));
        assert_eq!(split_host_port("[::1]:3000"), Some(("::1", Some(3000))));
        assert_eq!(split_host_port("[::1]"), Some(("::1", None)));
        assert_eq!(split_host_port("u:p@h:1"), Some(("h", Some(1))));
        assert_eq!(split_host_port("h:notaport"), Some(("h", None)));
        assert_eq!(split_host_port(""), None);
        assert_eq!(split_host_port("[broken"), None);
    }

    #[test]
    fn ports_default_by_scheme() {
        let port = |uri: &str| Target::of(&Request::builder().uri(uri).body(()).unwrap()).port;
        assert_eq!(port("https://example.com/"), 443);
        assert_eq!(port("http://example.com/"), 80);
        assert_eq!(port("http://example.com:8080/"), 8080);
        assert_eq!(
            Target::parse("https://[::1]"),
            Some((Arc::from("::1"), 443))
        );
        assert_eq!(Target::parse("not a uri"), None);
    }
}
