//! The exporters with providers a user builds by hand, nothing else from Sightline: spans and
//! log records reach a real OTLP receiver (decoded with the `opentelemetry-proto` types) over
//! both transports; so do metrics from the `metrics` facade, pushed on an interval.

use std::time::Duration;

use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_proto::tonic::metrics::v1::AggregationTemporality;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use sightline_otlp::{
    BatchSettings, Compression, ExporterConfig, LogExporter, MetricExporter, MetricRecorder,
    PeriodicExport, Protocol, Signal, SpanExporter, Temporality, counting_batch_span_processor,
};
use sightline_tests::collector::{OtlpCollector, Transport};

fn config(signal: Signal, collector: &OtlpCollector, transport: Transport) -> ExporterConfig {
    let protocol = match transport {
        Transport::HttpProtobuf => Protocol::HttpProtobuf,
        _ => Protocol::Grpc,
    };
    ExporterConfig::new(signal)
        .protocol(protocol)
        .base_endpoint(collector.endpoint(transport))
        .header("x-api-key", "secret")
        .timeout(Duration::from_secs(5))
}

async fn spans_reach_the_collector(transport: Transport) {
    let collector = OtlpCollector::start().await;
    let exporter = SpanExporter::new(&config(Signal::Traces, &collector, transport))
        .expect("valid configuration");
    let provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name("by-hand").build())
        .with_batch_exporter(exporter)
        .build();
    let mut span = provider.tracer("hand").start("checkout");
    span.set_attribute(opentelemetry::KeyValue::new("order.id", 42));
    span.end();
    let flushed = tokio::task::spawn_blocking(move || {
        let result = provider.force_flush();
        provider.shutdown().ok();
        result
    })
    .await
    .expect("joined");
    flushed.expect("flushed");
    let spans = collector
        .wait_for_spans(|s| s.span.name == "checkout", Duration::from_secs(5))
        .await;
    assert_eq!(spans.len(), 1, "{}", collector.summary());
    assert_eq!(spans[0].transport, transport);
    assert_eq!(spans[0].attr_i64("order.id"), Some(42));
    assert_eq!(spans[0].resource_str("service.name"), Some("by-hand"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_by_grpc() {
    spans_reach_the_collector(Transport::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_by_http() {
    spans_reach_the_collector(Transport::HttpProtobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_records_by_both_transports() {
    for transport in [Transport::Grpc, Transport::HttpProtobuf] {
        let collector = OtlpCollector::start().await;
        let exporter = LogExporter::new(&config(Signal::Logs, &collector, transport))
            .expect("valid configuration");
        let provider = SdkLoggerProvider::builder()
            .with_batch_exporter(exporter)
            .build();
        let logger = provider.logger("hand");
        let mut record = logger.create_log_record();
        record.set_body("paid".into());
        logger.emit(record);
        tokio::task::spawn_blocking(move || provider.shutdown())
            .await
            .expect("joined")
            .expect("shut down");
        let records = collector
            .wait_for_log_records(|_| true, Duration::from_secs(5))
            .await;
        assert_eq!(records.len(), 1, "{transport:?}: {}", collector.summary());
        assert_eq!(records[0].transport, transport);
    }
}

/// Metrics recorded through the facade arrive with the OpenTelemetry names, units and
/// bucket boundaries, on the interval and once more at shutdown, over both transports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_by_both_transports() {
    for transport in [Transport::Grpc, Transport::HttpProtobuf] {
        let collector = OtlpCollector::start().await;
        let recorder = MetricRecorder::new()
            .buckets("http.server.request.duration", &[0.1, 1.0])
            .unit("http.server.active_requests", "{request}");
        let exporter = MetricExporter::new(
            &config(Signal::Metrics, &collector, transport).compression(Compression::Gzip),
        )
        .expect("valid configuration")
        .with_resource(&Resource::builder().with_service_name("pushed").build());
        let export = PeriodicExport::start(recorder.reader(), exporter, Duration::from_millis(100))
            .expect("thread started");
        metrics::with_local_recorder(&recorder, || {
            metrics::describe_histogram!(
                "http.server.request.duration",
                metrics::Unit::Seconds,
                "Duration of HTTP server requests."
            );
            for v in [0.05, 0.5, 5.0] {
                metrics::histogram!("http.server.request.duration", "http.route" => "/users/{id}")
                    .record(v);
            }
            metrics::gauge!("http.server.active_requests").increment(1.0);
        });
        let found = collector
            .wait_for_metric(
                |m| m.metric.name == "http.server.request.duration",
                Duration::from_secs(5),
            )
            .await
            .unwrap_or_else(|| panic!("no duration histogram: {}", collector.summary()));
        assert_eq!(found.transport, transport);
        assert_eq!(found.resource_str("service.name"), Some("pushed"));
        assert_eq!(found.metric.unit, "s");
        assert_eq!(
            found.metric.description,
            "Duration of HTTP server requests."
        );
        let Some(Data::Histogram(histogram)) = &found.metric.data else {
            panic!("not a histogram: {:?}", found.metric);
        };
        assert_eq!(
            histogram.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let points = found.histogram_points(&[("http.route", "/users/{id}")]);
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].explicit_bounds, [0.1, 1.0]);
        assert_eq!(points[0].bucket_counts, [1, 1, 1]);
        assert_eq!(points[0].count, 3);
        assert_eq!((points[0].min, points[0].max), (Some(0.05), Some(5.0)));
        let active = collector
            .wait_for_metric(
                |m| m.metric.name == "http.server.active_requests",
                Duration::from_secs(5),
            )
            .await
            .expect("active requests");
        assert_eq!(active.metric.unit, "{request}");
        assert!(
            matches!(&active.metric.data, Some(Data::Sum(sum)) if !sum.is_monotonic),
            "an up-down counter: {:?}",
            active.metric
        );
        let received = collector.metric_requests();
        assert!(
            received
                .iter()
                .all(|r| r.headers.get("x-api-key").is_some_and(|v| v == "secret")),
            "headers on every export"
        );

        // Shutdown exports what came after the last tick.
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("jobs.done").increment(2);
        });
        let before = collector.metric_requests().len();
        tokio::task::spawn_blocking(move || export.shutdown())
            .await
            .expect("joined")
            .expect("the last export");
        assert!(collector.metric_requests().len() > before);
        let jobs = collector
            .metrics()
            .into_iter()
            .rfind(|m| m.metric.name == "jobs.done")
            .expect("jobs.done exported at shutdown");
        assert!(
            matches!(&jobs.metric.data, Some(Data::Sum(sum)) if sum.is_monotonic),
            "{:?}",
            jobs.metric
        );
    }
}

/// With delta temporality, each export carries what changed since the one before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_exports_carry_only_the_change() {
    let collector = OtlpCollector::start().await;
    let recorder = MetricRecorder::new();
    let exporter = MetricExporter::new(&config(Signal::Metrics, &collector, Transport::Grpc))
        .expect("valid configuration")
        .with_temporality(Temporality::Delta);
    let export = PeriodicExport::start(recorder.reader(), exporter, Duration::from_secs(3600))
        .expect("thread started");
    for increment in [5, 2] {
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("jobs.done").increment(increment);
        });
        let export = &export;
        tokio::task::block_in_place(|| export.force_flush()).expect("exported");
    }
    let values: Vec<i64> = collector
        .metrics()
        .iter()
        .filter(|m| m.metric.name == "jobs.done")
        .flat_map(|m| m.number_points(&[]))
        .filter_map(|p| match p.value {
            Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(v)) => {
                Some(v)
            }
            _ => None,
        })
        .collect();
    assert_eq!(values, [5, 2], "{}", collector.summary());
    tokio::task::spawn_blocking(move || export.shutdown())
        .await
        .expect("joined")
        .expect("shut down");
}

