//! Where spans start and end: the SERVER span (a child of the caller's context, or a new root
//! linked to it on a public endpoint), the `tracing` span that carries the ids into log lines,
//! and the CLIENT span whose identity is propagated.

use std::borrow::Cow;
use std::time::SystemTime;

use http::Request;
use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanContext, SpanKind, Status, TraceContextExt as _, TraceFlags,
};
use opentelemetry::{Context, KeyValue};

use opentelemetry_semantic_conventions::attribute;

use super::classify::HttpError;
use super::config::Common;
use super::propagate::{CarriedTracestate, extract, inject, remote_span_context};
use super::semconv::{METHODS, OTHER_METHOD};
use super::tracer::CallSpan;
use crate::request_id::RequestId;

/// The W3C Trace Context Level 2 `random` trace flag.
const RANDOM_FLAG: u8 = 0x02;

/// What a server's request span is called in log lines.
#[derive(Clone, Copy)]
pub(crate) enum RequestKind {
    Http,
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    Grpc,
}

/// A SERVER span's name and attributes, made before the remote context is extracted.
pub(crate) fn server_builder(name: Cow<'static, str>, attrs: Vec<KeyValue>) -> SpanBuilder {
    SpanBuilder::from_name(name)
        .with_kind(SpanKind::Server)
        .with_attributes(attrs)
}

/// What a server call keeps in the context it attaches, besides the span and the baggage.
pub(crate) struct ServerScope {
    /// The request ID, which client calls made inside forward.
    pub(crate) request_id: Option<RequestId>,
    /// A caller's `tracestate` that OpenTelemetry's `TraceState` refuses, carried to client
    /// calls.
    pub(crate) carried: Option<CarriedTracestate>,
    /// The context holding the server span alone: where [`crate::server_span`] edits go,
    /// even from inside a child span that is the current one.
    pub(crate) span_cx: Context,
}

/// The spans of a server call.
pub(crate) struct ServerSpans {
    /// The OpenTelemetry span, ended when the call ends: in `cx` when there is one.
    pub(crate) otel: Option<CallSpan>,
    /// The span as an OpenTelemetry context, attached while the inner service runs: the
    /// span (which handlers reach through `Context::current()`), the baggage and the request
    /// ID.
    pub(crate) cx: Option<Context>,
    /// The `tracing` span every log line of the call is written in.
    pub(crate) span: tracing::Span,
    /// The trace flags children and callers see (the span's, plus `random` on a new trace).
    pub(crate) trace_flags: u8,
}

impl ServerSpans {
    /// No span at all (an untraced health check).
    pub(crate) fn none() -> Self {
        Self {
            otel: None,
            cx: None,
            span: tracing::Span::none(),
            trace_flags: 0,
        }
    }

    /// Extracts the remote context from the request headers (counting malformed ones) and
    /// starts a SERVER span from `builder` as its child, or as a new root linked to it on a
    /// public endpoint, when the layer has a tracer; then the `tracing` span. The baggage goes
    /// into the request extensions.
    pub(crate) fn start<B>(
        common: &Common,
        kind: RequestKind,
        request_id: Option<&RequestId>,
        req: &mut Request<B>,
        builder: impl FnOnce(&Request<B>) -> SpanBuilder,
    ) -> Self {
        let Some(tracer) = &common.tracer else {
            return Self {
                span: request_span(None, request_id, kind),
                ..Self::none()
            };
        };
        let mut builder = builder(req);
        let extracted = extract(&common.propagator, req.headers());
        let (parent_cx, carried) = match &extracted.parent {
            Some(remote) => {
                let remote_cx = remote_span_context(remote);
                let carried = CarriedTracestate::of(remote, &remote_cx);
                (Context::new().with_remote_span_context(remote_cx), carried)
            }
            None => (Context::new(), None),
        };
        if let Some(link) = &extracted.link {
            builder = builder.with_links(vec![opentelemetry::trace::Link::with_context(
                remote_span_context(link),
            )]);
        }
        let (otel, identity, cx) = if common.attach_context {
            // The span goes into the context the inner service runs in: handlers edit it
            // through `Context::current().span()`, children inherit its identity.
            let (mut cx, identity) = tracer.start_in_context(builder, &parent_cx, &|own| {
                identity(common, own, parent_cx.span().span_context())
            });
            let otel = CallSpan::InContext {
                cx: cx.clone(),
                identity: identity.clone(),
            };
            // One value for what the call adds (each `with_value` copies the context's map).
            let scope = ServerScope {
                request_id: request_id.cloned(),
                carried,
                span_cx: cx.clone(),
            };
            if let Some(baggage) = extracted.baggage.clone() {
                cx = cx.with_value(baggage);
            }
            cx = cx.with_value(scope);
            (otel, identity, Some(cx))
        } else {
            let otel = tracer.start_owned(builder, &parent_cx);
            let identity = identity(common, otel.span_context(), parent_cx.span().span_context());
            (CallSpan::Owned(otel), identity, None)
        };
        if let Some(baggage) = extracted.baggage {
            req.extensions_mut().insert(baggage);
        }
        let ids = identity.is_valid().then_some(&identity);
        Self {
            span: request_span(ids, request_id, kind),
            trace_flags: identity.trace_flags().to_u8(),
            otel: Some(otel),
            cx,
        }
    }
}

