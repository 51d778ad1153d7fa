//! [`ServerLayerBuilder`]: the server's configuration.

use super::route::RouteInfo;
use super::{Options, ServerLayer, Shared};
use crate::core::classify::Side;
use crate::core::config::{
    AccessConfig, CommonConfig, access_setters, capture_setters, common_setters,
    default_sensitive_query_params, names_setter, query_setters,
};

/// Routes whose requests write no access-log line by default: health probes and scrapes.
pub const DEFAULT_ACCESS_LOG_EXCLUDE: &[&str] =
    &["/metrics", "/healthz", "/health", "/livez", "/readyz"];

/// Builder of a [`ServerLayer`].
pub struct ServerLayerBuilder {
    common: CommonConfig,
    access: AccessConfig,
    options: Options,
}

impl Default for ServerLayerBuilder {
    fn default() -> Self {
        Self {
            common: CommonConfig::new(Side::Server),
            access: AccessConfig::default(),
            options: Options {
                access_log_exclude: DEFAULT_ACCESS_LOG_EXCLUDE
                    .iter()
                    .map(|&r| r.into())
                    .collect(),
                sensitive_query_params: default_sensitive_query_params(),
                default_scheme: "http",
                traceresponse: false,
            },
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
    builds: ServerLayer,
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
    field: options.sensitive_query_params,
}

names_setter! {
    ServerLayerBuilder,
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
    fn access_log_exclude => options.access_log_exclude
}

impl ServerLayerBuilder {
    /// `url.scheme` when the request URI has none (HTTP/1.1 origin-form requests).
    ///
    /// Defaults to `"http"`; set `"https"` behind a TLS acceptor.
    ///
    /// ```
    /// let layer = sightline_http::server::ServerLayer::builder().default_scheme_https(true).build();
    /// # drop(layer);
    /// ```
    pub fn default_scheme_https(mut self, https: bool) -> Self {
        self.options.default_scheme = if https { "https" } else { "http" };
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
        self.options.traceresponse = enabled;
        self
    }

    fn into_shared(self) -> Shared {
        let common = self.common.build_http();
        Shared {
            #[cfg(feature = "metrics")]
            active_requests: common.metrics_state(),
            common,
            access: self.access,
            options: self.options,
            unmatched: RouteInfo::new(None, false),
            routes: Default::default(),
        }
    }
}