/// A dead collector: every span of the failed export is counted, and nothing blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_is_counted_not_waited_for() {
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this process");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port(); // bound, then closed: nobody listens there now
    let exporter = SpanExporter::new(
        &ExporterConfig::new(Signal::Traces)
            .base_endpoint(format!("http://127.0.0.1:{port}"))
            .timeout(Duration::from_millis(300)),
    )
    .expect("valid configuration");
    let provider = SdkTracerProvider::builder()
        .with_span_processor(counting_batch_span_processor(
            exporter,
            BatchSettings {
                max_queue_size: 8,
                scheduled_delay: Duration::from_secs(60),
                max_export_batch_size: 8,
            },
        ))
        .build();
    let started = std::time::Instant::now();
    for _ in 0..3 {
        provider.tracer("hand").start("lost").end();
    }
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "never blocks"
    );
    tokio::task::spawn_blocking(move || {
        let _ = provider.force_flush();
        provider.shutdown().ok();
    })
    .await
    .expect("joined");

    // Metrics: the points of the failed push are counted, and the export gives up within
    // its timeout.
    let recorder = MetricRecorder::new();
    let exporter = MetricExporter::new(
        &ExporterConfig::new(Signal::Metrics)
            .base_endpoint(format!("http://127.0.0.1:{port}"))
            .timeout(Duration::from_millis(300)),
    )
    .expect("valid configuration");
    let export = PeriodicExport::start(recorder.reader(), exporter, Duration::from_secs(3600))
        .expect("thread started");
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("jobs.done", "queue" => "a").increment(1);
        metrics::counter!("jobs.done", "queue" => "b").increment(1);
    });
    let started = std::time::Instant::now();
    let flushed = tokio::task::spawn_blocking(move || export.shutdown())
        .await
        .expect("joined");
    assert!(flushed.is_err(), "a dead collector is an error");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the timeout"
    );

    let exposition = prometheus.render();
    for line in [
        "sightline_telemetry_dropped{signal=\"spans\",reason=\"export_failed\"} 3",
        "sightline_telemetry_dropped{signal=\"metrics\",reason=\"export_failed\"} 2",
    ] {
        assert!(
            exposition.lines().any(|l| l == line),
            "{line} in {exposition}"
        );
    }
}