/// A span's identity as children, log lines and propagation see it, with the Level 2 `random`
/// flag (§3.2.2.5.2) right:
/// - a trace this layer starts has a random trace id (the SDK's generator), which the flag
///   says; the SDK sets only `sampled` on roots;
/// - a span that continues `parent`'s trace carries `parent`'s flag, set or unset: the SDK
///   keeps the parent's flags on a sampled span but writes `00` on one it drops, and an
///   unsampled caller's `random` must still go out on our calls.
///
/// The flag goes on the identity, not the exported span.
fn identity(common: &Common, identity: &SpanContext, parent: &SpanContext) -> SpanContext {
    if !identity.is_valid() {
        return identity.clone();
    }
    let flags = identity.trace_flags().to_u8();
    let random = if parent.is_valid() && parent.trace_id() == identity.trace_id() {
        parent.trace_flags().to_u8() & RANDOM_FLAG
    } else if common.random_trace_ids {
        RANDOM_FLAG
    } else {
        flags & RANDOM_FLAG
    };
    if flags & RANDOM_FLAG == random {
        return identity.clone();
    }
    SpanContext::new(
        identity.trace_id(),
        identity.span_id(),
        TraceFlags::new((flags & !RANDOM_FLAG) | random),
        false,
        identity.trace_state().clone(),
    )
}

/// The spans of a client call.
pub(crate) struct ClientSpan {
    /// The OpenTelemetry span, ended when the call ends.
    pub(crate) otel: Option<CallSpan>,
    /// What is propagated: the client span's identity, or without one the caller's.
    pub(crate) identity: SpanContext,
    /// The caller's context with the client span in it, attached while the inner service
    /// runs (`attach_context`).
    pub(crate) cx: Option<Context>,
}

impl ClientSpan {
    /// Starts a CLIENT span from `builder` as a child of the current context, when the layer
    /// has a tracer, and injects its context (or without one the caller's), the caller's
    /// baggage and request ID into the request.
    pub(crate) fn start<B>(
        common: &Common,
        req: &mut Request<B>,
        builder: impl FnOnce(&Request<B>) -> SpanBuilder,
    ) -> Self {
        let parent = Context::current();
        let span = match &common.tracer {
            Some(tracer) => {
                let otel = tracer.start_owned(builder(req).with_kind(SpanKind::Client), &parent);
                let identity = identity(common, otel.span_context(), parent.span().span_context());
                let cx = common
                    .attach_context
                    .then(|| parent.with_remote_span_context(identity.clone()));
                Self {
                    otel: Some(CallSpan::Owned(otel)),
                    identity,
                    cx,
                }
            }
            None => Self {
                otel: None,
                identity: parent.span().span_context().clone(),
                cx: None,
            },
        };
        inject(
            &common.propagator,
            common.request_id_header.as_ref(),
            &span.identity,
            &parent,
            req.headers_mut(),
        );
        span
    }
}

/// Ends a span with its last attributes, and status Error when `error`.
pub(crate) fn end(mut span: CallSpan, attrs: impl IntoIterator<Item = KeyValue>, error: bool) {
    span.set_attributes(attrs);
    if error {
        span.set_status(Status::error(""));
    }
    span.end_with_timestamp(SystemTime::now());
}

/// `http.request.method` (`_OTHER` plus `http.request.method_original` for a method the
/// semantic conventions do not know).
pub(crate) fn http_method_attributes(
    method: usize,
    original: &http::Method,
    attrs: &mut Vec<KeyValue>,
) {
    attrs.push(KeyValue::new(
        attribute::HTTP_REQUEST_METHOD,
        METHODS[method],
    ));
    if method == OTHER_METHOD {
        attrs.push(KeyValue::new(
            attribute::HTTP_REQUEST_METHOD_ORIGINAL,
            original.as_str().to_owned(),
        ));
    }
}

/// Ends an HTTP span: `http.response.status_code`, `error.type`, and status Error for an
/// error answer or a failure.
pub(crate) fn end_http(span: CallSpan, status: Option<http::StatusCode>, error: HttpError) {
    let status =
        status.map(|s| KeyValue::new(attribute::HTTP_RESPONSE_STATUS_CODE, i64::from(s.as_u16())));
    let error_type = error
        .as_str()
        .map(|e| KeyValue::new(attribute::ERROR_TYPE, e));
    end(
        span,
        status.into_iter().chain(error_type),
        error.is_span_error(),
    );
}

/// The fields of the `tracing` span of a server call, in order: the contract with
/// `sightline-logging`, whose `SpanFieldNames::default()` reads the same names (a workspace
/// test checks that the two agree, and the test below that the span records exactly these).
pub const REQUEST_SPAN_FIELDS: [&str; 4] = ["trace_id", "span_id", "trace_flags", "request_id"];

