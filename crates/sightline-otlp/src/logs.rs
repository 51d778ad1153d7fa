//! `ExportLogsServiceRequest`, encoded from the SDK's log records, and the exporter that
//! sends it.
//!
//! As `opentelemetry-proto` does, a record's scope is named after its `tracing` target when it
//! has one (the appender sets it), so each target is a `ScopeLogs` of its own.

use opentelemetry::InstrumentationScope;
use opentelemetry::logs::AnyValue;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, SdkLogRecord};

use crate::config::{ConfigError, ExporterConfig, Signal};
use crate::transport::Sender;
use crate::wire::*;

/// Exports log records by OTLP/gRPC or OTLP/HTTP, for any `SdkLoggerProvider`; encoded as
/// [`SpanExporter`](crate::SpanExporter) encodes spans, straight from the SDK's records.
///
/// ```no_run
/// use opentelemetry_sdk::logs::SdkLoggerProvider;
/// use sightline_otlp::LogExporter;
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let provider = SdkLoggerProvider::builder()
///     .with_batch_exporter(LogExporter::from_env()?)
///     .build();
/// # drop(provider);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LogExporter {
    sender: Sender,
    limits: LogRecordLimits,
}

/// Limits on what one log record carries, applied as it is encoded (the SDK's logger has
/// none): the specification's `OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT` and
/// `OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT`. None by default.
///
/// Attributes past the count are left out and counted in the record's
/// `dropped_attributes_count`; string values (and the strings of a list) longer than the
/// length are cut to that many characters, ending with the marker when one is set.
///
/// ```
/// use sightline_otlp::LogRecordLimits;
///
/// let limits = LogRecordLimits::default()
///     .attribute_count(128)
///     .attribute_value_length(8192)
///     .marked("…[truncated]");
/// # drop(limits);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogRecordLimits {
    attribute_count: Option<usize>,
    value_length: Option<usize>,
    marker: Option<&'static str>,
}

impl LogRecordLimits {
    /// At most `count` attributes per record.
    pub fn attribute_count(mut self, count: usize) -> Self {
        self.attribute_count = Some(count);
        self
    }

    /// String attribute values cut to `length` characters.
    pub fn attribute_value_length(mut self, length: usize) -> Self {
        self.value_length = Some(length);
        self
    }

    /// Ends every cut value with `marker`, within the length.
    pub fn marked(mut self, marker: &'static str) -> Self {
        self.marker = Some(marker);
        self
    }

    /// `value`, or a copy with its strings cut when one is too long.
    fn apply<'v>(&self, value: &'v AnyValue) -> std::borrow::Cow<'v, AnyValue> {
        use std::borrow::Cow;
        let Some(limit) = self.value_length else {
            return Cow::Borrowed(value);
        };
        let cut = |text: &str| crate::limits::shortened(text, limit, self.marker);
        match value {
            AnyValue::String(s) => match cut(s.as_str()) {
                Some(short) => Cow::Owned(AnyValue::String(short)),
                None => Cow::Borrowed(value),
            },
            AnyValue::ListAny(values)
                if values
                    .iter()
                    .any(|v| matches!(v, AnyValue::String(s) if cut(s.as_str()).is_some())) =>
            {
                let values = values
                    .iter()
                    .map(|v| match v {
                        AnyValue::String(s) => {
                            cut(s.as_str()).map_or_else(|| v.clone(), AnyValue::String)
                        }
                        other => other.clone(),
                    })
                    .collect();
                Cow::Owned(AnyValue::ListAny(Box::new(values)))
            }
            _ => Cow::Borrowed(value),
        }
    }

    /// The attributes kept, and how many are left out.
    fn attributes<'r>(
        &self,
        record: &'r SdkLogRecord,
    ) -> (
        impl Iterator<Item = &'r (opentelemetry::Key, AnyValue)>,
        usize,
    ) {
        let total = record.attributes_iter().count();
        let kept = self.attribute_count.map_or(total, |count| count.min(total));
        (record.attributes_iter().take(kept), total - kept)
    }
}

impl LogExporter {
    /// An exporter configured by `config` (for [`Signal::Logs`]); see
    /// [`SpanExporter::new`](crate::SpanExporter::new).
    pub fn new(config: &ExporterConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            sender: Sender::new(config)?,
            limits: LogRecordLimits::default(),
        })
    }

    /// Limits on each record's attributes (see [`LogRecordLimits`]); none by default.
    pub fn with_limits(mut self, limits: LogRecordLimits) -> Self {
        self.limits = limits;
        self
    }

    /// An exporter configured by the `OTEL_EXPORTER_OTLP_*` environment (the `LOGS_`
    /// variables first).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::new(&ExporterConfig::from_env(Signal::Logs)?)
    }
}

