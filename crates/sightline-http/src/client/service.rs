use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use http::{Request, Response};
use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanContext, SpanKind, TraceContextExt as _, Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_semantic_conventions::attribute;
use sightline_propagation::{Baggage, InjectContext, SpanId, TraceFlags, TraceId, TraceState};
use tower_service::Service;

use super::Shared;
use super::future::ResponseFuture;
use super::state::CallState;
use crate::request_id::RequestId;
use crate::semconv::{self, METHODS, OTHER_METHOD};

/// Middleware that traces, propagates and measures every outgoing request; see the
/// [module docs](super) for what is recorded and when.
///
/// Made by [`ClientLayer`](super::ClientLayer). The inner service's error must be
/// `Debug + Display + 'static` (every `std::error::Error` is, and so is tower's
/// `Box<dyn Error + Send + Sync>`) so that a failed call can be classified; it is passed on
/// untouched.
///
/// ```
/// use sightline_http::client::{Client, ClientLayer};
/// use tower::ServiceBuilder;
///
/// let client: Client<_> = ServiceBuilder::new()
///     .layer(ClientLayer::builder().build())
///     .service_fn(|_req: http::Request<String>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
///     });
/// # drop(client);
/// ```
pub struct Client<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

impl<S: Clone> Clone for Client<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Client<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Client<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: std::fmt::Debug + std::fmt::Display + 'static,
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
        let parent = Context::current();
        let method = semconv::method_index(req.method());
        let target = Target::of(&req);

        let span = shared.tracer.as_ref().map(|tracer| {
            let name: Cow<'static, str> = if method == OTHER_METHOD {
                "HTTP".into()
            } else {
                METHODS[method].into()
            };
            let builder = SpanBuilder::from_name(name)
                .with_kind(SpanKind::Client)
                .with_attributes(request_attributes(shared, &req, method, &target));
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
            server_address: target.host,
            server_port: target.port,
            span,
            status: None,
            finished: false,
        });
        ResponseFuture::new(self.inner.call(req), state)
    }
}

/// What every client middleware writes into an outgoing request: the trace context of its
/// client span (or, without one, the caller's), the caller's baggage, and the caller's request
/// ID when the request has none.
pub(crate) fn propagate(
    propagator: &sightline_propagation::Propagator,
    request_id_header: Option<&http::HeaderName>,
    span: Option<&opentelemetry::global::BoxedSpan>,
    parent: &Context,
    headers: &mut http::HeaderMap,
) {
    let span_context = match span {
        Some(span) => span.span_context().clone(),
        None => parent.span().span_context().clone(),
    };
    inject_headers(propagator, &span_context, parent.get::<Baggage>(), headers);
    if let Some(name) = request_id_header
        && !headers.contains_key(name)
        && let Some(id) = parent.get::<RequestId>()
    {
        headers.insert(name, id.header_value().clone());
    }
}

/// Writes the configured trace-context formats and the baggage into the request headers.
fn inject_headers(
    propagator: &sightline_propagation::Propagator,
    span_context: &SpanContext,
    baggage: Option<&Baggage>,
    headers: &mut http::HeaderMap,
) {
    if !span_context.is_valid() && baggage.is_none() {
        return;
    }
    let trace_state = span_context.trace_state().header();
    let tracestate = if trace_state.is_empty() {
        None
    } else {
        TraceState::parse([trace_state.as_bytes()]).ok()
    };
    let ctx = InjectContext {
        trace_id: TraceId(span_context.trace_id().to_bytes()),
        span_id: SpanId(span_context.span_id().to_bytes()),
        flags: TraceFlags(span_context.trace_flags().to_u8()),
        tracestate: tracestate.as_ref(),
        baggage,
        b3_debug: false,
    };
    propagator.inject(&ctx, headers);
}

/// The upstream of a call: `server.address`, `server.port` and the parts of `url.full`.
struct Target {
    scheme: &'static str,
    host: Option<Arc<str>>,
    port: u16,
}

