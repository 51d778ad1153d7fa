//! [`ServerLayerBuilder`]: the server's configuration.

use opentelemetry_semantic_conventions::attribute::{HTTP_REQUEST_HEADER, HTTP_RESPONSE_HEADER};

use super::route::RouteInfo;
use super::{ServerLayer, Shared};
use crate::core::classify::Side;
use crate::core::config::{
    AccessConfig, CommonConfig, access_setters, capture_setters, common_setters,
    default_sensitive_query_params, query_setters,
};

/// Routes whose requests write no access-log line by default: health probes and scrapes.
pub const DEFAULT_ACCESS_LOG_EXCLUDE: &[&str] =
    &["/metrics", "/healthz", "/health", "/livez", "/readyz"];

/// Builder of a [`ServerLayer`].
pub struct ServerLayerBuilder {
    common: CommonConfig,
    access: AccessConfig,
    access_log_exclude: Vec<Box<str>>,
    sensitive_query_params: Vec<Box<str>>,
    default_scheme: &'static str,
    traceresponse: bool,
}

impl Default for ServerLayerBuilder {
    fn default() -> Self {
        Self {
            common: CommonConfig::new(Side::Server),
            access: AccessConfig::default(),
            access_log_exclude: DEFAULT_ACCESS_LOG_EXCLUDE
                .iter()
                .map(|&r| r.into())
                .collect(),
            sensitive_query_params: default_sensitive_query_params(),
            default_scheme: "http",
            traceresponse: false,
        }
    }
}

common_setters! {
    builder: ServerLayerBuilder,
    layer: "sightline_http::server::ServerLayer",
    span: "server span",
    metrics: "`http.server.request.duration` and `http.server.active_requests`",
    attach_context: "true",
    random_trace_ids: "true",
}

capture_setters! {
    headers,
    builder: ServerLayerBuilder,
    layer: "sightline_http::server::ServerLayer",
    span: "server span",
}

access_setters! {
    builder: ServerLayerBuilder,
    layer: "sightline_http::server::ServerLayer",
}

query_setters! {
    builder: ServerLayerBuilder,
    layer: "sightline_http::server::ServerLayer",
    attribute: "url.query",
}

impl ServerLayerBuilder {
    /// Route templates that write no access-log line.
    ///
    /// Defaults to [`DEFAULT_ACCESS_LOG_EXCLUDE`].
    ///
    /// ```
    /// let layer = sightline_http::server::ServerLayer::builder()
    ///     .access_log_exclude(["/healthz", "/internal/stats"])
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn access_log_exclude<I, R>(mut self, routes: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<Box<str>>,
    {
        self.access_log_exclude = routes.into_iter().map(Into::into).collect();
        self
    }

    /// `url.scheme` when the request URI has none (HTTP/1.1 origin-form requests).
    ///
    /// Defaults to `"http"`; set `"https"` behind a TLS acceptor.
    ///
    /// ```
    /// let layer = sightline_http::server::ServerLayer::builder().default_scheme_https(true).build();
    /// # drop(layer);
    /// ```
    pub fn default_scheme_https(mut self, https: bool) -> Self {
        self.default_scheme = if https { "https" } else { "http" };
        self
    }

    /// Whether responses carry a W3C Trace Context Level 2 `traceresponse` header
    /// (`00-{trace-id}-{server span id}-{flags}`), so a caller can find the server's span.
    ///
    /// Defaults to `false`: it tells callers the trace id, which a service facing the internet
    /// may not want to.
    ///
    /// ```
    /// let layer = sightline_http::server::ServerLayer::builder().traceresponse(true).build();
    /// # drop(layer);
    /// ```
    pub fn traceresponse(mut self, enabled: bool) -> Self {
        self.traceresponse = enabled;
        self
    }

    /// Builds the layer.
    ///
    /// ```
    /// let layer = sightline_http::server::ServerLayer::builder().build();
    /// # drop(layer);
    /// ```
    pub fn build(self) -> ServerLayer {
        let common = self
            .common
            .build((HTTP_REQUEST_HEADER, HTTP_RESPONSE_HEADER));
        ServerLayer::from_shared(Shared {
            #[cfg(feature = "metrics")]
            active_requests: common.metrics.then(Default::default),
            common,
            access: self.access,
            access_log_exclude: self.access_log_exclude,
            sensitive_query_params: self.sensitive_query_params,
            default_scheme: self.default_scheme,
            traceresponse: self.traceresponse,
            unmatched: RouteInfo::new(None, false),
            routes: Default::default(),
        })
    }
}
