//! `ExportTraceServiceRequest`, encoded from the SDK's `SpanData`.

use opentelemetry::InstrumentationScope;
use opentelemetry::trace::{SpanId, SpanKind, Status as SpanStatus};
use opentelemetry_sdk::trace::SpanData;

use crate::wire::*;

fn kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// `SpanFlags`: the W3C flags, plus "the parent's remoteness is known" (0x100) and "the
/// parent is remote" (0x200).
fn span_flags(trace_flags: u8, remote: bool) -> u32 {
    u32::from(trace_flags) | 0x100 | if remote { 0x200 } else { 0 }
}

// Status: message = 2, code = 3.

fn status_parts(status: &SpanStatus) -> (&str, u64) {
    match status {
        SpanStatus::Unset => ("", 0),
        SpanStatus::Ok => ("", 1),
        SpanStatus::Error { description } => (description.as_ref(), 2),
    }
}

fn put_event(buf: &mut Vec<u8>, event: &opentelemetry::trace::Event) {
    put_opt_fixed64(buf, 1, nanos(event.timestamp));
    put_opt_bytes(buf, 2, event.name.as_bytes());
    put_attributes(buf, 3, &event.attributes);
    put_opt_varint(buf, 4, u64::from(event.dropped_attributes_count));
}

fn put_link(buf: &mut Vec<u8>, link: &opentelemetry::trace::Link) {
    let cx = &link.span_context;
    put_bytes(buf, 1, &cx.trace_id().to_bytes());
    put_bytes(buf, 2, &cx.span_id().to_bytes());
    // `TraceState::header()` builds a string; an empty state (the usual case) costs no
    // allocation.
    put_opt_bytes(buf, 3, cx.trace_state().header().as_bytes());
    put_attributes(buf, 4, &link.attributes);
    put_opt_varint(buf, 5, u64::from(link.dropped_attributes_count));
    put_opt_fixed32(buf, 6, span_flags(cx.trace_flags().to_u8(), cx.is_remote()));
}

// Span: trace_id = 1, span_id = 2, trace_state = 3, parent_span_id = 4, name = 5,
// kind = 6, start_time_unix_nano = 7, end_time_unix_nano = 8, attributes = 9,
// dropped_attributes_count = 10, events = 11, dropped_events_count = 12, links = 13,
// dropped_links_count = 14, status = 15, flags = 16.

fn put_span(buf: &mut Vec<u8>, span: &SpanData) {
    let cx = &span.span_context;
    put_bytes(buf, 1, &cx.trace_id().to_bytes());
    put_bytes(buf, 2, &cx.span_id().to_bytes());
    put_opt_bytes(buf, 3, cx.trace_state().header().as_bytes());
    if span.parent_span_id != SpanId::INVALID {
        put_bytes(buf, 4, &span.parent_span_id.to_bytes());
    }
    put_opt_bytes(buf, 5, span.name.as_bytes());
    put_opt_varint(buf, 6, kind(&span.span_kind));
    put_opt_fixed64(buf, 7, nanos(span.start_time));
    put_opt_fixed64(buf, 8, nanos(span.end_time));
    put_attributes(buf, 9, &span.attributes);
    put_opt_varint(buf, 10, u64::from(span.dropped_attributes_count));
    for event in span.events.iter() {
        put_message(buf, 11, |buf| put_event(buf, event));
    }
    put_opt_varint(buf, 12, u64::from(span.events.dropped_count));
    for link in span.links.iter() {
        put_message(buf, 13, |buf| put_link(buf, link));
    }
    put_opt_varint(buf, 14, u64::from(span.links.dropped_count));
    put_message(buf, 15, |buf| {
        let (message, code) = status_parts(&span.status);
        put_opt_bytes(buf, 2, message.as_bytes());
        put_opt_varint(buf, 3, code);
    });
    // Field 16 was added last; prost writes it last too.
    put_opt_fixed32(
        buf,
        16,
        span_flags(cx.trace_flags().to_u8(), span.parent_span_is_remote),
    );
}

