//! The most recent spans, in fixed memory: what `/debug/sightline` shows of recent errors and
//! slow requests, with the span tree each belongs to.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use opentelemetry::Context;
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

/// Spans kept for the trees.
const SPANS: usize = 2048;
/// Server spans kept for "errors" and "slowest".
const CALLS: usize = 512;
/// Longest name kept, in characters.
const NAME: usize = 120;

/// What the page shows of a span: no attribute values, so nothing the redaction rules hide
/// elsewhere can show here.
#[derive(Clone, Debug)]
pub(crate) struct SpanSummary {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) parent: SpanId,
    pub(crate) name: String,
    pub(crate) kind: SpanKind,
    pub(crate) error: bool,
    /// The HTTP status code or the gRPC status.
    pub(crate) status: String,
    pub(crate) duration: Duration,
    pub(crate) end: SystemTime,
}

#[derive(Default)]
struct Rings {
    spans: VecDeque<SpanSummary>,
    calls: VecDeque<SpanSummary>,
}

/// A span processor that keeps summaries of the last spans; cheap to clone (shared).
#[derive(Clone, Default)]
pub(crate) struct RecentSpans {
    rings: Arc<Mutex<Rings>>,
}

impl std::fmt::Debug for RecentSpans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentSpans").finish_non_exhaustive()
    }
}

fn push<T>(ring: &mut VecDeque<T>, item: T, capacity: usize) {
    if ring.len() == capacity {
        ring.pop_front();
    }
    ring.push_back(item);
}

impl RecentSpans {
    fn summary(span: &SpanData) -> SpanSummary {
        let attr = |key: &str| {
            span.attributes
                .iter()
                .find(|kv| kv.key.as_str() == key)
                .map(|kv| kv.value.to_string())
        };
        let status = attr("http.response.status_code")
            .or_else(|| attr("rpc.status_code"))
            .or_else(|| attr("rpc.grpc.status_code"))
            .unwrap_or_default();
        SpanSummary {
            trace_id: span.span_context.trace_id(),
            span_id: span.span_context.span_id(),
            parent: span.parent_span_id,
            name: span.name.chars().take(NAME).collect(),
            kind: span.span_kind.clone(),
            error: matches!(span.status, Status::Error { .. }),
            status: status.chars().take(NAME).collect(),
            duration: span
                .end_time
                .duration_since(span.start_time)
                .unwrap_or_default(),
            end: span.end_time,
        }
    }

    /// The most recent server calls that failed, newest first.
    pub(crate) fn errors(&self, n: usize) -> Vec<SpanSummary> {
        let rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
        rings
            .calls
            .iter()
            .rev()
            .filter(|c| c.error)
            .take(n)
            .cloned()
            .collect()
    }

    /// The slowest of the recent server calls, slowest first.
    pub(crate) fn slowest(&self, n: usize) -> Vec<SpanSummary> {
        let rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
        let mut calls: Vec<SpanSummary> = rings.calls.iter().cloned().collect();
        drop(rings);
        calls.sort_by_key(|call| std::cmp::Reverse(call.duration));
        calls.truncate(n);
        calls
    }

    /// The recent spans of `trace`, in the order they ended.
    pub(crate) fn trace(&self, trace: TraceId) -> Vec<SpanSummary> {
        let rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
        rings
            .spans
            .iter()
            .filter(|s| s.trace_id == trace)
            .cloned()
            .collect()
    }
}

impl SpanProcessor for RecentSpans {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        let summary = Self::summary(&span);
        let mut rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
        if summary.kind == SpanKind::Server {
            push(&mut rings.calls, summary.clone(), CALLS);
        }
        push(&mut rings.spans, summary, SPANS);
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::*;

    #[test]
    fn memory_stays_fixed_under_a_flood() {
        let recent = RecentSpans::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(recent.clone())
            .build();
        let tracer = provider.tracer("flood");
        let long = "x".repeat(10_000);
        for i in 0..20_000 {
            let mut span = tracer
                .span_builder(format!("{long}{i}"))
                .with_kind(SpanKind::Server)
                .start(&tracer);
            if i % 7 == 0 {
                span.set_status(Status::error("boom"));
            }
            span.end();
        }
        let rings = recent.rings.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(rings.spans.len(), SPANS);
        assert_eq!(rings.calls.len(), CALLS);
        assert!(rings.spans.iter().all(|s| s.name.chars().count() <= NAME));
        drop(rings);
        assert_eq!(recent.errors(5).len(), 5);
        assert_eq!(recent.slowest(10).len(), 10);
    }
}
