//! The exporters with providers a user builds by hand, nothing else from Sightline: spans and
//! log records reach a real OTLP receiver (decoded with the `opentelemetry-proto` types) over
//! both transports.

use std::time::Duration;

use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use sightline_otlp::{
    BatchSettings, ExporterConfig, LogExporter, Protocol, Signal, SpanExporter,
    counting_batch_span_processor,
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
    let exposition = prometheus.render();
    assert!(
        exposition.lines().any(
            |l| l == "sightline_telemetry_dropped{signal=\"spans\",reason=\"export_failed\"} 3"
        ),
        "{exposition}"
    );
}
