use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use http::{HeaderName, Request, Response};
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{SpanBuilder, SpanContext, SpanKind, Tracer};
use opentelemetry::{Context, KeyValue};
use sightline_propagation::Propagator;
use tower_service::Service;

use super::Shared;
use super::body::{RequestBody, ResponseBody};
use super::call::{CallState, RequestCounters, push_method_attributes};
use super::code::CodeSet;
use super::future::ResponseFuture;
use super::method::{self, MethodTable, Resolved};
use crate::access::AccessLogLevels;
use crate::headers::HeaderCaptureConfig;
use crate::request_id::{self, X_REQUEST_ID};
use crate::server::service::{
    RequestKind, ServerSpanOptions, request_span, split_host_port, start_server_span,
};

/// [`Layer`](tower_layer::Layer) that applies the [`GrpcServer`] middleware to a tonic server:
/// `tonic::transport::Server::builder().layer(layer)`.
///
/// Cheap to clone. See the [module docs](super) for what is recorded.
///
/// ```
/// use sightline_http::grpc::GrpcServerLayer;
///
/// let layer = GrpcServerLayer::builder()
///     .tracer(opentelemetry::global::tracer("greeter"))
///     .known_services(["sightline.example.v1.Greeter"])
///     .build();
/// # drop(layer);
/// ```
#[derive(Clone)]
pub struct GrpcServerLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for GrpcServerLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServerLayer")
            .field("tracing", &self.shared.tracer.is_some())
            .field("metrics", &self.shared.metrics_enabled())
            .field("access_log", &self.shared.access_log)
            .finish_non_exhaustive()
    }
}

impl GrpcServerLayer {
    /// A builder with every part switched on except OpenTelemetry spans, which need a tracer.
    pub fn builder() -> GrpcServerLayerBuilder {
        GrpcServerLayerBuilder::default()
    }
}

impl<S> tower_layer::Layer<S> for GrpcServerLayer {
    type Service = GrpcServer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcServer {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Builder of a [`GrpcServerLayer`].
pub struct GrpcServerLayerBuilder {
    tracer: Option<BoxedTracer>,
    propagator: Propagator,
    request_id_header: Option<HeaderName>,
    metrics: bool,
    message_counts: bool,
    access_log: bool,
    access_log_levels: AccessLogLevels,
    trace_health_checks: bool,
    known_services: Option<Vec<Box<str>>>,
    error_codes: CodeSet,
    legacy_semconv: bool,
    attach_context: bool,
    random_trace_ids: bool,
    metadata: HeaderCaptureConfig,
}

impl Default for GrpcServerLayerBuilder {
    fn default() -> Self {
        Self {
            tracer: None,
            propagator: Propagator::new(),
            request_id_header: Some(X_REQUEST_ID),
            metrics: cfg!(feature = "metrics"),
            message_counts: false,
            access_log: true,
            access_log_levels: AccessLogLevels::DEFAULT,
            trace_health_checks: false,
            known_services: None,
            error_codes: CodeSet::SERVER_ERRORS,
            legacy_semconv: false,
            attach_context: true,
            random_trace_ids: true,
            metadata: HeaderCaptureConfig::default(),
        }
    }
}

impl std::fmt::Debug for GrpcServerLayerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServerLayerBuilder")
            .field("tracing", &self.tracer.is_some())
            .field("known_services", &self.known_services)
            .field("error_codes", &self.error_codes)
            .finish_non_exhaustive()
    }
}

