use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use http::{Request, Response};
use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags,
    TraceId, TraceState, Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_semantic_conventions::attribute;
use sightline_propagation::{Extracted, RemoteContext};
use tower_service::Service;

use super::Shared;
use super::future::ResponseFuture;
use super::route::RouteSlot;
use super::state::{RequestState, RouteRef};
use crate::request_id;
use crate::semconv::{self, METHODS, OTHER_METHOD};

/// Middleware that traces, measures and identifies every request; see the
/// [module docs](super) for what is recorded and when.
///
/// Made by [`ServerLayer`](super::ServerLayer).
pub struct Server<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
    pub(crate) route: Arc<RouteSlot>,
}

impl<S: Clone> Clone for Server<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
            route: Arc::clone(&self.route),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Server<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Response = Response<super::ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let start = Instant::now();
        let shared = &self.shared;
        let method = semconv::method_index(req.method());
        let scheme = semconv::scheme(req.uri(), shared.default_scheme);
        let route = self.resolve_route(&req);

        let request_id = shared.request_id_header.as_ref().map(|name| {
            let (id, kept) = request_id::from_headers_or_generate(req.headers(), name);
            if !kept {
                req.headers_mut().insert(name, id.header_value().clone());
            }
            req.extensions_mut().insert(id.clone());
            id
        });

        #[cfg(feature = "metrics")]
        if let Some(active) = &shared.active_requests {
            active.gauge(method, scheme).increment(1.0);
        }

        let mut state = Box::new(RequestState {
            shared: Arc::clone(shared),
            start,
            method,
            scheme,
            route,
            otel_span: None,
            otel_cx: None,
            span: tracing::Span::none(),
            request_id,
            client_addr: client_addr(&req),
            user_agent: req.headers().get(http::header::USER_AGENT).cloned(),
            request_bytes: content_length(&req),
            status: None,
            trace_flags: 0,
            response_bytes: 0,
            finished: false,
        });
        start_spans(&mut state, &mut req);

        let inner = {
            let _entered = state.span.enter();
            let _attached = state.otel_cx.clone().map(Context::attach);
            self.inner.call(req)
        };
        ResponseFuture::new(inner, state)
    }
}

impl<S> Server<S> {
    fn resolve_route<B>(&self, req: &Request<B>) -> RouteRef {
        #[cfg(feature = "axum")]
        if let Some(matched) = req.extensions().get::<axum::extract::MatchedPath>() {
            let template = matched.as_str();
            return match self.route.resolve(template, &self.shared.routes) {
                Some(_) => RouteRef::Cached(Arc::clone(&self.route)),
                None => RouteRef::Uncached(Arc::from(template)),
            };
        }
        let _ = req;
        RouteRef::Unmatched
    }
}

pub(crate) fn client_addr<B>(req: &Request<B>) -> Option<std::net::SocketAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return Some(info.0);
    }
    let _ = req;
    None
}

fn content_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Extracts the remote context and starts the OpenTelemetry and `tracing` spans.
fn start_spans<B>(state: &mut RequestState, req: &mut Request<B>) {
    let shared = Arc::clone(&state.shared);
    let mut ids: Option<SpanContext> = None;

    if let Some(tracer) = &shared.tracer {
        let name = match &state.route {
            RouteRef::Uncached(route) => [METHODS[state.method], " ", route].concat().into(),
            RouteRef::Cached(slot) => slot.get().map_or(METHODS[state.method].into(), |info| {
                info.span_name(state.method)
            }),
            RouteRef::Unmatched => METHODS[state.method].into(),
        };
        let builder = SpanBuilder::from_name::<std::borrow::Cow<'static, str>>(name)
            .with_kind(SpanKind::Server)
            .with_attributes(request_attributes(state, req));
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
        state.trace_flags = started.identity.trace_flags().to_u8();
        state.otel_cx = started.cx;
        ids = started.identity.is_valid().then_some(started.identity);
        state.otel_span = Some(started.span);
    }

    state.span = request_span(ids.as_ref(), state.request_id.as_ref(), RequestKind::Http);
}

/// What [`start_server_span`] needs besides the tracer.
pub(crate) struct ServerSpanOptions<'a> {
    pub(crate) propagator: &'a sightline_propagation::Propagator,
    pub(crate) random_trace_ids: bool,
    pub(crate) attach_context: bool,
    pub(crate) request_id: Option<&'a request_id::RequestId>,
}

