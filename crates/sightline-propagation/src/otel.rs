//! `opentelemetry::propagation::TextMapPropagator` implementations backed by this crate's
//! codecs (feature `opentelemetry`).
//!
//! Use them where an OpenTelemetry API expects a propagator, e.g.
//! `opentelemetry::global::set_text_map_propagator`, to get this crate's W3C rules (exactly one
//! `traceparent`, strict `tracestate`, the `random` flag kept) and B3 without the Zipkin
//! exporter.
//!
//! ```
//! use opentelemetry::propagation::TextMapPropagator;
//! use opentelemetry::trace::TraceContextExt;
//! use sightline_propagation::otel::W3cTraceContextPropagator;
//! use std::collections::HashMap;
//!
//! let mut carrier = HashMap::new();
//! carrier.insert("traceparent".to_owned(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03".to_owned());
//! let cx = W3cTraceContextPropagator::new().extract(&carrier);
//! let span = cx.span();
//! assert!(span.span_context().is_remote());
//! assert_eq!(span.span_context().trace_flags().to_u8(), 0x03);
//! ```

use opentelemetry::Context;
use opentelemetry::baggage::{BaggageExt, KeyValueMetadata};
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{self as ot, TraceContextExt};

use crate::{
    Baggage, Format, HeaderSink, HeaderSource, InjectContext, Propagator, RemoteContext, SpanId,
    TraceFlags, TraceId, TraceState,
};

struct ExtractorSource<'x>(&'x dyn Extractor);

impl HeaderSource for ExtractorSource<'_> {
    fn get_all<'a>(&'a self, name: &'static str, f: &mut dyn FnMut(&'a [u8])) {
        for v in self.0.get_all(name).unwrap_or_default() {
            f(v.as_bytes());
        }
    }
}

struct InjectorSink<'x>(&'x mut dyn Injector);

impl HeaderSink for InjectorSink<'_> {
    fn set(&mut self, name: &'static str, value: &str) {
        self.0.set(name, value.to_owned());
    }
}

fn span_context(remote: RemoteContext) -> ot::SpanContext {
    let trace_state = remote
        .tracestate
        .and_then(|ts| ot::TraceState::from_key_value(ts.members()).ok())
        .unwrap_or_default();
    ot::SpanContext::new(
        ot::TraceId::from_bytes(remote.trace_id.0),
        ot::SpanId::from_bytes(remote.span_id.0),
        ot::TraceFlags::new(remote.flags.known().0),
        true,
        trace_state,
    )
}

fn extract_trace(propagator: &Propagator, cx: &Context, extractor: &dyn Extractor) -> Context {
    match propagator.extract(&ExtractorSource(extractor)).parent {
        Some(remote) => cx.with_remote_span_context(span_context(remote)),
        None => cx.clone(),
    }
}

fn inject_trace(propagator: &Propagator, cx: &Context, injector: &mut dyn Injector) {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return;
    }
    let header = sc.trace_state().header();
    let tracestate = if header.is_empty() {
        None
    } else {
        TraceState::parse([header.as_bytes()]).ok()
    };
    let ctx = InjectContext {
        trace_id: TraceId(sc.trace_id().to_bytes()),
        span_id: SpanId(sc.span_id().to_bytes()),
        flags: TraceFlags(sc.trace_flags().to_u8()),
        tracestate: tracestate.as_ref(),
        baggage: None,
        b3_debug: false,
    };
    propagator.inject(&ctx, &mut InjectorSink(injector));
}

fn fields(propagator: &Propagator) -> Vec<String> {
    propagator.fields().map(str::to_owned).collect()
}

/// W3C Trace Context (`traceparent`, `tracestate`) as an OpenTelemetry propagator.
///
/// A drop-in for `opentelemetry_sdk::propagation::TraceContextPropagator` that applies this
/// crate's rules: exactly one `traceparent` line, version rules of Level 2, the `random` flag
/// kept, `tracestate` dropped whole when invalid, unknown flag bits never written.
#[derive(Clone, Debug)]
pub struct W3cTraceContextPropagator {
    inner: Propagator,
    fields: Vec<String>,
}

impl W3cTraceContextPropagator {
    /// A W3C Trace Context propagator with the default `tracestate` limit (512).
    pub fn new() -> Self {
        let inner = Propagator::builder()
            .extract_formats(&[Format::TraceContext])
            .inject_formats(&[Format::TraceContext])
            .baggage(false)
            .build();
        let fields = fields(&inner);
        W3cTraceContextPropagator { inner, fields }
    }
}

impl Default for W3cTraceContextPropagator {
    fn default() -> Self {
        Self::new()
    }
}