impl GrpcServerLayerBuilder {
    /// The OpenTelemetry tracer that makes the server spans.
    ///
    /// Defaults to none: no span is made, and log lines carry only the request ID.
    pub fn tracer<T>(mut self, tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Send + Sync + 'static,
    {
        self.tracer = Some(BoxedTracer::new(Box::new(tracer)));
        self
    }

    /// Which trace context formats are read from the metadata.
    ///
    /// Defaults to [`Propagator::new`]: W3C, then B3, and W3C baggage.
    pub fn propagator(mut self, propagator: Propagator) -> Self {
        self.propagator = propagator;
        self
    }

    /// The request ID metadata key. Defaults to `x-request-id`.
    pub fn request_id_header(mut self, name: HeaderName) -> Self {
        self.request_id_header = Some(name);
        self
    }

    /// Switches request IDs off.
    pub fn without_request_id(mut self) -> Self {
        self.request_id_header = None;
        self
    }

    /// Whether to record `rpc.server.call.duration` and `rpc.server.active_calls`.
    ///
    /// Defaults to `true` when the `metrics` feature is on.
    pub fn metrics(mut self, enabled: bool) -> Self {
        self.metrics = enabled && cfg!(feature = "metrics");
        self
    }

    /// Whether to record the messages received and sent per call
    /// (`rpc.server.requests_per_rpc`, `rpc.server.responses_per_rpc`).
    ///
    /// Defaults to `false`: it reads every message's 5-byte prefix.
    pub fn message_counts(mut self, enabled: bool) -> Self {
        self.message_counts = enabled;
        self
    }

    /// Whether to emit one access-log event (target `sightline_http::access`) per call;
    /// health checks never do.
    ///
    /// Defaults to `true`.
    pub fn access_log(mut self, enabled: bool) -> Self {
        self.access_log = enabled;
        self
    }

    /// The level of the access-log event by outcome: `OK` is a success, the
    /// [error codes](Self::error_codes) are server errors, any other code (`NOT_FOUND`,
    /// `CANCELLED`, ...) a client error.
    ///
    /// Defaults to [`AccessLogLevels::DEFAULT`]: INFO, WARN and ERROR.
    pub fn access_log_levels(mut self, levels: AccessLogLevels) -> Self {
        self.access_log_levels = levels;
        self
    }

    /// Whether calls to `grpc.health.v1.Health` make spans.
    ///
    /// Defaults to `false`: probes every few seconds would crowd the traces. Their metrics
    /// are recorded either way.
    pub fn trace_health_checks(mut self, enabled: bool) -> Self {
        self.trace_health_checks = enabled;
        self
    }

    /// The services (`pkg.Service`) or methods (`pkg.Service/Method`) this server serves;
    /// calls to other services are recorded as `rpc.method = "_OTHER"` from their start.
    ///
    /// Defaults to none. Either way a method is recognised once a handler answered a call to
    /// it: a response head without a status (a streamed answer, even one the caller then
    /// cancels), or a status other than `UNIMPLEMENTED` (tonic's answer to a method a service
    /// lacks), `UNAVAILABLE` or `RESOURCE_EXHAUSTED` (what limits in front of the handlers
    /// answer). Until then its calls are `_OTHER`, so a call abandoned before any answer, as
    /// a method's very first, is `_OTHER`. A method listed itself (`pkg.Service/Method`) is
    /// recognised at once, and a handler that answers `UNIMPLEMENTED` keeps its name. tonic's
    /// generated servers name their service in `NamedService::NAME`.
    pub fn known_services<I, N>(mut self, services: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: Into<Box<str>>,
    {
        self.known_services = Some(services.into_iter().map(Into::into).collect());
        self
    }

    /// The status codes that are errors: span status Error and `error.type`.
    ///
    /// Defaults to [`CodeSet::SERVER_ERRORS`]. For example, to count `NOT_FOUND` answers
    /// as errors too: `CodeSet::SERVER_ERRORS.with(Code::NotFound)`.
    pub fn error_codes(mut self, codes: CodeSet) -> Self {
        self.error_codes = codes;
        self
    }

    /// Whether to use the pre-1.38 RPC attribute names (`rpc.system`, `rpc.service`,
    /// `rpc.method` as the method alone, `rpc.grpc.status_code`) in spans and metric labels,
    /// for dashboards built on them.
    ///
    /// Defaults to `false`: the current conventions.
    pub fn legacy_semconv(mut self, legacy: bool) -> Self {
        self.legacy_semconv = legacy;
        self
    }

    /// Whether the server span is the current OpenTelemetry context while the service runs,
    /// so spans made in handlers are its children.
    ///
    /// Defaults to `true`.
    pub fn attach_context(mut self, enabled: bool) -> Self {
        self.attach_context = enabled;
        self
    }

    /// Whether traces this server starts carry the W3C Level 2 `random` flag; see
    /// [`ServerLayerBuilder::random_trace_ids`](crate::server::ServerLayerBuilder::random_trace_ids).
    ///
    /// Defaults to `true`.
    pub fn random_trace_ids(mut self, random: bool) -> Self {
        self.random_trace_ids = random;
        self
    }

    /// Request metadata keys recorded on the server span as `rpc.request.metadata.<key>` (a
    /// string array), per the semantic conventions' opt-in attribute
    /// (`rpc.grpc.request.metadata.<key>` with [`legacy_semconv`](Self::legacy_semconv)).
    /// Values of sensitive keys (`authorization`, `cookie`, `x-api-key`, ...,
    /// and [`sensitive_metadata`](Self::sensitive_metadata)) are recorded as `REDACTED`.
    ///
    /// Defaults to none.
    ///
    /// ```
    /// use http::HeaderName;
    /// use sightline_http::grpc::GrpcServerLayer;
    ///
    /// let layer = GrpcServerLayer::builder()
    ///     .capture_request_metadata([HeaderName::from_static("x-tenant"), http::header::AUTHORIZATION])
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn capture_request_metadata<I>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = HeaderName>,
    {
        self.metadata.request = keys.into_iter().collect();
        self
    }

    /// Response metadata keys (from the response head or the trailers) recorded on the server
    /// span as `rpc.response.metadata.<key>` (`rpc.grpc.response.metadata.<key>` with
    /// [`legacy_semconv`](Self::legacy_semconv)); sensitive values as `REDACTED`.
    ///
    /// Defaults to none.
    pub fn capture_response_metadata<I>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = HeaderName>,
    {
        self.metadata.response = keys.into_iter().collect();
        self
    }

    /// Metadata keys whose captured values are recorded as `REDACTED`, in addition to
    /// [`DEFAULT_SENSITIVE_HEADERS`](crate::DEFAULT_SENSITIVE_HEADERS), which always are.
    pub fn sensitive_metadata<I>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = HeaderName>,
    {
        self.metadata.sensitive = keys.into_iter().collect();
        self
    }

    /// Builds the layer.
    pub fn build(self) -> GrpcServerLayer {
        GrpcServerLayer {
            shared: Arc::new(Shared {
                server: true,
                tracer: self.tracer,
                propagator: self.propagator,
                request_id_header: self.request_id_header,
                access_log: self.access_log,
                access_log_levels: self.access_log_levels,
                message_counts: self.message_counts,
                trace_health_checks: self.trace_health_checks,
                error_codes: self.error_codes,
                legacy_semconv: self.legacy_semconv,
                attach_context: self.attach_context,
                random_trace_ids: self.random_trace_ids,
                methods: MethodTable::new(self.known_services),
                // v1.38 renamed the gRPC-only keys to the system-neutral ones.
                metadata: if self.legacy_semconv {
                    self.metadata.build_with_prefixes(
                        "rpc.grpc.request.metadata.",
                        "rpc.grpc.response.metadata.",
                    )
                } else {
                    self.metadata
                        .build_with_prefixes("rpc.request.metadata.", "rpc.response.metadata.")
                },
                target: None,
                #[cfg(feature = "metrics")]
                metrics: self.metrics.then_some(super::metrics::LabelStyle {
                    legacy: self.legacy_semconv,
                    server: true,
                    target: None,
                }),
            }),
        }
    }
}

/// Middleware that traces, measures and identifies every gRPC call a server answers; see the
/// [module docs](super).
///
/// Made by [`GrpcServerLayer`].
pub struct GrpcServer<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: Clone> Clone for GrpcServer<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for GrpcServer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GrpcServer<S>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>,
    S::Error: std::fmt::Debug + std::fmt::Display + 'static,
    ResBody: http_body::Body,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let start = Instant::now();
        let shared = &self.shared;
        let path = req.uri().path();
        let health_check = method::is_health_check(path);
        let method = shared.methods.resolve(path, false);

        let request_id = shared.request_id_header.as_ref().map(|name| {
            let (id, kept) = request_id::from_headers_or_generate(req.headers(), name);
            if !kept {
                req.headers_mut().insert(name, id.header_value().clone());
            }
            req.extensions_mut().insert(id.clone());
            id
        });

        let active_at_start = match &method {
            Resolved::Known(info) => Some(Arc::clone(info)),
            _ => None,
        };
        #[cfg(feature = "metrics")]
        if let Some(style) = &shared.metrics {
            let info = active_at_start
                .as_deref()
                .unwrap_or_else(|| shared.methods.other());
            style.active(info).increment(1.0);
        }

        let counters = ((shared.access_log && !health_check) || shared.message_counts)
            .then(|| Arc::new(RequestCounters::default()));
        let mut state = Box::new(CallState {
            shared: Arc::clone(shared),
            start,
            method,
            health_check,
            deadline: super::call::grpc_timeout(req.headers()),
            otel_span: None,
            otel_cx: None,
            span: tracing::Span::none(),
            request_id,
            client_addr: client_addr(&req),
            user_agent: req.headers().get(http::header::USER_AGENT).cloned(),
            request: counters.clone(),
            code: None,
            streamed: false,
            response_bytes: 0,
            response_messages: Default::default(),
            active_at_start,
            method_recorded: false,
            finished: false,
        });
        if !health_check || shared.trace_health_checks {
            start_spans(&mut state, &mut req);
        }

        let req = req.map(|body| RequestBody::new(body, counters, shared.message_counts));
        let inner = {
            let _entered = state.span.enter();
            let _attached = state.otel_cx.clone().map(Context::attach);
            self.inner.call(req)
        };
        ResponseFuture::new(inner, state)
    }
}