/// The `tracing` span of a server call: the IDs every log line of the call carries.
fn request_span(
    ids: Option<&SpanContext>,
    request_id: Option<&RequestId>,
    kind: RequestKind,
) -> tracing::Span {
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

    // As `&str`, not `display(..)`: a subscriber records a string as it is, where a
    // `Display` value goes through the formatting machinery (about 250 instructions a field).
    let request_id = request_id.map(RequestId::as_str);
    let Some(ids) = ids else {
        return span!(request_id);
    };
    // Formatted on the stack and passed at creation: one dispatch, no `Span::record`.
    let trace_hex = sightline_propagation::TraceId(ids.trace_id().to_bytes()).to_hex();
    let span_hex = sightline_propagation::SpanId(ids.span_id().to_bytes()).to_hex();
    let flags = ids.trace_flags().to_u8();
    let flags_hex = [HEX[usize::from(flags >> 4)], HEX[usize::from(flags & 0xf)]];
    span!(
        trace_id = ascii(&trace_hex),
        span_id = ascii(&span_hex),
        trace_flags = ascii(&flags_hex),
        request_id,
    )
}

const HEX: [u8; 16] = *b"0123456789abcdef";

fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod request_span_tests {
    use opentelemetry::trace::{SpanId, TraceId, TraceState};

    use super::*;

    #[test]
    fn the_request_span_records_exactly_the_contracted_fields() {
        let ids = SpanContext::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([2; 8]),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let request_id = RequestId::generate();
        tracing::subscriber::with_default(tracing_subscriber::registry(), || {
            for kind in [RequestKind::Http, RequestKind::Grpc] {
                // Without a trace (no tracer) only the request ID is recorded.
                for (ids, expected) in [
                    (Some(&ids), &REQUEST_SPAN_FIELDS[..]),
                    (None, &REQUEST_SPAN_FIELDS[3..]),
                ] {
                    let span = request_span(ids, Some(&request_id), kind);
                    let meta = span.metadata().expect("enabled under a subscriber");
                    let fields: Vec<&str> = meta.fields().iter().map(|f| f.name()).collect();
                    assert_eq!(fields, expected, "{}", meta.name());
                }
            }
        });
    }
}

#[cfg(test)]
mod random_flag_tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

    use super::*;
    use crate::core::classify::Side;
    use crate::core::config::CommonConfig;

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn common(side: Side, provider: &SdkTracerProvider) -> Common {
        let mut config = CommonConfig::new(side);
        config.tracer = Some(crate::core::tracer::LayerTracer::new(
            provider.tracer("random-flag"),
        ));
        config.build_http()
    }

    /// The `traceparent` flags a client call made inside a server call sends on, for a caller
    /// that sent `traceparent` with `flags` (or none).
    fn flags_sent_on(provider: &SdkTracerProvider, flags: Option<&str>) -> String {
        let server = common(Side::Server, provider);
        let client = common(Side::Client, provider);
        let mut incoming = Request::new(());
        if let Some(flags) = flags {
            let value = format!("00-{TRACE_ID}-00f067aa0ba902b7-{flags}");
            incoming
                .headers_mut()
                .insert("traceparent", value.parse().expect("valid header value"));
        }
        let spans = ServerSpans::start(&server, RequestKind::Http, None, &mut incoming, |_| {
            server_builder("GET /".into(), Vec::new())
        });
        let cx = spans.cx.clone().expect("a server attaches its context");
        let _guard = cx.attach();
        let mut outgoing = Request::new(());
        let _client = ClientSpan::start(&client, &mut outgoing, |_| SpanBuilder::from_name("GET"));
        let sent = outgoing.headers()["traceparent"]
            .to_str()
            .expect("ASCII")
            .to_owned();
        if flags.is_some() {
            assert!(
                sent.contains(TRACE_ID),
                "the caller's trace continues: {sent}"
            );
        }
        sent[53..].to_owned()
    }

    #[test]
    fn the_random_flag_goes_on_as_it_came_in_sampled_or_not() {
        // Parent-based, as the SDK's default: an unsampled caller makes every span a dropped one.
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .build();
        for (incoming, outgoing, rule) in [
            (
                "02",
                "02",
                "unsampled and random: random kept (Level 2 §3.2.2.5.2)",
            ),
            ("00", "00", "unsampled, not random: random stays unset"),
            ("03", "03", "sampled and random"),
            ("01", "01", "sampled, not random: random stays unset"),
            ("fe", "02", "unknown bits cleared, random kept, unsampled"),
        ] {
            assert_eq!(flags_sent_on(&provider, Some(incoming)), outgoing, "{rule}");
        }
        assert_eq!(
            flags_sent_on(&provider, None),
            "03",
            "a trace this server starts is random"
        );

        // A sampler that drops everything: a new trace is still random.
        let never = SdkTracerProvider::builder()
            .with_sampler(Sampler::AlwaysOff)
            .build();
        assert_eq!(flags_sent_on(&never, None), "02", "a new, unsampled trace");
        assert_eq!(
            flags_sent_on(&never, Some("02")),
            "02",
            "continued, dropped"
        );
    }
}