/// Encodes an `ExportTraceServiceRequest` with one `ResourceSpans` (the encoded `resource`
/// message) and one `ScopeSpans` per instrumentation scope, in order of first appearance.
pub(crate) fn encode_request(
    resource: &[u8],
    resource_schema_url: &str,
    spans: &[SpanData],
    buf: &mut Vec<u8>,
) {
    // Group by scope; a batch has one or a few, so a linear search beats hashing.
    let mut scopes: Vec<(&InstrumentationScope, Vec<usize>)> = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        match scopes
            .iter_mut()
            .find(|(scope, _)| **scope == span.instrumentation_scope)
        {
            Some((_, members)) => members.push(i),
            None => scopes.push((&span.instrumentation_scope, vec![i])),
        }
    }
    // A span of a dozen attributes takes about 400 bytes.
    buf.reserve(resource.len() + 512 * spans.len());
    // ResourceSpans: resource = 1, scope_spans = 2, schema_url = 3.
    put_message(buf, 1, |buf| {
        put_bytes(buf, 1, resource);
        for (scope, members) in &scopes {
            // ScopeSpans: scope = 1, spans = 2, schema_url = 3.
            put_message(buf, 2, |buf| {
                put_message(buf, 1, |buf| put_scope(buf, scope));
                for &i in members {
                    put_message(buf, 2, |buf| put_span(buf, &spans[i]));
                }
                put_opt_bytes(buf, 3, scope.schema_url().unwrap_or_default().as_bytes());
            });
        }
        put_opt_bytes(buf, 3, resource_schema_url.as_bytes());
    });
}

#[cfg(test)]
pub(super) mod tests {
    use std::borrow::Cow;
    use std::time::{Duration, UNIX_EPOCH};

    use opentelemetry::trace::{
        Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
    use prost::Message as _;

    use super::*;

    fn attributes(seed: u64) -> Vec<KeyValue> {
        vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("url.path", format!("/users/{seed}")),
            KeyValue::new("http.response.status_code", 200 + seed as i64),
            KeyValue::new("negative", -(seed as i64) - 1),
            KeyValue::new("ratio", 0.25 * seed as f64),
            KeyValue::new("flag", seed.is_multiple_of(2)),
            KeyValue::new("empty", ""),
            KeyValue::new("", "empty key"),
            KeyValue::new("zero", 0_i64),
            KeyValue::new("false", false),
            KeyValue::new(
                "http.request.header.x",
                Value::Array(Array::String(vec![StringValue::from("a"), "ü".into()])),
            ),
            KeyValue::new("ints", Value::Array(Array::I64(vec![1, -2, 0]))),
            KeyValue::new("floats", Value::Array(Array::F64(vec![0.0, 1.5]))),
            KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
            KeyValue::new("none", Value::Array(Array::I64(vec![]))),
        ]
    }

    /// The five span kinds, by number.
    fn kind_of(i: usize) -> SpanKind {
        [
            SpanKind::Server,
            SpanKind::Client,
            SpanKind::Internal,
            SpanKind::Producer,
            SpanKind::Consumer,
        ][i]
            .clone()
    }

