use std::sync::Arc;

use http::HeaderName;
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::Tracer;
use sightline_propagation::Propagator;

use super::Shared;
use super::route::{RouteInfo, RouteSlot};
use super::service::Server;
use crate::access::AccessLogLevels;
use crate::headers::HeaderCaptureConfig;
use crate::request_id::X_REQUEST_ID;

/// Query parameters whose values are replaced with `REDACTED` in `url.query`: the semantic
/// conventions' list plus common credential names.
pub const DEFAULT_SENSITIVE_QUERY_PARAMS: &[&str] = &[
    "AWSAccessKeyId",
    "Signature",
    "sig",
    "X-Goog-Signature",
    "access_token",
    "api_key",
    "apikey",
    "auth",
    "code",
    "id_token",
    "key",
    "password",
    "refresh_token",
    "secret",
    "token",
];

/// Routes whose requests write no access-log line by default: health probes and scrapes.
pub const DEFAULT_ACCESS_LOG_EXCLUDE: &[&str] =
    &["/metrics", "/healthz", "/health", "/livez", "/readyz"];

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
#[derive(Clone)]
pub struct ServerLayer {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for ServerLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerLayer")
            .field("tracing", &self.shared.tracer.is_some())
            .field("request_id_header", &self.shared.request_id_header)
            .field("metrics", &self.shared.metrics_enabled())
            .field("access_log", &self.shared.access_log)
            .finish_non_exhaustive()
    }
}

impl ServerLayer {
    /// A builder with every part switched on except OpenTelemetry spans, which need a tracer.
    pub fn builder() -> ServerLayerBuilder {
        ServerLayerBuilder::default()
    }
}

impl<S> tower_layer::Layer<S> for ServerLayer {
    type Service = Server<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Server {
            inner,
            shared: Arc::clone(&self.shared),
            route: Arc::new(RouteSlot::default()),
        }
    }
}

/// Builder of a [`ServerLayer`].
pub struct ServerLayerBuilder {
    tracer: Option<BoxedTracer>,
    propagator: Propagator,
    request_id_header: Option<HeaderName>,
    metrics: bool,
    access_log: bool,
    access_log_exclude: Vec<Box<str>>,
    access_log_levels: AccessLogLevels,
    headers: HeaderCaptureConfig,
    sensitive_query_params: Vec<Box<str>>,
    default_scheme: &'static str,
    attach_context: bool,
    traceresponse: bool,
    random_trace_ids: bool,
}

impl Default for ServerLayerBuilder {
    fn default() -> Self {
        Self {
            tracer: None,
            propagator: Propagator::new(),
            request_id_header: Some(X_REQUEST_ID),
            metrics: cfg!(feature = "metrics"),
            access_log: true,
            access_log_exclude: DEFAULT_ACCESS_LOG_EXCLUDE
                .iter()
                .map(|&r| r.into())
                .collect(),
            access_log_levels: AccessLogLevels::default(),
            headers: HeaderCaptureConfig::default(),
            sensitive_query_params: DEFAULT_SENSITIVE_QUERY_PARAMS
                .iter()
                .map(|&p| p.into())
                .collect(),
            default_scheme: "http",
            attach_context: true,
            traceresponse: false,
            random_trace_ids: true,
        }
    }
}