impl opentelemetry_sdk::logs::LogExporter for LogExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let records: Vec<(&SdkLogRecord, &InstrumentationScope)> = batch.iter().collect();
        let resource = &self.sender.resource;
        let limits = &self.limits;
        let parts = self.sender.encode_parts(&records, &|records, buf| {
            encode_records(
                &resource.message,
                &resource.schema_url,
                records,
                limits,
                buf,
            );
        });
        self.sender
            .send_parts::<opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse>(
                parts,
            )
            .await
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.sender.resource.set(resource);
    }
}

// AnyValue (logs): string_value = 1, bool_value = 2, int_value = 3, double_value = 4,
// array_value = 5 (ArrayValue: values = 1), kvlist_value = 6 (KeyValueList: values = 1 of
// KeyValue: key = 1, value = 2), bytes_value = 7.

fn put_log_value(buf: &mut Vec<u8>, value: &AnyValue) {
    match value {
        AnyValue::Int(v) => put_scalar(buf, Scalar::I64(*v)),
        AnyValue::Double(v) => put_scalar(buf, Scalar::F64(*v)),
        AnyValue::String(s) => put_scalar(buf, Scalar::Str(s.as_str())),
        AnyValue::Boolean(v) => put_scalar(buf, Scalar::Bool(*v)),
        AnyValue::Bytes(bytes) => put_bytes(buf, 7, bytes),
        AnyValue::ListAny(values) => put_message(buf, 5, |buf| {
            for v in values.iter() {
                put_message(buf, 1, |buf| put_log_value(buf, v));
            }
        }),
        AnyValue::Map(map) => put_message(buf, 6, |buf| {
            for (key, v) in map.iter() {
                put_log_key_value(buf, 1, key.as_str(), v);
            }
        }),
        // A value type added after this was written: its debug form, as a string.
        other => put_scalar(buf, Scalar::Str(&format!("{other:?}"))),
    }
}

fn put_log_key_value(buf: &mut Vec<u8>, field: u32, key: &str, value: &AnyValue) {
    put_message(buf, field, |buf| {
        put_opt_bytes(buf, 1, key.as_bytes());
        put_message(buf, 2, |buf| put_log_value(buf, value));
    });
}

// LogRecord: time_unix_nano = 1, severity_number = 2, severity_text = 3, body = 5,
// attributes = 6, dropped_attributes_count = 7, flags = 8, trace_id = 9, span_id = 10,
// observed_time_unix_nano = 11, event_name = 12, written in that order, as prost does.

fn put_record(buf: &mut Vec<u8>, record: &SdkLogRecord, limits: &LogRecordLimits) {
    let cx = record.trace_context();
    let (attributes, dropped) = limits.attributes(record);
    put_opt_fixed64(buf, 1, record.timestamp().map_or(0, nanos));
    put_opt_varint(buf, 2, record.severity_number().map_or(0, |s| s as u64));
    put_opt_bytes(
        buf,
        3,
        record.severity_text().unwrap_or_default().as_bytes(),
    );
    if let Some(body) = record.body() {
        put_message(buf, 5, |buf| put_log_value(buf, body));
    }
    for (key, v) in attributes {
        put_log_key_value(buf, 6, key.as_str(), &limits.apply(v));
    }
    put_opt_varint(buf, 7, dropped as u64);
    if let Some(cx) = cx {
        put_opt_fixed32(buf, 8, cx.trace_flags.map_or(0, |f| u32::from(f.to_u8())));
        put_bytes(buf, 9, &cx.trace_id.to_bytes());
        put_bytes(buf, 10, &cx.span_id.to_bytes());
    }
    put_opt_fixed64(buf, 11, record.observed_timestamp().map_or(0, nanos));
    put_opt_bytes(buf, 12, record.event_name().unwrap_or_default().as_bytes());
}

/// One `ScopeLogs`: the scope name (the record's target, else the scope's own name), the
/// scope for its version, schema URL and attributes, and the records' indices.
struct ScopeGroup<'a> {
    name: &'a str,
    scope: &'a InstrumentationScope,
    members: Vec<usize>,
}

fn same_scope(a: &InstrumentationScope, b: &InstrumentationScope) -> bool {
    std::ptr::eq(a, b)
        || (a.version() == b.version()
            && a.schema_url() == b.schema_url()
            && a.attributes().eq(b.attributes()))
}