impl TextMapPropagator for W3cTraceContextPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        inject_trace(&self.inner, cx, injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        extract_trace(&self.inner, cx, extractor)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

/// B3 as an OpenTelemetry propagator: reads single then multi-header, writes the form chosen.
///
/// OpenTelemetry's `SpanContext` has no debug or deferred state: B3 debug is read as sampled,
/// a deferred decision as not sampled, and debug is never written.
#[derive(Clone, Debug)]
pub struct B3Propagator {
    inner: Propagator,
    fields: Vec<String>,
}

impl B3Propagator {
    /// Writes the single `b3` header.
    pub fn single() -> Self {
        Self::with_inject(Format::B3Single)
    }

    /// Writes the `x-b3-*` multi-headers.
    pub fn multi() -> Self {
        Self::with_inject(Format::B3Multi)
    }

    fn with_inject(format: Format) -> Self {
        let inner = Propagator::builder()
            .extract_formats(&[Format::B3Single, Format::B3Multi])
            .inject_formats(&[format])
            .baggage(false)
            .build();
        let fields = fields(&inner);
        B3Propagator { inner, fields }
    }
}

impl Default for B3Propagator {
    /// Writes the single `b3` header.
    fn default() -> Self {
        Self::single()
    }
}

impl TextMapPropagator for B3Propagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        inject_trace(&self.inner, cx, injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        extract_trace(&self.inner, cx, extractor)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

/// W3C Baggage as an OpenTelemetry propagator, with this crate's parsing (lenient per member,
/// percent-decoding, properties kept as metadata) and encoding (`+` written as `%2B`).
#[derive(Clone, Debug)]
pub struct W3cBaggagePropagator {
    fields: Vec<String>,
}

impl W3cBaggagePropagator {
    /// A baggage propagator.
    pub fn new() -> Self {
        W3cBaggagePropagator {
            fields: vec![crate::propagator::BAGGAGE.to_owned()],
        }
    }
}

impl Default for W3cBaggagePropagator {
    fn default() -> Self {
        Self::new()
    }
}

impl TextMapPropagator for W3cBaggagePropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let mut baggage = Baggage::new();
        for (key, (value, metadata)) in cx.baggage() {
            baggage.insert_with_properties(key.as_str(), value.as_str(), metadata.as_str());
        }
        let value = baggage.header_value();
        if !value.is_empty() {
            injector.set(crate::propagator::BAGGAGE, value);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let lines = extractor
            .get_all(crate::propagator::BAGGAGE)
            .unwrap_or_default();
        if lines.is_empty() {
            return cx.clone();
        }
        let (baggage, _) = Baggage::parse(lines.iter().map(|l| l.as_bytes()));
        if baggage.is_empty() {
            return cx.clone();
        }
        let entries: Vec<KeyValueMetadata> = baggage
            .iter_with_properties()
            .map(|(k, v, p)| KeyValueMetadata::new(k.to_owned(), v.to_owned(), p))
            .collect();
        cx.with_baggage(entries)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03";

    fn carrier(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn w3c_round_trip() {
        let p = W3cTraceContextPropagator::new();
        let cx = p.extract(&carrier(&[("traceparent", TP), ("tracestate", "a=1,b=2")]));
        assert!(cx.span().span_context().is_valid());
        let mut out = HashMap::new();
        p.inject_context(&cx, &mut out);
        assert_eq!(out.get("traceparent").map(String::as_str), Some(TP));
        assert_eq!(out.get("tracestate").map(String::as_str), Some("a=1,b=2"));
        assert_eq!(
            p.fields().collect::<Vec<_>>(),
            ["traceparent", "tracestate"]
        );
    }

    #[test]
    fn w3c_invalid_is_ignored() {
        let p = W3cTraceContextPropagator::new();
        let upper = TP.to_uppercase();
        let cx = p.extract(&carrier(&[("traceparent", &upper), ("tracestate", "a=1")]));
        assert!(!cx.span().span_context().is_valid());
        let mut out = HashMap::new();
        p.inject_context(&cx, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn b3_round_trip() {
        let single = B3Propagator::single();
        let cx = single.extract(&carrier(&[(
            "b3",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
        )]));
        assert!(cx.span().span_context().is_sampled());
        let mut out = HashMap::new();
        single.inject_context(&cx, &mut out);
        assert_eq!(
            out.get("b3").map(String::as_str),
            Some("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1")
        );
        let mut out = HashMap::new();
        B3Propagator::multi().inject_context(&cx, &mut out);
        assert_eq!(out.get("x-b3-sampled").map(String::as_str), Some("1"));
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn baggage_round_trip() {
        let p = W3cBaggagePropagator::new();
        let cx = p.extract(&carrier(&[("baggage", "user=J.%20Doe;p=1, bad key=2")]));
        assert_eq!(
            cx.baggage().get("user").map(|v| v.as_str().to_owned()),
            Some("J. Doe".to_owned())
        );
        let mut out = HashMap::new();
        p.inject_context(&cx, &mut out);
        assert_eq!(
            out.get("baggage").map(String::as_str),
            Some("user=J.%20Doe;p=1")
        );
    }
}