impl Target {
    fn of<B>(req: &Request<B>) -> Self {
        let uri = req.uri();
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => "https",
            _ => "http",
        };
        let authority = match uri.authority() {
            Some(authority) => Some(authority.as_str()),
            None => req
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok()),
        };
        let split = authority.and_then(split_host_port);
        let default_port = if scheme == "https" { 443 } else { 80 };
        Self {
            scheme,
            host: split.map(|(host, _)| Arc::from(host)),
            port: split.and_then(|(_, port)| port).unwrap_or(default_port),
        }
    }
}

/// The request attributes of the client span, per the stable HTTP semantic conventions.
fn request_attributes<B>(
    shared: &Shared,
    req: &Request<B>,
    method: usize,
    target: &Target,
) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(6);
    attrs.push(KeyValue::new(
        attribute::HTTP_REQUEST_METHOD,
        METHODS[method],
    ));
    if method == OTHER_METHOD {
        attrs.push(KeyValue::new(
            attribute::HTTP_REQUEST_METHOD_ORIGINAL,
            req.method().as_str().to_owned(),
        ));
    }
    if let Some(host) = &target.host {
        attrs.push(KeyValue::new(attribute::SERVER_ADDRESS, Arc::clone(host)));
    }
    attrs.push(KeyValue::new(
        attribute::SERVER_PORT,
        i64::from(target.port),
    ));
    attrs.push(KeyValue::new(
        attribute::URL_FULL,
        url_full(req.uri(), target, &shared.sensitive_query_params),
    ));
    shared.headers.request(req.headers(), &mut attrs);
    attrs
}

/// `url.full`: scheme, authority without userinfo, path and the query with sensitive values
/// redacted. A relative URI keeps its own form, with the `Host` header as authority if any.
fn url_full(uri: &http::Uri, target: &Target, sensitive: &[Box<str>]) -> String {
    let mut out = String::with_capacity(
        uri.authority().map_or(0, |a| a.as_str().len())
            + uri.path().len()
            + uri.query().map_or(0, str::len)
            + 24,
    );
    let authority = uri
        .authority()
        .map(|a| a.as_str().rsplit_once('@').map_or(a.as_str(), |(_, a)| a));
    match (authority, &target.host) {
        (Some(authority), _) => {
            out.push_str(uri.scheme_str().unwrap_or(target.scheme));
            out.push_str("://");
            out.push_str(authority);
        }
        (None, Some(host)) => {
            out.push_str(target.scheme);
            out.push_str("://");
            if host.contains(':') {
                out.push('[');
                out.push_str(host);
                out.push(']');
            } else {
                out.push_str(host);
            }
            let default_port = if target.scheme == "https" { 443 } else { 80 };
            if target.port != default_port {
                out.push(':');
                out.push_str(itoa::Buffer::new().format(target.port));
            }
        }
        (None, None) => {}
    }
    out.push_str(uri.path());
    if let Some(query) = uri.query() {
        out.push('?');
        out.push_str(&crate::server::query::redact(query, sensitive));
    }
    out
}

/// Splits `host[:port]` or `[v6]:port` (userinfo dropped); `None` for an empty host.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
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
    use super::*;

    fn full(uri: &str) -> String {
        let req = Request::builder().uri(uri).body(()).unwrap();
        let target = Target::of(&req);
        url_full(req.uri(), &target, &["token".into()])
    }

    #[test]
    fn url_full_drops_userinfo_and_redacts() {
        assert_eq!(
            full("https://user:pw@api.example.com:8443/a/b?token=s3cret&q=1"),
            "https://api.example.com:8443/a/b?token=REDACTED&q=1"
        );
        assert_eq!(full("http://[::1]:3000/"), "http://[::1]:3000/");
        assert_eq!(full("/relative?x=1"), "/relative?x=1");
    }

    #[test]
    fn ports_default_by_scheme() {
        let port = |uri: &str| Target::of(&Request::builder().uri(uri).body(()).unwrap()).port;
        assert_eq!(port("https://example.com/"), 443);
        assert_eq!(port("http://example.com/"), 80);
        assert_eq!(port("http://example.com:8080/"), 8080);
    }
}
