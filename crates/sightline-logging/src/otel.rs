//! Ids of spans that `tracing-opentelemetry` bridges to OpenTelemetry (feature `opentelemetry`).
//!
//! A span made by `#[instrument]` or `info_span!` and exported through `tracing-opentelemetry`
//! records no `trace_id` field, yet it is a span of the trace with an id of its own. The
//! OpenTelemetry compatibility spec for logs outside OTLP asks for the ids of the *current*
//! span, so a line inside such a span names that span, and its trace, not an outer one.

use std::sync::OnceLock;

use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use tracing_core::Dispatch;
use tracing_core::dispatcher::WeakDispatch;
use tracing_core::span::Id;

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_into(out: &mut [u8], bytes: &[u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
}

/// One span's OpenTelemetry ids as lowercase hex, ready to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OtelIds {
    pub(crate) trace_id: [u8; 32],
    pub(crate) span_id: [u8; 16],
    pub(crate) trace_flags: [u8; 2],
}

impl OtelIds {
    /// `None` for an invalid (all-zero) context: a span with no tracer behind it.
    pub(crate) fn from_span_context(cx: &SpanContext) -> Option<Self> {
        if !cx.is_valid() {
            return None;
        }
        let mut ids = OtelIds {
            trace_id: [0; 32],
            span_id: [0; 16],
            trace_flags: [0; 2],
        };
        hex_into(&mut ids.trace_id, &cx.trace_id().to_bytes());
        hex_into(&mut ids.span_id, &cx.span_id().to_bytes());
        hex_into(&mut ids.trace_flags, &[cx.trace_flags().to_u8()]);
        Some(ids)
    }
}

/// Finds a span's OpenTelemetry context through the dispatcher the layer was registered with.
#[derive(Debug, Default)]
pub(crate) struct OtelLookup {
    dispatch: OnceLock<WeakDispatch>,
}

impl OtelLookup {
    /// Keeps a weak handle: the subscriber owns the layer, so a strong one would be a cycle.
    pub(crate) fn register(&self, dispatch: &Dispatch) {
        let _ = self.dispatch.set(dispatch.downgrade());
    }

    /// The ids of span `id`, if a `tracing-opentelemetry` layer in the same subscriber made an
    /// OpenTelemetry span for it; `None` if there is no dispatcher to look through. Must be
    /// called with none of the span's extensions borrowed: the bridge locks them (and starts
    /// the span if it had not started).
    pub(crate) fn ids(&self, id: &Id) -> Option<Option<OtelIds>> {
        let dispatch = self.dispatch.get()?.upgrade()?;
        Some(
            tracing_opentelemetry::get_otel_context(id, &dispatch)
                .and_then(|cx| OtelIds::from_span_context(cx.span().span_context())),
        )
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    use super::*;

    #[test]
    fn ids_are_lowercase_hex() {
        let cx = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("trace id"),
            SpanId::from_hex("00f067aa0ba902b7").expect("span id"),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        );
        let ids = OtelIds::from_span_context(&cx).expect("valid");
        assert_eq!(&ids.trace_id, b"4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(&ids.span_id, b"00f067aa0ba902b7");
        assert_eq!(&ids.trace_flags, b"01");
        assert_eq!(
            OtelIds::from_span_context(&SpanContext::empty_context()),
            None
        );
    }
}
