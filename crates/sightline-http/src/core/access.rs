//! The access-log event: its level by outcome and its dispatch, written once.

use crate::access::AccessLogLevels;

/// How a call ended, as the access log sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum AccessClass {
    Success,
    ClientError,
    ServerError,
}

impl AccessLogLevels {
    /// The level of the event for `class`; `None` writes none.
    pub(crate) fn level(&self, class: AccessClass) -> Option<tracing::Level> {
        match class {
            AccessClass::Success => self.success,
            AccessClass::ClientError => self.client_error,
            AccessClass::ServerError => self.server_error,
        }
    }
}

/// Emits the access-log event (target `sightline_http::access`) at `level`, inside `parent`:
/// one callsite per level, since a `tracing` callsite has a fixed level. The fields and the
/// message are the protocol's; their names are those of the span attributes and metric labels,
/// so a line, a span and a series join.
macro_rules! access_event {
    ($level:expr, parent: $parent:expr, $($fields:tt)+) => {
        match $level {
            ::tracing::Level::ERROR => ::tracing::event!(target: "sightline_http::access", parent: $parent, ::tracing::Level::ERROR, $($fields)+),
            ::tracing::Level::WARN => ::tracing::event!(target: "sightline_http::access", parent: $parent, ::tracing::Level::WARN, $($fields)+),
            ::tracing::Level::INFO => ::tracing::event!(target: "sightline_http::access", parent: $parent, ::tracing::Level::INFO, $($fields)+),
            ::tracing::Level::DEBUG => ::tracing::event!(target: "sightline_http::access", parent: $parent, ::tracing::Level::DEBUG, $($fields)+),
            _ => ::tracing::event!(target: "sightline_http::access", parent: $parent, ::tracing::Level::TRACE, $($fields)+),
        }
    };
}

pub(crate) use access_event;

/// Who sent a request, as a server records it: `client.address` and `user_agent.original`.
pub(crate) struct Peer {
    /// The connection's peer.
    pub(crate) addr: Option<std::net::SocketAddr>,
    /// The client behind trusted proxies, when they name one: `client.address` then, with no
    /// `client.port`, and the proxy is `network.peer.address`.
    pub(crate) forwarded: Option<std::net::IpAddr>,
    pub(crate) user_agent: Option<http::HeaderValue>,
}

impl Peer {
    /// Nobody recorded.
    pub(crate) const NONE: Self = Self {
        addr: None,
        forwarded: None,
        user_agent: None,
    };

    pub(crate) fn of<B>(
        req: &http::Request<B>,
        trusted: &super::forwarded::TrustedProxies,
    ) -> Self {
        let addr = super::net::client_addr(req);
        let forwarded = match addr {
            Some(peer) if !trusted.is_empty() => trusted.client(peer.ip(), req.headers()),
            _ => None,
        };
        Self {
            addr,
            forwarded,
            user_agent: req.headers().get(http::header::USER_AGENT).cloned(),
        }
    }

    /// The client's address: the forwarded one, else the connection's peer.
    fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.forwarded.or(self.addr.map(|a| a.ip()))
    }

    /// The client address and the user agent as the access log prints them: the address text
    /// shared with the span's attribute (per-thread cache) rather than formatted again.
    pub(crate) fn texts(
        &self,
    ) -> (
        Option<std::sync::Arc<str>>,
        Option<std::borrow::Cow<'_, str>>,
    ) {
        (
            self.client_ip().map(super::text_cache::ip),
            self.user_agent.as_ref().map(super::headers::header_text),
        )
    }

    /// `client.address` and `client.port` span attributes.
    pub(crate) fn attributes(&self, attrs: &mut Vec<opentelemetry::KeyValue>) {
        use opentelemetry_semantic_conventions::attribute;

        if let Some(client) = self.forwarded {
            attrs.push(opentelemetry::KeyValue::new(
                attribute::CLIENT_ADDRESS,
                opentelemetry::StringValue::from(super::text_cache::ip(client)),
            ));
            if let Some(proxy) = self.addr {
                attrs.push(opentelemetry::KeyValue::new(
                    attribute::NETWORK_PEER_ADDRESS,
                    opentelemetry::StringValue::from(super::text_cache::ip(proxy.ip())),
                ));
            }
        } else if let Some(addr) = self.addr {
            attrs.push(opentelemetry::KeyValue::new(
                attribute::CLIENT_ADDRESS,
                opentelemetry::StringValue::from(super::text_cache::ip(addr.ip())),
            ));
            attrs.push(opentelemetry::KeyValue::new(
                attribute::CLIENT_PORT,
                i64::from(addr.port()),
            ));
        }
    }
}