impl ServerLayerBuilder {
    /// The OpenTelemetry tracer that makes the server spans.
    ///
    /// Defaults to none: no OpenTelemetry span is made, and log lines carry only the request ID.
    pub fn tracer<T>(mut self, tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Send + Sync + 'static,
    {
        self.tracer = Some(BoxedTracer::new(Box::new(tracer)));
        self
    }

    /// Which trace context formats are read from requests.
    ///
    /// Defaults to [`Propagator::new`]: W3C `traceparent`/`tracestate`, then B3 single and
    /// multi headers, and W3C `baggage`.
    pub fn propagator(mut self, propagator: Propagator) -> Self {
        self.propagator = propagator;
        self
    }

    /// The request ID header.
    ///
    /// Defaults to `x-request-id`.
    pub fn request_id_header(mut self, name: HeaderName) -> Self {
        self.request_id_header = Some(name);
        self
    }

    /// Switches request IDs off: the header is neither read, generated nor returned.
    pub fn without_request_id(mut self) -> Self {
        self.request_id_header = None;
        self
    }

    /// Whether to record `http.server.request.duration` and `http.server.active_requests`.
    ///
    /// Defaults to `true` when the `metrics` feature is on.
    pub fn metrics(mut self, enabled: bool) -> Self {
        self.metrics = enabled && cfg!(feature = "metrics");
        self
    }

    /// Whether to emit one access-log event (target `sightline_http::access`) per request.
    ///
    /// Defaults to `true`.
    pub fn access_log(mut self, enabled: bool) -> Self {
        self.access_log = enabled;
        self
    }

    /// Route templates that write no access-log line.
    ///
    /// Defaults to [`DEFAULT_ACCESS_LOG_EXCLUDE`].
    pub fn access_log_exclude<I, R>(mut self, routes: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<Box<str>>,
    {
        self.access_log_exclude = routes.into_iter().map(Into::into).collect();
        self
    }

    /// The level of the access-log event by outcome (success, client error, server error);
    /// `None` for a kind writes no event for it.
    ///
    /// Defaults to [`AccessLogLevels::default`]: INFO, WARN, ERROR.
    ///
    /// ```
    /// use sightline_http::access::AccessLogLevels;
    /// use sightline_http::server::ServerLayer;
    ///
    /// let layer = ServerLayer::builder()
    ///     .access_log_levels(AccessLogLevels {
    ///         success: Some(tracing::Level::DEBUG),
    ///         ..AccessLogLevels::default()
    ///     })
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn access_log_levels(mut self, levels: AccessLogLevels) -> Self {
        self.access_log_levels = levels;
        self
    }

    /// Request headers recorded on the server span as `http.request.header.<name>` (a string
    /// array with every value of the header, as the semantic conventions say).
    ///
    /// The values of sensitive headers ([`DEFAULT_SENSITIVE_HEADERS`](crate::DEFAULT_SENSITIVE_HEADERS)
    /// and [`sensitive_headers`](Self::sensitive_headers)) are recorded as `REDACTED`. Values
    /// that are not UTF-8 are recorded with U+FFFD in place of the bad bytes. Headers are never
    /// written to log lines.
    ///
    /// Defaults to none.
    ///
    /// ```
    /// use http::header::{ACCEPT, AUTHORIZATION};
    /// use sightline_http::server::ServerLayer;
    ///
    /// // `http.request.header.accept` as sent, `http.request.header.authorization` as ["REDACTED"].
    /// let layer = ServerLayer::builder()
    ///     .capture_request_headers([ACCEPT, AUTHORIZATION])
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn capture_request_headers<I>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = HeaderName>,
    {
        self.headers.request = names.into_iter().collect();
        self
    }

    /// Response headers recorded on the server span as `http.response.header.<name>`, with
    /// sensitive values (`set-cookie`, ...) recorded as `REDACTED`; see
    /// [`capture_request_headers`](Self::capture_request_headers).
    ///
    /// Defaults to none.
    ///
    /// ```
    /// use http::header::{CONTENT_TYPE, SET_COOKIE};
    ///
    /// let layer = sightline_http::server::ServerLayer::builder()
    ///     .capture_response_headers([CONTENT_TYPE, SET_COOKIE])
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn capture_response_headers<I>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = HeaderName>,
    {
        self.headers.response = names.into_iter().collect();
        self
    }

    /// Headers whose captured values are recorded as `REDACTED`, in addition to
    /// [`DEFAULT_SENSITIVE_HEADERS`](crate::DEFAULT_SENSITIVE_HEADERS) (`authorization`,
    /// `cookie`, `set-cookie`, `proxy-authorization`, `x-api-key`), which are always
    /// sensitive.
    ///
    /// Defaults to none beyond those.
    ///
    /// ```
    /// use http::HeaderName;
    ///
    /// let session = HeaderName::from_static("x-session-token");
    /// let layer = sightline_http::server::ServerLayer::builder()
    ///     .capture_request_headers([session.clone()])
    ///     .sensitive_headers([session])
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn sensitive_headers<I>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = HeaderName>,
    {
        self.headers.sensitive = names.into_iter().collect();
        self
    }

    /// Query parameter names whose values are recorded as `REDACTED` in `url.query`.
    ///
    /// Defaults to [`DEFAULT_SENSITIVE_QUERY_PARAMS`]; names compare case-insensitively.
    pub fn sensitive_query_params<I, P>(mut self, params: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<Box<str>>,
    {
        self.sensitive_query_params = params.into_iter().map(Into::into).collect();
        self
    }

    /// `url.scheme` when the request URI has none (HTTP/1.1 origin-form requests).
    ///
    /// Defaults to `"http"`; set `"https"` behind a TLS acceptor.
    pub fn default_scheme_https(mut self, https: bool) -> Self {
        self.default_scheme = if https { "https" } else { "http" };
        self
    }

    /// Whether the server span is the current OpenTelemetry context while the inner service
    /// runs, so that spans made in handlers (directly or through `tracing-opentelemetry`)
    /// are its children.
    ///
    /// Defaults to `true`.
    pub fn attach_context(mut self, enabled: bool) -> Self {
        self.attach_context = enabled;
        self
    }

    /// Whether responses carry a W3C Trace Context Level 2 `traceresponse` header
    /// (`00-{trace-id}-{server span id}-{flags}`), so a caller can find the server's span.
    ///
    /// Defaults to `false`: it tells callers the trace id, which a service facing the internet
    /// may not want to.
    pub fn traceresponse(mut self, enabled: bool) -> Self {
        self.traceresponse = enabled;
        self
    }

    /// Whether the tracer's ID generator makes random trace ids, so that traces this server
    /// starts carry the W3C Level 2 `random` flag (0x02) in what children inherit, log lines
    /// print and the client layer propagates. The exported root span's own flags stay as the
    /// SDK sets them.
    ///
    /// Defaults to `true`, as for the OpenTelemetry SDK's default generator; turn it off for a
    /// tracer whose trace ids are not random.
    pub fn random_trace_ids(mut self, random: bool) -> Self {
        self.random_trace_ids = random;
        self
    }

    /// Builds the layer.
    pub fn build(self) -> ServerLayer {
        ServerLayer {
            shared: Arc::new(Shared {
                tracer: self.tracer,
                propagator: self.propagator,
                request_id_header: self.request_id_header,
                access_log: self.access_log,
                access_log_exclude: self.access_log_exclude,
                access_log_levels: self.access_log_levels,
                headers: self.headers.build(),
                sensitive_query_params: self.sensitive_query_params,
                default_scheme: self.default_scheme,
                attach_context: self.attach_context,
                traceresponse: self.traceresponse,
                random_trace_ids: self.random_trace_ids,
                unmatched: RouteInfo::new(None, false),
                routes: Default::default(),
                #[cfg(feature = "metrics")]
                active_requests: self.metrics.then(Default::default),
            }),
        }
    }
}
