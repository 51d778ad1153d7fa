//! What crosses the wire besides the payload: the trace context and baggage (extracted by
//! servers, counting what they reject; injected by clients) and the request ID (kept or
//! generated and returned by servers, forwarded by clients).

use http::{HeaderMap, HeaderName, Request};
use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use sightline_propagation::{Baggage, Extracted, InjectContext, Propagator, RemoteContext};

use crate::request_id::{self, RequestId};

/// The trace context formats a server reads, with every rejected header counted in
/// `sightline.propagation.rejected` and logged at DEBUG.
pub(crate) fn extract(propagator: &Propagator, headers: &HeaderMap) -> Extracted {
    let extracted = propagator.extract(headers);
    count_rejections(&extracted, headers);
    extracted
}

/// Counts and logs (at DEBUG) headers that were present but rejected. The line names the
/// header and its length, never its text: a malformed header is whatever a client sent, and
/// baggage in particular carries application values.
fn count_rejections(extracted: &Extracted, headers: &HeaderMap) {
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

/// A caller's `tracestate` that OpenTelemetry's `TraceState` refuses (its key rule is Level
/// 1's: one `@`, at most 13 characters after it), kept in the context so that outgoing calls
/// of the same trace still carry it, as Level 2 requires.
#[derive(Clone, Debug)]
pub(crate) struct CarriedTracestate {
    trace_id: TraceId,
    state: sightline_propagation::TraceState,
}

impl CarriedTracestate {
    /// The caller's tracestate, when `remote` has one that `span_context` could not hold.
    pub(crate) fn of(remote: &RemoteContext, span_context: &SpanContext) -> Option<Self> {
        let state = remote.tracestate.as_ref()?;
        span_context
            .trace_state()
            .header()
            .is_empty()
            .then(|| Self {
                trace_id: span_context.trace_id(),
                state: state.clone(),
            })
    }
}

/// An extracted remote context as an OpenTelemetry span context.
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

/// What a client writes into an outgoing request: the trace context of `span_context` (its
/// client span, or without one the caller's), the caller's baggage, and the caller's request
/// ID when the request has none.
pub(crate) fn inject(
    propagator: &Propagator,
    request_id_header: Option<&HeaderName>,
    span_context: &SpanContext,
    parent: &Context,
    headers: &mut HeaderMap,
) {
    let baggage = parent.get::<Baggage>();
    if span_context.is_valid() || baggage.is_some() {
        let trace_state = span_context.trace_state().header();
        let tracestate = if trace_state.is_empty() {
            parent
                .get::<super::span::ServerScope>()
                .and_then(|scope| scope.carried.as_ref())
                .filter(|carried| carried.trace_id == span_context.trace_id())
                .map(|carried| carried.state.clone())
        } else {
            sightline_propagation::TraceState::parse([trace_state.as_bytes()]).ok()
        };
        let ctx = InjectContext {
            trace_id: sightline_propagation::TraceId(span_context.trace_id().to_bytes()),
            span_id: sightline_propagation::SpanId(span_context.span_id().to_bytes()),
            flags: sightline_propagation::TraceFlags(span_context.trace_flags().to_u8()),
            tracestate: tracestate.as_ref(),
            baggage,
            b3_debug: false,
        };
        propagator.inject(&ctx, headers);
    }
    if let Some(name) = request_id_header
        && !headers.contains_key(name)
        && let Some(id) = parent.get::<RequestId>().or_else(|| {
            parent
                .get::<super::span::ServerScope>()
                .and_then(|scope| scope.request_id.as_ref())
        })
    {
        headers.insert(name, id.header_value().clone());
    }
}

/// A server's request ID: the request's own when well-formed, else a new one written back to
/// the request headers; inserted as a [`RequestId`] extension either way.
pub(crate) fn accept_request_id<B>(
    header: Option<&HeaderName>,
    req: &mut Request<B>,
) -> Option<RequestId> {
    let name = header?;
    let (id, kept) = request_id::from_headers_or_generate(req.headers(), name);
    if !kept {
        req.headers_mut().insert(name, id.header_value().clone());
    }
    req.extensions_mut().insert(id.clone());
    Some(id)
}

/// Sets a server's request ID on its response.
pub(crate) fn return_request_id(
    header: Option<&HeaderName>,
    id: Option<&RequestId>,
    headers: &mut HeaderMap,
) {
    if let (Some(name), Some(id)) = (header, id) {
        headers.insert(name, id.header_value().clone());
    }
}