/// A server span, started.
pub(crate) struct StartedSpan {
    pub(crate) span: opentelemetry::global::BoxedSpan,
    /// The span's identity as children, log lines and propagation see it (with the `random`
    /// flag on a trace this server started).
    pub(crate) identity: SpanContext,
    /// The context attached while the inner service runs: the identity, the baggage and the
    /// request ID.
    pub(crate) cx: Option<Context>,
}

/// Extracts the remote context from the request headers (counting malformed ones) and
/// starts a SERVER span as its child, or as a new root linked to it on a public endpoint.
/// The baggage goes into the request extensions. Shared by the HTTP and gRPC servers.
pub(crate) fn start_server_span<B>(
    tracer: &opentelemetry::global::BoxedTracer,
    options: &ServerSpanOptions<'_>,
    mut builder: SpanBuilder,
    req: &mut Request<B>,
) -> StartedSpan {
    let extracted = options.propagator.extract(req.headers());
    count_rejections(&extracted, req.headers());
    let parent_cx = match &extracted.parent {
        Some(remote) => Context::new().with_remote_span_context(remote_span_context(remote)),
        None => Context::new(),
    };
    if let Some(link) = &extracted.link {
        builder = builder.with_links(vec![opentelemetry::trace::Link::with_context(
            remote_span_context(link),
        )]);
    }
    let span = tracer.build_with_context(builder, &parent_cx);
    let mut identity = span.span_context().clone();
    if extracted.parent.is_none() && options.random_trace_ids && identity.is_valid() {
        // A trace this server starts has a random trace id (the SDK's generator): say so
        // with the Level 2 `random` flag. The SDK sets only `sampled` on roots, so the flag
        // goes on the identity that children, log lines and propagation see.
        identity = SpanContext::new(
            identity.trace_id(),
            identity.span_id(),
            TraceFlags::new(identity.trace_flags().to_u8() | RANDOM_FLAG),
            false,
            identity.trace_state().clone(),
        );
    }
    let cx = options.attach_context.then(|| {
        // The span itself stays with the request state (no lock around it); the context
        // carries only its identity, which is all a child span needs.
        let mut cx = Context::new().with_remote_span_context(identity.clone());
        if let Some(baggage) = extracted.baggage.clone() {
            cx = cx.with_value(baggage);
        }
        if let Some(request_id) = options.request_id {
            cx = cx.with_value(request_id.clone());
        }
        cx
    });
    if let Some(baggage) = extracted.baggage {
        req.extensions_mut().insert(baggage);
    }
    StartedSpan { span, identity, cx }
}

/// What a request span is called in log lines.
#[derive(Clone, Copy)]
pub(crate) enum RequestKind {
    Http,
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    Grpc,
}

/// The `tracing` span of a request: the IDs every log line of the request carries.
pub(crate) fn request_span(
    ids: Option<&SpanContext>,
    request_id: Option<&request_id::RequestId>,
    kind: RequestKind,
) -> tracing::Span {
    use tracing::field::display;

    // One callsite per name: a `tracing` span's name is fixed at its callsite.
    macro_rules! span {
        ($($fields:tt)*) => {
            match kind {
                RequestKind::Http => {
                    tracing::info_span!(target: "sightline_http::server", "HTTP request", $($fields)*)
                }
                RequestKind::Grpc => {
                    tracing::info_span!(target: "sightline_http::server", "gRPC call", $($fields)*)
                }
            }
        };
    }

    let request_id = request_id.map(|id| display(id.as_str()));
    let Some(ids) = ids else {
        return span!(request_id);
    };
    // Formatted on the stack and passed at creation: one dispatch, no `Span::record`.
    let trace_hex = sightline_propagation::TraceId(ids.trace_id().to_bytes()).to_hex();
    let span_hex = sightline_propagation::SpanId(ids.span_id().to_bytes()).to_hex();
    let flags = ids.trace_flags().to_u8();
    let flags_hex = [HEX[usize::from(flags >> 4)], HEX[usize::from(flags & 0xf)]];
    span!(
        trace_id = display(ascii(&trace_hex)),
        span_id = display(ascii(&span_hex)),
        trace_flags = display(ascii(&flags_hex)),
        request_id,
    )
}

const HEX: [u8; 16] = *b"0123456789abcdef";

/// The W3C Trace Context Level 2 `random` trace flag.
pub(crate) const RANDOM_FLAG: u8 = 0x02;

pub(crate) fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

