use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use http::{HeaderName, Request, Response};
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{SpanBuilder, SpanKind, Tracer};
use opentelemetry::{Context, KeyValue};
use sightline_propagation::Propagator;
use tower_service::Service;

use super::Shared;
use super::body::ResponseBody;
use super::call::{CallState, push_method_attributes};
use super::code::CodeSet;
use super::future::ResponseFuture;
use super::method::{MethodTable, Resolved};
use crate::client::service::propagate;
use crate::request_id::X_REQUEST_ID;
use crate::server::service::split_host_port;

/// [`Layer`](tower_layer::Layer) that applies the [`GrpcClient`] middleware to a tonic
/// `Channel`: `ServiceBuilder::new().layer(layer).service(channel)`, then hand the service to
/// a generated client's `new`.
///
/// Cheap to clone. See the [module docs](super) for what is recorded.
///
/// ```
/// use sightline_http::grpc::GrpcClientLayer;
///
/// let layer = GrpcClientLayer::builder()
///     .tracer(opentelemetry::global::tracer("checkout"))
///     .target("http://127.0.0.1:50051")
///     .build();
/// # drop(layer);
/// ```
#[derive(Clone)]
pub struct GrpcClientLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for GrpcClientLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcClientLayer")
            .field("tracing", &self.shared.tracer.is_some())
            .field("metrics", &self.shared.metrics_enabled())
            .field("target", &self.shared.target)
            .finish_non_exhaustive()
    }
}

impl GrpcClientLayer {
    /// A builder with metrics and propagation on and no tracer.
    pub fn builder() -> GrpcClientLayerBuilder {
        GrpcClientLayerBuilder::default()
    }
}

impl<S> tower_layer::Layer<S> for GrpcClientLayer {
    type Service = GrpcClient<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcClient {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Builder of a [`GrpcClientLayer`].
pub struct GrpcClientLayerBuilder {
    tracer: Option<BoxedTracer>,
    propagator: Propagator,
    request_id_header: Option<HeaderName>,
    metrics: bool,
    message_counts: bool,
    target: Option<(Arc<str>, u16)>,
    error_codes: CodeSet,
    legacy_semconv: bool,
}

impl Default for GrpcClientLayerBuilder {
    fn default() -> Self {
        Self {
            tracer: None,
            propagator: Propagator::new(),
            request_id_header: Some(X_REQUEST_ID),
            metrics: cfg!(feature = "metrics"),
            message_counts: false,
            target: None,
            error_codes: CodeSet::ALL_ERRORS,
            legacy_semconv: false,
        }
    }
}

impl std::fmt::Debug for GrpcClientLayerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcClientLayerBuilder")
            .field("tracing", &self.tracer.is_some())
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl GrpcClientLayerBuilder {
    /// The OpenTelemetry tracer that makes the client spans.
    ///
    /// Defaults to none: no span is made; the caller's context is still propagated.
    pub fn tracer<T>(mut self, tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Send + Sync + 'static,
    {
        self.tracer = Some(BoxedTracer::new(Box::new(tracer)));
        self
    }

    /// Which trace context formats are written into the metadata.
    ///
    /// Defaults to [`Propagator::new`]: W3C `traceparent`/`tracestate` and `baggage`.
    pub fn propagator(mut self, propagator: Propagator) -> Self {
        self.propagator = propagator;
        self
    }

    /// The metadata key the caller's request ID is forwarded in. Defaults to `x-request-id`.
    pub fn request_id_header(mut self, name: HeaderName) -> Self {
        self.request_id_header = Some(name);
        self
    }

    /// Whether to record `rpc.client.call.duration`.
    ///
    /// Defaults to `true` when the `metrics` feature is on.
    pub fn metrics(mut self, enabled: bool) -> Self {
        self.metrics = enabled && cfg!(feature = "metrics");
        self
    }

    /// Whether to record the messages received per call (`rpc.client.responses_per_rpc`).
    ///
    /// Defaults to `false`.
    pub fn message_counts(mut self, enabled: bool) -> Self {
        self.message_counts = enabled;
        self
    }

    /// The channel's target (`http://host:port`), for `server.address` and `server.port`:
    /// a tonic client sends requests with the path alone.
    ///
    /// A target that does not parse is ignored; the request's authority is used when it has
    /// one.
    pub fn target(mut self, target: &str) -> Self {
        self.target = target.parse::<http::Uri>().ok().and_then(|uri| {
            let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
            let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                Some("https") => 443,
                _ => 80,
            });
            Some((Arc::from(host), port))
        });
        self
    }

    /// The status codes that are errors: span status Error and `error.type`.
    ///
    /// Defaults to [`CodeSet::ALL_ERRORS`], as the semantic conventions ask of clients.
    pub fn error_codes(mut self, codes: CodeSet) -> Self {
        self.error_codes = codes;
        self
    }

    /// Whether to use the pre-1.38 RPC attribute names; see
    /// [`GrpcServerLayerBuilder::legacy_semconv`](super::GrpcServerLayerBuilder::legacy_semconv).
    pub fn legacy_semconv(mut self, legacy: bool) -> Self {
        self.legacy_semconv = legacy;
        self
    }

    /// Builds the layer.
    pub fn build(self) -> GrpcClientLayer {
        GrpcClientLayer {
            shared: Arc::new(Shared {
                server: false,
                tracer: self.tracer,
                propagator: self.propagator,
                request_id_header: self.request_id_header,
                access_log: false,
                access_log_levels: crate::access::AccessLogLevels::OFF,
                message_counts: self.message_counts,
                trace_health_checks: true,
                error_codes: self.error_codes,
                legacy_semconv: self.legacy_semconv,
                attach_context: false,
                random_trace_ids: false,
                methods: MethodTable::new(None),
                metadata: Default::default(),
                #[cfg(feature = "metrics")]
                metrics: self.metrics.then(|| super::metrics::LabelStyle {
                    legacy: self.legacy_semconv,
                    server: false,
                    target: self.target.clone(),
                }),
                target: self.target,
            }),
        }
    }
}

/// Middleware that traces, propagates and measures every outgoing gRPC call; see the
/// [module docs](super).
///
/// Made by [`GrpcClientLayer`].
pub struct GrpcClient<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: Clone> Clone for GrpcClient<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for GrpcClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcClient")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GrpcClient<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
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
        let parent = Context::current();
        let method = shared.methods.resolve(req.uri().path(), true);

