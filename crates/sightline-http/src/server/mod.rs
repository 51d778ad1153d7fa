//! The server middleware: trace context, a server span, a request ID, RED metrics and an
//! access-log line for every request, in one layer.
//!
//! # What happens to a request
//!
//! When the request arrives ([`Server::call`](tower_service::Service::call)):
//!
//! 1. The request ID is read from `x-request-id` (kept if it is 1 to 128 visible ASCII
//!    characters, replaced otherwise, generated when absent), written back to the request
//!    headers and inserted as a [`RequestId`](crate::request_id::RequestId) extension.
//! 2. With a tracer configured, the trace context is extracted (W3C `traceparent` and
//!    `tracestate`, then B3; `baggage`). A malformed or duplicated header means "no remote
//!    parent": a new trace starts, the rejection is counted in
//!    `sightline.propagation.rejected` and logged at DEBUG.
//! 3. An OpenTelemetry span of kind SERVER starts, named `{method} {http.route}` (the route
//!    template from axum's `MatchedPath`, never the raw path; the method alone when no route
//!    matched) with the stable HTTP semantic-convention attributes: `http.request.method`
//!    (`_OTHER` plus `http.request.method_original` for unknown methods), `url.path`,
//!    `url.scheme`, `url.query` (sensitive values replaced by `REDACTED`), `http.route`,
//!    `network.protocol.version`, `server.address`, `server.port`, `client.address` (with
//!    axum's `ConnectInfo<SocketAddr>`) and `user_agent.original`; and, when switched on with
//!    [`ServerLayerBuilder::capture_request_headers`], `http.request.header.<name>` (values of
//!    sensitive headers such as `authorization` and `cookie` recorded as `REDACTED`).
//! 4. A `tracing` span (target `sightline_http::server`, level INFO) carrying `trace_id`,
//!    `span_id`, `trace_flags` and `request_id` is entered around every poll of the inner
//!    service, so every log line of the request carries the IDs; the OpenTelemetry span is
//!    the current OpenTelemetry context at the same time, so spans made in handlers are its
//!    children.
//! 5. `http.server.active_requests` goes up by one.
//!
//! When the response head is ready, its status is noted (with the captured response headers,
//! [`ServerLayerBuilder::capture_response_headers`]) and the request ID header is set on
//! it (and, when switched on with
//! [`ServerLayerBuilder::traceresponse`], a W3C `traceresponse` header naming the server span).
//! The request **ends when the response body ends**: at the last data frame (when the body
//! says it is at its end), at the trailers, on a body error, or when the body is dropped
//! early because the client went away. Then, exactly once:
//!
//! - `http.server.request.duration` records the time since the request arrived, labelled by
//!   `http.request.method`, `http.route` (`unmatched` when no route matched), `url.scheme`,
//!   `http.response.status_code` and `error.type`;
//! - `http.server.active_requests` goes down by one;
//! - the span gets `http.response.status_code`, and for 5xx answers `error.type` and status
//!   Error, and ends;
//! - one access-log event (target `sightline_http::access`) is emitted inside the request's
//!   span: by default ERROR for 5xx, WARN for 4xx, INFO otherwise
//!   ([`ServerLayerBuilder::access_log_levels`]); health and metrics routes are left out.
//!
//! An error from the inner service passes through untouched (`error.type` `_OTHER`), and a
//! request whose future is dropped before the response ends is recorded with `error.type`
//! `cancelled` and no span error (the client left; the server did not fail).

mod layer;
#[cfg(feature = "metrics")]
mod metrics;
mod route;
mod service;
mod state;

pub use crate::core::config::DEFAULT_SENSITIVE_QUERY_PARAMS;
pub use layer::{DEFAULT_ACCESS_LOG_EXCLUDE, DEFAULT_PROBE_ROUTES, ServerLayerBuilder};
#[cfg(feature = "metrics")]
pub use metrics::METRIC_OVERFLOW;
#[cfg(feature = "metrics")]
pub use metrics::{
    DURATION_BUCKETS, HTTP_SERVER_ACTIVE_REQUESTS, HTTP_SERVER_REQUEST_DURATION,
    describe_server_metrics,
};
pub use route::UNMATCHED_ROUTE;

use crate::core::config::{AccessConfig, Common};
use crate::core::middleware::middleware;