pub(crate) fn remote_span_context(remote: &RemoteContext) -> SpanContext {
    let trace_state = remote
        .tracestate
        .as_ref()
        .and_then(|ts| TraceState::from_key_value(ts.members()).ok())
        .unwrap_or_default();
    SpanContext::new(
        TraceId::from_bytes(remote.trace_id.0),
        SpanId::from_bytes(remote.span_id.0),
        TraceFlags::new(remote.flags.0),
        true,
        trace_state,
    )
}

/// Counts and logs (at DEBUG) headers that were present but rejected. The line names the
/// header and its length, never its text: a malformed header is whatever a client sent, and
/// baggage in particular carries application values.
pub(crate) fn count_rejections(extracted: &Extracted, headers: &http::HeaderMap) {
    let errors = &extracted.errors;
    for (rejected, header) in [
        (errors.traceparent, "traceparent"),
        (errors.tracestate, "tracestate"),
        (errors.baggage, "baggage"),
        (errors.b3, "b3"),
        (errors.jaeger, "uber-trace-id"),
    ] {
        if !rejected {
            continue;
        }
        #[cfg(feature = "metrics")]
        metrics::counter!("sightline.propagation.rejected", "header" => header).increment(1);
        tracing::debug!(
            target: "sightline_http::propagation",
            header,
            len = headers.get_all(header).iter().map(|v| v.len()).sum::<usize>(),
            "ignored a malformed trace context header"
        );
    }
}

/// The request attributes of the server span, per the stable HTTP semantic conventions.
fn request_attributes<B>(state: &RequestState, req: &Request<B>) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(13);
    attrs.push(KeyValue::new(
        attribute::HTTP_REQUEST_METHOD,
        METHODS[state.method],
    ));
    if state.method == OTHER_METHOD {
        attrs.push(KeyValue::new(
            attribute::HTTP_REQUEST_METHOD_ORIGINAL,
            req.method().as_str().to_owned(),
        ));
    }
    attrs.push(KeyValue::new(
        attribute::URL_PATH,
        req.uri().path().to_owned(),
    ));
    attrs.push(KeyValue::new(attribute::URL_SCHEME, state.scheme));
    if let Some(query) = req.uri().query() {
        attrs.push(KeyValue::new(
            attribute::URL_QUERY,
            super::query::redact(query, &state.shared.sensitive_query_params),
        ));
    }
    match &state.route {
        RouteRef::Uncached(route) => {
            attrs.push(KeyValue::new(attribute::HTTP_ROUTE, Arc::clone(route)));
        }
        RouteRef::Cached(slot) => {
            if let Some(route) = slot.get().and_then(|info| info.http_route()) {
                attrs.push(KeyValue::new(attribute::HTTP_ROUTE, Arc::clone(route)));
            }
        }
        RouteRef::Unmatched => {}
    }
    attrs.push(KeyValue::new(
        attribute::NETWORK_PROTOCOL_VERSION,
        semconv::protocol_version(req.version()),
    ));
    if let Some((host, port)) = server_authority(req) {
        attrs.push(KeyValue::new(
            attribute::SERVER_ADDRESS,
            crate::text_cache::host(host),
        ));
        if let Some(port) = port {
            attrs.push(KeyValue::new(attribute::SERVER_PORT, i64::from(port)));
        }
    }
    if let Some(addr) = state.client_addr {
        attrs.push(KeyValue::new(
            attribute::CLIENT_ADDRESS,
            opentelemetry::StringValue::from(crate::text_cache::ip(addr.ip())),
        ));
        attrs.push(KeyValue::new(
            attribute::CLIENT_PORT,
            i64::from(addr.port()),
        ));
    }
    if let Some(ua) = state.user_agent.as_ref().map(crate::headers::header_text) {
        attrs.push(KeyValue::new(
            attribute::USER_AGENT_ORIGINAL,
            crate::text_cache::user_agent(&ua),
        ));
    }
    state.shared.headers.request(req.headers(), &mut attrs);
    attrs
}

/// `server.address` and `server.port`: the URI authority (HTTP/2, absolute-form) or the
/// `Host` header.
fn server_authority<B>(req: &Request<B>) -> Option<(&str, Option<u16>)> {
    let authority = match req.uri().authority() {
        Some(authority) => authority.as_str(),
        None => req.headers().get(http::header::HOST)?.to_str().ok()?,
    };
    split_host_port(authority)
}

/// Splits `host[:port]` or `[v6]:port`; `None` for an empty host.
pub(crate) fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    // Userinfo is never recorded.
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

#[cfg(test)]
mod tests {
    use super::split_host_port;

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
}