fn client_addr<B>(req: &Request<B>) -> Option<std::net::SocketAddr> {
    #[cfg(feature = "grpc")]
    if let Some(addr) = req
        .extensions()
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(|info| info.remote_addr())
    {
        return Some(addr);
    }
    crate::server::service::client_addr(req)
}

/// Extracts the remote context and starts the OpenTelemetry and `tracing` spans.
fn start_spans<B>(state: &mut CallState, req: &mut Request<B>) {
    let shared = Arc::clone(&state.shared);
    let mut ids: Option<SpanContext> = None;

    if let Some(tracer) = &shared.tracer {
        let name: Cow<'static, str> = match &state.method {
            Resolved::Known(info) => Cow::Borrowed(info.rpc_method),
            Resolved::Pending(name) => Cow::Owned(name.to_string()),
            Resolved::Other(_) => Cow::Borrowed("grpc"),
        };
        let mut attrs = Vec::with_capacity(8);
        attrs.push(if shared.legacy_semconv {
            KeyValue::new("rpc.system", "grpc")
        } else {
            KeyValue::new("rpc.system.name", "grpc")
        });
        if let Resolved::Known(info) = &state.method {
            push_method_attributes(&shared, info, &state.method, &mut attrs);
            state.method_recorded = true;
        }
        if let Some((host, port)) = req
            .uri()
            .authority()
            .and_then(|a| split_host_port(a.as_str()))
        {
            attrs.push(KeyValue::new(
                "server.address",
                crate::text_cache::host(host),
            ));
            if let Some(port) = port {
                attrs.push(KeyValue::new("server.port", i64::from(port)));
            }
        }
        if let Some(addr) = state.client_addr {
            attrs.push(KeyValue::new(
                "client.address",
                opentelemetry::StringValue::from(crate::text_cache::ip(addr.ip())),
            ));
            attrs.push(KeyValue::new("client.port", i64::from(addr.port())));
        }
        shared.metadata.request(req.headers(), &mut attrs);
        let builder = SpanBuilder::from_name(name)
            .with_kind(SpanKind::Server)
            .with_attributes(attrs);
        let started = start_server_span(
            tracer,
            &ServerSpanOptions {
                propagator: &shared.propagator,
                random_trace_ids: shared.random_trace_ids,
                attach_context: shared.attach_context,
                request_id: state.request_id.as_ref(),
            },
            builder,
            req,
        );
        state.otel_cx = started.cx;
        ids = started.identity.is_valid().then_some(started.identity);
        state.otel_span = Some(started.span);
    }

    state.span = request_span(ids.as_ref(), state.request_id.as_ref(), RequestKind::Grpc);
}