/// What the builder sets besides the common and access-log parts, kept as it is by the layer.
struct Options {
    access_log_exclude: Vec<Box<str>>,
    probe_routes: Vec<Box<str>>,
    catch_panics: bool,
    record_panic_message: bool,
    trusted_proxies: crate::core::forwarded::TrustedProxies,
    route_extractor: Option<crate::head::RouteExtractor>,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    tenant: Option<TenantLabelConfig>,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    series_limit: usize,
    sensitive_query_params: Vec<Box<str>>,
    default_scheme: &'static str,
    traceresponse: bool,
}

/// Configuration shared by every clone of a [`ServerLayer`] and the services it makes.
struct Shared {
    common: Common,
    access: AccessConfig,
    options: Options,
    unmatched: route::RouteInfo,
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    routes: route::RouteTable,
    #[cfg(feature = "metrics")]
    active_requests: Option<metrics::ActiveRequests>,
    #[cfg(feature = "metrics")]
    series_budget: crate::core::budget::SeriesBudget,
}

/// The tenant label as the builder holds it (kept without the `metrics` feature too, so the
/// setter exists either way).
#[derive(Clone, Debug)]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
struct TenantLabelConfig {
    header: http::HeaderName,
    values: TenantValues,
}

/// The default number of series of a metric, as in the OpenTelemetry SDK.
pub const DEFAULT_SERIES_LIMIT: usize = 2000;
#[cfg(feature = "metrics")]
const _: () = assert!(DEFAULT_SERIES_LIMIT == crate::core::budget::DEFAULT_LIMIT);

/// The label value of a tenant not on the list.
#[cfg(feature = "metrics")]
const OTHER_TENANT: &str = "_OTHER";

/// Longest tenant value kept, in bytes.
#[cfg(feature = "metrics")]
const MAX_TENANT: usize = 64;

#[cfg(feature = "metrics")]
impl TenantLabelConfig {
    /// The label value of a request: none without the header, `_OTHER` for a value not on
    /// the list (or not short printable text).
    fn value(&self, headers: &http::HeaderMap) -> Option<::metrics::SharedString> {
        use ::metrics::SharedString;
        let raw = headers.get(&self.header)?;
        let text = raw
            .to_str()
            .ok()
            .filter(|t| !t.is_empty() && t.len() <= MAX_TENANT);
        Some(match (&self.values, text) {
            (TenantValues::Any, Some(text)) => SharedString::from_owned(text.to_owned()),
            (TenantValues::Only(list), Some(text)) => match list.iter().find(|v| *v == text) {
                Some(value) => SharedString::from_owned(value.clone()),
                None => SharedString::const_str(OTHER_TENANT),
            },
            (_, None) => SharedString::const_str(OTHER_TENANT),
        })
    }
}

/// Which values of the tenant header get a series of their own; see
/// [`ServerLayerBuilder::tenant_label`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantValues {
    /// Any value (bounded only by the series limit).
    Any,
    /// Only these; any other value is `_OTHER`.
    Only(Vec<String>),
}

impl Shared {
    /// Whether a request to `route` (a template; the path when no router matched) is a probe.
    fn is_probe(&self, route: &str) -> bool {
        self.options.probe_routes.iter().any(|r| &**r == route)
    }

    fn logs_access_for(&self, route: &str) -> bool {
        self.access.enabled
            && !self
                .options
                .access_log_exclude
                .iter()
                .any(|r| &**r == route)
    }
}

middleware! {
    /// [`Layer`](tower_layer::Layer) that applies the [`Server`] middleware: trace context, a
    /// server span, a request ID, RED metrics and an access-log line for every request.
    ///
    /// Cheap to clone. Build it with [`ServerLayer::builder`]; apply it with axum's
    /// `Router::layer` so that the route template (`MatchedPath`) is known.
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// use sightline_http::server::ServerLayer;
    ///
    /// let layer = ServerLayer::builder()
    ///     .tracer(opentelemetry::global::tracer("checkout"))
    ///     .build();
    /// let app: Router = Router::new().route("/users/{id}", get(|| async { "ok" })).layer(layer);
    /// ```
    layer: ServerLayer = "sightline_http::server::ServerLayer",
    builder: ServerLayerBuilder,
    /// Middleware that traces, measures and identifies every request; see the
    /// [module docs](self) for what is recorded and when.
    ///
    /// Made by [`ServerLayer`].
    service: Server {
        route: std::sync::Arc<route::RouteSlot> = Default::default(),
    },
    shared: Shared, call: state::RequestState, inner_body: ReqBody, error: [],
    future;
    body;
}
