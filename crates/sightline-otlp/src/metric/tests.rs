use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope as ProtoScope, KeyValue as ProtoKeyValue, any_value,
};
use opentelemetry_proto::tonic::metrics::v1::{
    self as proto, AggregationTemporality, HistogramDataPoint, NumberDataPoint, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_sdk::Resource;
use prost::Message as _;

use super::encode::encode_request;
use super::recorder::MetricRecorder;
use super::snapshot::{DeltaState, Snapshot};
use crate::wire::encode_resource;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as u64
}

fn label(key: &str, value: &str) -> ProtoKeyValue {
    ProtoKeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        key_strindex: 0,
    }
}

/// Records a little of everything into a fresh recorder and collects it at `at(100)`.
fn recorded() -> (MetricRecorder, Snapshot) {
    let recorder = MetricRecorder::new()
        .buckets("http.server.request.duration", &[1.0, 0.1, f64::NAN, 0.5])
        .unit("http.server.active_requests", "{request}");
    metrics::with_local_recorder(&recorder, || {
        metrics::describe_histogram!(
            "http.server.request.duration",
            metrics::Unit::Seconds,
            "Duration of HTTP server requests."
        );
        metrics::describe_gauge!(
            "http.server.active_requests",
            metrics::Unit::Count,
            "Requests in flight."
        );
        let route = |r: &'static str| metrics::histogram!("http.server.request.duration", "http.route" => r);
        for v in [0.05, 0.1, 0.3, 2.0, f64::NAN] {
            route("/users/{id}").record(v);
        }
        route("/").record(0.5);
        metrics::counter!("jobs.done", "queue" => "mail").increment(3);
        metrics::counter!("jobs.done", "queue" => "mail").increment(4);
        metrics::gauge!("http.server.active_requests").increment(2.0);
        metrics::gauge!("http.server.active_requests").decrement(1.0);
        metrics::gauge!("queue.depth").set(12.5);
        metrics::histogram!("payload.size").record(700.0);
    });
    let snapshot = recorder.reader().collect(at(100));
    (recorder, snapshot)
}

