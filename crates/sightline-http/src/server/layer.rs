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

/// Routes of health probes and scrapes: no span and no access-log line by default, still
/// counted in the RED metrics under their own route.
pub const DEFAULT_PROBE_ROUTES: &[&str] = &["/metrics", "/healthz", "/health", "/livez", "/readyz"];

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
                probe_routes: DEFAULT_PROBE_ROUTES.iter().map(|&r| r.into()).collect(),
                sensitive_query_params: default_sensitive_query_params(),
                default_scheme: "http",
                traceresponse: false,
                catch_panics: true,
                record_panic_message: true,
                trusted_proxies: Default::default(),
                route_extractor: None,
                tenant: None,
                series_limit: super::DEFAULT_SERIES_LIMIT,
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

names_setter! {
    ServerLayerBuilder,
    /// Route templates of probes and scrapes: their requests make no span and no access-log
    /// line (they are still counted in the RED metrics, under their own route). A request
    /// that no router matched is compared by its path.
    ///
    /// Defaults to [`DEFAULT_PROBE_ROUTES`]; an empty list traces every request.
    ///
    /// ```
    /// let layer = sightline_http::server::ServerLayer::builder()
    ///     .probe_routes(["/healthz", "/ready"])
    ///     .build();
    /// # drop(layer);
    /// ```
    fn probe_routes => options.probe_routes
}

impl ServerLayerBuilder {
    /// Whether a panic in the inner service (a handler) becomes a `500` answer, recorded as
    /// one on the span (status Error, with an `exception` event), in the metrics and in the
    /// access log, while the connection keeps serving.
    ///
    /// Defaults to `true`. Off, the panic unwinds through the connection as without the
    /// layer (hyper closes it), and the call is recorded as cancelled.
    ///
    /// ```
    /// let layer = sightline_http::server::ServerLayer::builder().catch_panics(false).build();
    /// # drop(layer);
    /// ```
    pub fn catch_panics(mut self, enabled: bool) -> Self {
        self.options.catch_panics = enabled;
        self
    }

    /// Whether the panic's message goes on the span's `exception` event
    /// (`exception.message`). Defaults to `true`; turn it off when panic messages may carry
    /// personal data.
    ///
    /// ```
    /// let layer = sightline_http::server::ServerLayer::builder()
    ///     .record_panic_message(false)
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn record_panic_message(mut self, enabled: bool) -> Self {
        self.options.record_panic_message = enabled;
        self
    }

    /// The reverse proxies and load balancers whose `Forwarded` or `X-Forwarded-For` headers
    /// are believed: when a request comes from one of them, `client.address` (span and access
    /// line) is the rightmost address of the chain that is not itself a trusted proxy, and
    /// the proxy is `network.peer.address`. From anyone else the headers are ignored, so a
    /// client cannot claim another's address.
    ///
    /// Defaults to none. Single addresses are `/32` (or `/128`) networks.
    ///
    /// ```
    /// let layer = sightline_http::server::ServerLayer::builder()
    ///     .trusted_proxies(["10.0.0.0/8".parse().unwrap(), "192.168.1.10/32".parse().unwrap()])
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn trusted_proxies(mut self, networks: impl IntoIterator<Item = ipnet::IpNet>) -> Self {
        self.options.trusted_proxies =
            crate::core::forwarded::TrustedProxies::new(networks.into_iter().collect());
        self
    }

    /// The route template of a request, for routers other than axum (whose `MatchedPath`
    /// is read without this): `http.route`, the span name and the metrics' route label.
    /// Return a template (`/users/{id}`), never the raw path, or every id becomes a time
    /// series; `None` leaves the request unmatched. Not called when axum matched a route.
    ///
    /// ```
    /// use std::borrow::Cow;
    ///
    /// let layer = sightline_http::server::ServerLayer::builder()
    ///     .route_extractor(|head| {
    ///         let path = head.uri().path();
    ///         path.starts_with("/users/").then_some(Cow::Borrowed("/users/{id}"))
    ///     })
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn route_extractor<F>(mut self, extractor: F) -> Self
    where
        F: Fn(&crate::RequestHead<'_>) -> Option<std::borrow::Cow<'static, str>>
            + Send
            + Sync
            + 'static,
    {
        self.options.route_extractor = Some(std::sync::Arc::new(extractor));
        self
    }

    /// Adds a `tenant` label to `http.server.request.duration`, read from the request header
    /// `header`: a value of `values` keeps its name, any other is `_OTHER`, and a request
    /// without the header has no tenant label. Tenant labels multiply series: with
    /// [`TenantValues::Any`](super::TenantValues::Any), only the
    /// [series limit](Self::metric_series_limit) bounds them.
    ///
    /// Defaults to none. (The facade reads `SIGHTLINE_TENANT_HEADER` and `SIGHTLINE_TENANTS`.)
    ///
    /// ```
    /// use sightline_http::server::{ServerLayer, TenantValues};
    ///
    /// let layer = ServerLayer::builder()
    ///     .tenant_label(
    ///         http::HeaderName::from_static("x-tenant-id"),
    ///         TenantValues::Only(vec!["acme".into(), "globex".into()]),
    ///     )
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn tenant_label(mut self, header: http::HeaderName, values: super::TenantValues) -> Self {
        self.options.tenant = Some(super::TenantLabelConfig { header, values });
        self
    }

    /// The most series `http.server.request.duration` may have; past it, new label sets are
    /// folded into one series labelled `otel_metric_overflow="true"`, counted in
    /// [`METRIC_OVERFLOW`](super::METRIC_OVERFLOW), and a warning names the metric once.
    ///
    /// Defaults to [`DEFAULT_SERIES_LIMIT`](super::DEFAULT_SERIES_LIMIT) (2,000, as the
    /// OpenTelemetry SDK's cardinality limit).
    ///
    /// ```
    /// let layer = sightline_http::server::ServerLayer::builder().metric_series_limit(500).build();
    /// # drop(layer);
    /// ```
    pub fn metric_series_limit(mut self, limit: usize) -> Self {
        self.options.series_limit = limit.max(1);
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
            #[cfg(feature = "metrics")]
            series_budget: crate::core::budget::SeriesBudget::new(
                super::HTTP_SERVER_REQUEST_DURATION,
                self.options.series_limit,
            ),
            common,
            access: self.access,
            options: self.options,
            unmatched: RouteInfo::new(None, false),
            routes: Default::default(),
        }
    }
}