        let span = shared.tracer.as_ref().map(|tracer| {
            let name: Cow<'static, str> = match &method {
                Resolved::Known(info) => Cow::Borrowed(info.rpc_method),
                _ => Cow::Borrowed("grpc"),
            };
            let info = match &method {
                Resolved::Known(info) => info,
                _ => shared.methods.other(),
            };
            let mut attrs = Vec::with_capacity(6);
            push_method_attributes(shared, info, &method, &mut attrs);
            attrs.push(if shared.legacy_semconv {
                KeyValue::new("rpc.system", "grpc")
            } else {
                KeyValue::new("rpc.system.name", "grpc")
            });
            let authority = req
                .uri()
                .authority()
                .and_then(|a| split_host_port(a.as_str()));
            match (&shared.target, authority) {
                (Some((host, port)), _) => {
                    attrs.push(KeyValue::new("server.address", Arc::clone(host)));
                    attrs.push(KeyValue::new("server.port", i64::from(*port)));
                }
                (None, Some((host, port))) => {
                    attrs.push(KeyValue::new(
                        "server.address",
                        crate::text_cache::host(host),
                    ));
                    if let Some(port) = port {
                        attrs.push(KeyValue::new("server.port", i64::from(port)));
                    }
                }
                (None, None) => {}
            }
            let builder = SpanBuilder::from_name(name)
                .with_kind(SpanKind::Client)
                .with_attributes(attrs);
            tracer.build_with_context(builder, &parent)
        });

        propagate(
            &shared.propagator,
            shared.request_id_header.as_ref(),
            span.as_ref(),
            &parent,
            req.headers_mut(),
        );

        let state = Box::new(CallState {
            shared: Arc::clone(shared),
            start,
            method,
            health_check: false,
            deadline: super::call::grpc_timeout(req.headers()),
            otel_span: span,
            otel_cx: None,
            span: tracing::Span::none(),
            request_id: None,
            client_addr: None,
            user_agent: None,
            request: None,
            code: None,
            streamed: false,
            response_bytes: 0,
            response_messages: Default::default(),
            active_at_start: None,
            method_recorded: true,
            finished: false,
        });
        ResponseFuture::new(self.inner.call(req), state)
    }
}
