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
    pub(crate) addr: Option<std::net::SocketAddr>,
    pub(crate) user_agent: Option<http::HeaderValue>,
}

impl Peer {
    /// Nobody recorded.
    pub(crate) const NONE: Self = Self {
        addr: None,
        user_agent: None,
    };

    pub(crate) fn of<B>(req: &http::Request<B>) -> Self {
        Self {
            addr: super::net::client_addr(req),
            user_agent: req.headers().get(http::header::USER_AGENT).cloned(),
        }
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
            self.addr.map(|a| super::text_cache::ip(a.ip())),
            self.user_agent.as_ref().map(super::headers::header_text),
        )
    }

    /// `client.address` and `client.port` span attributes.
    pub(crate) fn attributes(&self, attrs: &mut Vec<opentelemetry::KeyValue>) {
        use opentelemetry_semantic_conventions::attribute;

        if let Some(addr) = self.addr {
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