// InstrumentationScope: name = 1, version = 2, attributes = 3.
fn put_named_scope(buf: &mut Vec<u8>, name: &str, scope: &InstrumentationScope) {
    put_opt_bytes(buf, 1, name.as_bytes());
    put_opt_bytes(buf, 2, scope.version().unwrap_or_default().as_bytes());
    for kv in scope.attributes() {
        put_key_value(buf, 3, kv.key.as_str(), &kv.value);
    }
}

/// Encodes an `ExportLogsServiceRequest` with one `ResourceLogs` and one `ScopeLogs` per
/// scope, in order of first appearance.
#[cfg(test)]
pub(crate) fn encode_request(
    resource: &[u8],
    resource_schema_url: &str,
    batch: &LogBatch<'_>,
    buf: &mut Vec<u8>,
) {
    let records: Vec<(&SdkLogRecord, &InstrumentationScope)> = batch.iter().collect();
    encode_records(
        resource,
        resource_schema_url,
        &records,
        &LogRecordLimits::default(),
        buf,
    );
}

/// [`encode_request`] for a slice of the batch's records.
fn encode_records(
    resource: &[u8],
    resource_schema_url: &str,
    records: &[(&SdkLogRecord, &InstrumentationScope)],
    limits: &LogRecordLimits,
    buf: &mut Vec<u8>,
) {
    let mut groups: Vec<ScopeGroup<'_>> = Vec::new();
    for (i, (record, scope)) in records.iter().enumerate() {
        let name = record
            .target()
            .map_or_else(|| scope.name(), |target| target.as_ref());
        match groups
            .iter_mut()
            .find(|g| g.name == name && same_scope(g.scope, scope))
        {
            Some(group) => group.members.push(i),
            None => groups.push(ScopeGroup {
                name,
                scope,
                members: vec![i],
            }),
        }
    }
    // ResourceLogs: resource = 1, scope_logs = 2, schema_url = 3.
    put_message(buf, 1, |buf| {
        put_bytes(buf, 1, resource);
        for group in &groups {
            // ScopeLogs: scope = 1, log_records = 2, schema_url = 3.
            put_message(buf, 2, |buf| {
                put_message(buf, 1, |buf| {
                    put_named_scope(buf, group.name, group.scope);
                });
                for &i in &group.members {
                    put_message(buf, 2, |buf| put_record(buf, records[i].0, limits));
                }
                put_opt_bytes(
                    buf,
                    3,
                    group.scope.schema_url().unwrap_or_default().as_bytes(),
                );
            });
        }
        put_opt_bytes(buf, 3, resource_schema_url.as_bytes());
    });
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::collections::HashMap;
    use std::time::{Duration, UNIX_EPOCH};

    use opentelemetry::logs::{
        AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity,
    };
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
    use opentelemetry::{InstrumentationScope, Key, KeyValue};
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::logs::{LogBatch, SdkLogRecord, SdkLoggerProvider};
    use proptest::collection::vec;
    use proptest::prelude::*;
    use prost::Message as _;

    use super::*;

    fn new_record() -> SdkLogRecord {
        // A provider without processors: only its `create_log_record` is used. The SDK's
        // conversion requires the observed time, which the appender always sets.
        let mut record = SdkLoggerProvider::builder()
            .build()
            .logger("test")
            .create_log_record();
        record.set_observed_timestamp(UNIX_EPOCH + Duration::from_nanos(1));
        record
    }

    /// Our bytes against the SDK's conversion of the same batch. The SDK groups scopes in a
    /// `HashMap`, so its scope order is arbitrary: compare with the scopes sorted by name,
    /// and byte for byte when there is one scope.
    fn assert_same_as_sdk(resource: &Resource, batch: &[(&SdkLogRecord, &InstrumentationScope)]) {
        let mut encoded_resource = Vec::new();
        encode_resource(resource, &mut encoded_resource);
        let mut ours = Vec::new();
        let schema_url = resource.schema_url().unwrap_or_default();
        encode_request(
            &encoded_resource,
            schema_url,
            &LogBatch::new(batch),
            &mut ours,
        );
        let mut decoded = ExportLogsServiceRequest::decode(ours.as_slice()).expect("valid");

        let mut expected = ExportLogsServiceRequest {
            resource_logs: group_logs_by_resource_and_scope(
                &LogBatch::new(batch),
                &ResourceAttributesWithSchema::from(resource),
            ),
        };
        let single_scope = expected.resource_logs[0].scope_logs.len() <= 1;
        let expected_bytes = expected.encode_to_vec();
        for request in [&mut decoded, &mut expected] {
            // By the whole scope (name, version, attributes) and schema URL: two scopes may
            // share a name.
            request.resource_logs[0]
                .scope_logs
                .sort_by_key(|logs| format!("{:?} {}", logs.scope, logs.schema_url));
        }
        assert_eq!(decoded, expected);
        if single_scope {
            assert_eq!(ours, expected_bytes, "not the bytes prost writes");
        }
    }

    #[test]
    fn limits_cut_values_and_count_what_they_leave_out() {
        let mut record = new_record();
        record.add_attribute("user_agent.original", "x".repeat(40));
        record.add_attribute("short", "ok");
        record.add_attribute(
            "tags",
            AnyValue::ListAny(Box::new(vec![
                AnyValue::from("é".repeat(20)),
                AnyValue::from(1_i64),
            ])),
        );
        record.add_attribute("late", "left out");
        let scope = InstrumentationScope::builder("s").build();
        let limits = LogRecordLimits::default()
            .attribute_count(3)
            .attribute_value_length(10)
            .marked("…");
        let mut ours = Vec::new();
        encode_records(&[], "", &[(&record, &scope)], &limits, &mut ours);
        let decoded = ExportLogsServiceRequest::decode(ours.as_slice()).expect("valid");
        let record = &decoded.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(record.dropped_attributes_count, 1);
        let text = |i: usize| format!("{:?}", record.attributes[i].value);
        assert_eq!(record.attributes.len(), 3);
        assert!(
            text(0).contains(&format!("\"{}…\"", "x".repeat(9))),
            "{}",
            text(0)
        );
        assert!(text(1).contains("\"ok\""), "{}", text(1));
        assert!(
            text(2).contains(&format!("\"{}…\"", "é".repeat(9))),
            "{}",
            text(2)
        );
        assert!(text(2).contains("IntValue(1)"), "{}", text(2));

        // Without limits, the same record is whole.
        let mut whole = Vec::new();
        encode_records(
            &[],
            "",
            &[(&record_with_four(), &scope)],
            &LogRecordLimits::default(),
            &mut whole,
        );
        let decoded = ExportLogsServiceRequest::decode(whole.as_slice()).expect("valid");
        let record = &decoded.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(
            (record.attributes.len(), record.dropped_attributes_count),
            (4, 0)
        );
    }

    fn record_with_four() -> SdkLogRecord {
        let mut record = new_record();
        for (key, value) in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")] {
            record.add_attribute(key, value);
        }
        record
    }

    #[test]
    fn records_of_the_appender_encode_as_the_sdk_would() {
        let scope = InstrumentationScope::builder("opentelemetry-appender-tracing")
            .with_version("0.33.1")
            .build();
        let mut access = new_record();
        access.set_target("sightline_http::access");
        access.set_event_name("request completed");
        access.set_timestamp(UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789));
        access.set_observed_timestamp(UNIX_EPOCH + Duration::from_nanos(1_700_000_000_200_000_000));
        access.set_severity_number(Severity::Info);
        access.set_severity_text("INFO");
        access.set_body(AnyValue::from("request completed"));
        access.add_attribute("http.response.status_code", 200_i64);
        access.add_attribute("duration_ms", 1.25);
        access.add_attribute("request_id", "0af7651916cd43dd");
        access.add_attribute("cached", false);
        access.set_trace_context(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            SpanId::from(0x00f0_67aa_0ba9_02b7),
            Some(TraceFlags::SAMPLED),
        );
        let mut nested = new_record();
        nested.set_target("app::handlers");
        nested.set_observed_timestamp(UNIX_EPOCH);
        nested.set_severity_number(Severity::Error);
        let mut map = HashMap::new();
        map.insert(Key::from("inner"), AnyValue::from(7_i64));
        map.insert(
            Key::from(""),
            AnyValue::ListAny(Box::new(vec![AnyValue::from("x")])),
        );
        nested.set_body(AnyValue::Map(Box::new(map)));
        nested.add_attribute("bytes", AnyValue::Bytes(Box::new(vec![0, 1, 255])));
        nested.add_attribute(
            "list",
            AnyValue::ListAny(Box::new(vec![
                AnyValue::from(true),
                AnyValue::from(-3_i64),
                AnyValue::ListAny(Box::default()),
            ])),
        );
        nested.set_trace_context(TraceId::from(1), SpanId::from(2), None);
        let bare = new_record();

        let resource = Resource::builder().with_service_name("checkout").build();
        let other_scope = InstrumentationScope::builder("other")
            .with_schema_url("https://opentelemetry.io/schemas/1.40.0")
            .with_attributes([KeyValue::new("scope.attr", 1_i64)])
            .build();
        assert_same_as_sdk(&resource, &[(&access, &scope), (&access, &scope)]);
        assert_same_as_sdk(&resource, &[(&nested, &scope)]);
        assert_same_as_sdk(&resource, &[(&bare, &other_scope)]);
        assert_same_as_sdk(
            &resource,
            &[
                (&access, &scope),
                (&nested, &scope),
                (&bare, &other_scope),
                (&access, &scope),
                (&bare, &scope),
            ],
        );
        assert_same_as_sdk(&resource, &[]);
    }

    fn value() -> impl Strategy<Value = AnyValue> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(AnyValue::Int),
            (-1e12f64..1e12).prop_map(AnyValue::Double),
            any::<String>().prop_map(AnyValue::from),
            any::<bool>().prop_map(AnyValue::Boolean),
            vec(any::<u8>(), 0..8).prop_map(|b| AnyValue::Bytes(Box::new(b))),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..4).prop_map(|v| AnyValue::ListAny(Box::new(v))),
                vec(("[a-z]{0,6}", inner), 0..4).prop_map(|kvs| {
                    AnyValue::Map(Box::new(
                        kvs.into_iter().map(|(k, v)| (Key::from(k), v)).collect(),
                    ))
                }),
            ]
        })
    }

    prop_compose! {
        fn random_record()(
            target in proptest::option::of("[a-z:_]{0,12}"),
            times in (any::<u32>(), any::<u32>()),
            severity in 0..25u8,
            body in proptest::option::of(value()),
            attributes in vec(("[a-z._]{0,10}", value()), 0..5),
            ids in proptest::option::of((any::<u128>(), any::<u64>(), proptest::option::of(any::<u8>()))),
            event_name in proptest::option::of(prop_oneof![Just("request completed"), Just("")]),
        ) -> SdkLogRecord {
            let mut record = new_record();
            if let Some(target) = target {
                record.set_target(target);
            }
            if times.0 > 0 {
                record.set_timestamp(UNIX_EPOCH + Duration::from_nanos(u64::from(times.0)));
            }
            record.set_observed_timestamp(UNIX_EPOCH + Duration::from_nanos(u64::from(times.1)));
            if severity > 0 {
                let s = [
                    Severity::Trace, Severity::Trace2, Severity::Trace3, Severity::Trace4,
                    Severity::Debug, Severity::Debug2, Severity::Debug3, Severity::Debug4,
                    Severity::Info, Severity::Info2, Severity::Info3, Severity::Info4,
                    Severity::Warn, Severity::Warn2, Severity::Warn3, Severity::Warn4,
                    Severity::Error, Severity::Error2, Severity::Error3, Severity::Error4,
                    Severity::Fatal, Severity::Fatal2, Severity::Fatal3, Severity::Fatal4,
                ][usize::from(severity - 1)];
                record.set_severity_number(s);
                record.set_severity_text(s.name());
            }
            if let Some(body) = body {
                record.set_body(body);
            }
            for (key, v) in attributes {
                record.add_attribute(Key::from(key), v);
            }
            if let Some((trace, span, flags)) = ids {
                record.set_trace_context(
                    TraceId::from(trace),
                    SpanId::from(span),
                    flags.map(TraceFlags::new),
                );
            }
            if let Some(name) = event_name {
                record.set_event_name(name);
            }
            record
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn any_batch_encodes_as_the_sdk_would(
            records in vec(random_record(), 0..5),
            scope_of in vec(0..2usize, 5),
        ) {
            let scopes = [
                InstrumentationScope::builder("a").with_version("1").build(),
                InstrumentationScope::builder("b").build(),
            ];
            let batch: Vec<(&SdkLogRecord, &InstrumentationScope)> = records
                .iter()
                .enumerate()
                .map(|(i, r)| (r, &scopes[scope_of[i]]))
                .collect();
            let resource = Resource::builder().with_service_name("s").build();
            assert_same_as_sdk(&resource, &batch);
        }
    }

    #[test]
    fn cow_targets_are_names() {
        let mut record = new_record();
        record.set_target(Cow::Owned("owned::target".to_owned()));
        let scope = InstrumentationScope::builder("ignored").build();
        let resource = Resource::builder_empty().build();
        assert_same_as_sdk(&resource, &[(&record, &scope)]);
    }
}