#[test]
fn recorded_values_aggregate_as_the_sdk_would() {
    let (recorder, snapshot) = recorded();
    let start = nanos(recorder.reader().start());
    let mut resource_bytes = Vec::new();
    let resource = Resource::builder_empty()
        .with_attribute(KeyValue::new("service.name", "checkout"))
        .build();
    encode_resource(&resource, &mut resource_bytes);
    let scope = InstrumentationScope::builder("sightline")
        .with_version("1.2.3")
        .build();
    let mut ours = Vec::new();
    encode_request(
        &resource_bytes,
        "",
        &scope,
        snapshot.time,
        &snapshot.metrics,
        &mut ours,
    );
    let decoded = ExportMetricsServiceRequest::decode(ours.as_slice()).expect("valid protobuf");

    let time = nanos(at(100));
    let number = |attributes: Vec<ProtoKeyValue>, value| NumberDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(value),
        exemplars: vec![],
        flags: 0,
    };
    let metric = |name: &str, description: &str, unit: &str, data| proto::Metric {
        name: name.into(),
        description: description.into(),
        unit: unit.into(),
        metadata: vec![],
        data: Some(data),
    };
    let expected = ExportMetricsServiceRequest {
        resource_metrics: vec![proto::ResourceMetrics {
            resource: Some(ProtoResource {
                attributes: vec![label("service.name", "checkout")],
                dropped_attributes_count: 0,
                entity_refs: vec![],
            }),
            scope_metrics: vec![proto::ScopeMetrics {
                scope: Some(ProtoScope {
                    name: "sightline".into(),
                    version: "1.2.3".into(),
                    attributes: vec![],
                    dropped_attributes_count: 0,
                }),
                metrics: vec![
                    // Only incremented and decremented: an up-down counter, in the unit
                    // given by name rather than the facade's `Count`.
                    metric(
                        "http.server.active_requests",
                        "Requests in flight.",
                        "{request}",
                        metric::Data::Sum(proto::Sum {
                            data_points: vec![number(
                                vec![],
                                number_data_point::Value::AsDouble(1.0),
                            )],
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                            is_monotonic: false,
                        }),
                    ),
                    // Buckets sorted, NaN bounds and NaN values left out; a value on a bound
                    // falls in the bucket that bound closes.
                    metric(
                        "http.server.request.duration",
                        "Duration of HTTP server requests.",
                        "s",
                        metric::Data::Histogram(proto::Histogram {
                            data_points: vec![
                                HistogramDataPoint {
                                    attributes: vec![label("http.route", "/")],
                                    start_time_unix_nano: start,
                                    time_unix_nano: time,
                                    count: 1,
                                    sum: Some(0.5),
                                    bucket_counts: vec![0, 1, 0, 0],
                                    explicit_bounds: vec![0.1, 0.5, 1.0],
                                    exemplars: vec![],
                                    flags: 0,
                                    min: Some(0.5),
                                    max: Some(0.5),
                                },
                                HistogramDataPoint {
                                    attributes: vec![label("http.route", "/users/{id}")],
                                    start_time_unix_nano: start,
                                    time_unix_nano: time,
                                    count: 4,
                                    sum: Some(0.05 + 0.1 + 0.3 + 2.0),
                                    bucket_counts: vec![2, 1, 0, 1],
                                    explicit_bounds: vec![0.1, 0.5, 1.0],
                                    exemplars: vec![],
                                    flags: 0,
                                    min: Some(0.05),
                                    max: Some(2.0),
                                },
                            ],
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        }),
                    ),
                    metric(
                        "jobs.done",
                        "",
                        "",
                        metric::Data::Sum(proto::Sum {
                            data_points: vec![number(
                                vec![label("queue", "mail")],
                                number_data_point::Value::AsInt(7),
                            )],
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                            is_monotonic: true,
                        }),
                    ),
                    // No buckets named: the SDK's defaults.
                    metric(
                        "payload.size",
                        "",
                        "",
                        metric::Data::Histogram(proto::Histogram {
                            data_points: vec![HistogramDataPoint {
                                attributes: vec![],
                                start_time_unix_nano: start,
                                time_unix_nano: time,
                                count: 1,
                                sum: Some(700.0),
                                bucket_counts: vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
                                explicit_bounds: super::DEFAULT_BUCKETS.to_vec(),
                                exemplars: vec![],
                                flags: 0,
                                min: Some(700.0),
                                max: Some(700.0),
                            }],
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        }),
                    ),
                    // Set: a gauge.
                    metric(
                        "queue.depth",
                        "",
                        "",
                        metric::Data::Gauge(proto::Gauge {
                            data_points: vec![number(
                                vec![],
                                number_data_point::Value::AsDouble(12.5),
                            )],
                        }),
                    ),
                ],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    assert_eq!(decoded, expected);
    // Same fields, same order: the bytes prost writes.
    assert!(
        ours == expected.encode_to_vec(),
        "not the bytes prost writes"
    );
}

#[test]
fn delta_temporality_reports_what_changed_since_the_last_export() {
    let (recorder, first) = recorded();
    let mut state = DeltaState::default();
    let first = state.relative(first);
    let counter = |snapshot: &Snapshot| {
        snapshot
            .metrics
            .iter()
            .find(|m| m.name == "jobs.done")
            .map(|m| format!("{:?}", m.data))
            .expect("jobs.done")
    };
    assert!(counter(&first).contains("Int(7)"), "{}", counter(&first));
    assert!(counter(&first).contains("cumulative: false"));

    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("jobs.done", "queue" => "mail").increment(5);
        metrics::histogram!("http.server.request.duration", "http.route" => "/").record(0.7);
    });
    let second = state.relative(recorder.reader().collect(at(160)));
    assert!(counter(&second).contains("Int(5)"), "{}", counter(&second));
    let histogram = second
        .metrics
        .iter()
        .find(|m| m.name == "http.server.request.duration")
        .expect("histogram");
    let super::snapshot::Data::Histogram { cumulative, points } = &histogram.data else {
        panic!("not a histogram: {histogram:?}");
    };
    assert!(!cumulative);
    let root = &points[0];
    assert_eq!(root.attributes, [("http.route".to_owned(), "/".to_owned())]);
    assert_eq!(
        (root.count, root.bucket_counts.clone()),
        (1, vec![0, 0, 1, 0])
    );
    assert!((root.sum - 0.7).abs() < 1e-9);
    assert_eq!(
        root.start,
        at(100),
        "a delta starts where the last export ended"
    );
    assert_eq!(
        root.extremes, None,
        "an interval's own extremes are not known"
    );
    // Up-down counters and gauges stay cumulative.
    let active = second
        .metrics
        .iter()
        .find(|m| m.name == "http.server.active_requests")
        .expect("active");
    assert!(format!("{:?}", active.data).contains("cumulative: true"));
}

#[test]
fn nothing_recorded_yet_is_an_empty_snapshot() {
    let recorder = MetricRecorder::new();
    assert!(recorder.reader().collect(at(1)).metrics.is_empty());
    assert!(recorder.reader().metric_names().is_empty());
}

#[test]
fn buckets_by_name_win_over_the_longest_prefix_over_the_default() {
    let recorder = MetricRecorder::new()
        .buckets_for_prefix("app.", &[1.0])
        .buckets_for_prefix("app.db.", &[0.5, 2.0])
        .buckets("app.db.exact", &[9.0]);
    metrics::with_local_recorder(&recorder, || {
        for name in ["app.db.exact", "app.db.query", "app.http", "other"] {
            metrics::histogram!(name).record(1.0);
        }
    });
    let snapshot = recorder.reader().collect(at(1));
    let bounds = |name: &str| {
        let metric = snapshot
            .metrics
            .iter()
            .find(|m| m.name == name)
            .expect(name);
        match &metric.data {
            super::snapshot::Data::Histogram { points, .. } => points[0].bounds.to_vec(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(bounds("app.db.exact"), [9.0]);
    assert_eq!(bounds("app.db.query"), [0.5, 2.0]);
    assert_eq!(bounds("app.http"), [1.0]);
    assert_eq!(bounds("other"), super::DEFAULT_BUCKETS);
}