    pub(crate) fn span(seed: u64, scope: &InstrumentationScope) -> SpanData {
        let trace_state = if seed.is_multiple_of(3) {
            TraceState::from_key_value([("vendor", "v1"), ("other", "x")]).unwrap()
        } else {
            TraceState::default()
        };
        let mut events = SpanEvents::default();
        if seed % 2 == 1 {
            events.events.push(Event::new(
                "exception",
                UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_000 + seed),
                vec![KeyValue::new("exception.message", "boom")],
                seed as u32,
            ));
            events.events.push(Event::new("", UNIX_EPOCH, vec![], 0));
            events.dropped_count = 2;
        }
        let mut links = SpanLinks::default();
        if seed % 4 == 1 {
            links.links.push(Link::new(
                SpanContext::new(
                    TraceId::from(seed as u128 + 99),
                    SpanId::from(seed + 7),
                    TraceFlags::SAMPLED,
                    true,
                    TraceState::from_key_value([("k", "v")]).unwrap(),
                ),
                vec![KeyValue::new("link.kind", "origin")],
                1,
            ));
            links.dropped_count = 3;
        }
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(u128::MAX - seed as u128),
                SpanId::from(seed + 1),
                TraceFlags::new((seed % 4) as u8),
                false,
                trace_state,
            ),
            parent_span_id: if seed.is_multiple_of(2) {
                SpanId::INVALID
            } else {
                SpanId::from(seed * 1000)
            },
            parent_span_is_remote: seed.is_multiple_of(5),
            span_kind: kind_of((seed % 5) as usize),
            name: Cow::Owned(format!("GET /users/{seed}")),
            start_time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_000 + seed),
            end_time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789 + seed),
            attributes: attributes(seed),
            dropped_attributes_count: (seed % 3) as u32,
            events,
            links,
            status: match seed % 3 {
                0 => Status::Unset,
                1 => Status::Ok,
                _ => Status::error(format!("failed {seed}")),
            },
            instrumentation_scope: scope.clone(),
        }
    }

    /// Decodes our bytes with the real proto types and compares them with the SDK's own
    /// conversion of the same batch.
    fn assert_same_as_sdk(resource: &Resource, spans: Vec<SpanData>) {
        let mut encoded_resource = Vec::new();
        encode_resource(resource, &mut encoded_resource);
        let mut ours = Vec::new();
        let schema_url = resource.schema_url().unwrap_or_default();
        encode_request(&encoded_resource, schema_url, &spans, &mut ours);
        let decoded = ExportTraceServiceRequest::decode(ours.as_slice()).expect("valid protobuf");

        let expected = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                spans,
                &ResourceAttributesWithSchema::from(resource),
            ),
        };
        assert_eq!(decoded, expected);
        // Same fields, same order: the same bytes as prost writes.
        assert!(
            ours == expected.encode_to_vec(),
            "not the bytes prost writes"
        );
    }

    #[test]
    fn a_batch_decodes_to_what_the_sdk_sends() {
        let resource = Resource::builder()
            .with_service_name("checkout")
            .with_attribute(KeyValue::new("service.instance.id", 7_i64))
            .build();
        let http = InstrumentationScope::builder("sightline-http")
            .with_version("0.1.0")
            .build();
        let app = InstrumentationScope::builder("app")
            .with_schema_url("https://opentelemetry.io/schemas/1.40.0")
            .with_attributes([KeyValue::new("scope.attr", true)])
            .build();
        let spans = (0..40)
            .map(|i| span(i, if i % 3 == 0 { &app } else { &http }))
            .collect();
        assert_same_as_sdk(&resource, spans);
    }

    #[test]
    fn empty_and_single_batches() {
        let resource = Resource::builder_empty().build();
        assert_same_as_sdk(&resource, Vec::new());
        let scope = InstrumentationScope::builder("").build();
        assert_same_as_sdk(&resource, vec![span(0, &scope)]);
    }

    #[test]
    fn long_fields_take_multi_byte_lengths() {
        let resource = Resource::builder().with_service_name("s").build();
        let scope = InstrumentationScope::builder("big").build();
        let mut big = span(2, &scope);
        big.attributes
            .push(KeyValue::new("db.query.text", "x".repeat(70_000)));
        big.name = Cow::Owned("n".repeat(200));
        assert_same_as_sdk(&resource, vec![big]);
    }

    mod random {
        use proptest::collection::vec;
        use proptest::prelude::*;

        use super::*;

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                Just(String::new()),
                "[a-z./_]{1,12}",
                any::<String>(),
                "[a-z]{120,300}",
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            prop_oneof![
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::I64),
                any::<f64>()
                    .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
                    .prop_map(Value::F64),
                text().prop_map(Value::from),
                vec(any::<bool>(), 0..4).prop_map(|v| Value::Array(Array::Bool(v))),
                vec(any::<i64>(), 0..4).prop_map(|v| Value::Array(Array::I64(v))),
                vec(-1e9f64..1e9, 0..4).prop_map(|v| Value::Array(Array::F64(v))),
                vec(text(), 0..4).prop_map(|v| {
                    Value::Array(Array::String(
                        v.into_iter().map(StringValue::from).collect(),
                    ))
                }),
            ]
        }

        fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
            vec((text(), value()), 0..8)
                .prop_map(|kvs| kvs.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect())
        }

        prop_compose! {
            fn random_span()(
                ids in (any::<u128>(), 1..u64::MAX, any::<u64>(), any::<u8>(), any::<bool>()),
                kind in 0..5usize,
                name in text(),
                times in (any::<u32>(), any::<u32>()),
                attributes in attributes(),
                dropped in any::<u32>(),
                events in vec((text(), any::<u32>(), attributes(), any::<u32>()), 0..3),
                links in vec((any::<u128>(), any::<u64>(), any::<bool>(), attributes()), 0..2),
                status in (0..3u8, text()),
                scope in 0..3usize,
            ) -> SpanData {
                let (trace_id, span_id, parent, flags, remote) = ids;
                let mut span_events = SpanEvents::default();
                for (name, at, attrs, dropped) in events {
                    span_events.events.push(Event::new(
                        name,
                        UNIX_EPOCH + Duration::from_nanos(u64::from(at)),
                        attrs,
                        dropped,
                    ));
                }
                let mut span_links = SpanLinks::default();
                for (trace, span, remote, attrs) in links {
                    span_links.links.push(Link::new(
                        SpanContext::new(
                            TraceId::from(trace),
                            SpanId::from(span),
                            TraceFlags::SAMPLED,
                            remote,
                            TraceState::default(),
                        ),
                        attrs,
                        0,
                    ));
                }
                let scopes = [
                    InstrumentationScope::builder("sightline-http").with_version("0.1.0").build(),
                    InstrumentationScope::builder("app").build(),
                    InstrumentationScope::builder("").with_schema_url("s").build(),
                ];
                SpanData {
                    span_context: SpanContext::new(
                        TraceId::from(trace_id),
                        SpanId::from(span_id),
                        TraceFlags::new(flags),
                        false,
                        TraceState::default(),
                    ),
                    parent_span_id: SpanId::from(parent),
                    parent_span_is_remote: remote,
                    span_kind: kind_of(kind),
                    name: Cow::Owned(name),
                    start_time: UNIX_EPOCH + Duration::from_nanos(u64::from(times.0)),
                    end_time: UNIX_EPOCH + Duration::from_nanos(u64::from(times.1)),
                    attributes,
                    dropped_attributes_count: dropped,
                    events: span_events,
                    links: span_links,
                    status: match status.0 {
                        0 => Status::Unset,
                        1 => Status::Ok,
                        _ => Status::error(status.1),
                    },
                    instrumentation_scope: scopes[scope].clone(),
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            /// Any batch: the same bytes as prost's encoding of the SDK's conversion.
            #[test]
            fn any_batch_encodes_as_the_sdk_would(
                spans in vec(random_span(), 0..6),
                service in text(),
            ) {
                let resource = Resource::builder_empty()
                    .with_attribute(KeyValue::new("service.name", service))
                    .build();
                assert_same_as_sdk(&resource, spans);
            }
        }
    }

    #[test]
    fn varint_lengths() {
        for (value, len) in [
            (0, 1),
            (1, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (u64::from(u32::MAX), 5),
            (u64::MAX, 10),
        ] {
            let mut buf = Vec::new();
            put_varint(&mut buf, value);
            assert_eq!(buf.len(), len, "{value}");
        }
    }

    #[test]
    fn a_message_of_any_length_gets_a_minimal_length_prefix() {
        for len in [0, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let mut ours = vec![0xaa];
            put_message(&mut ours, 2, |buf| buf.extend(std::iter::repeat_n(7, len)));
            let mut expected = vec![0xaa];
            put_bytes(&mut expected, 2, &vec![7; len]);
            assert_eq!(ours, expected, "{len} bytes");
        }
    }
}
