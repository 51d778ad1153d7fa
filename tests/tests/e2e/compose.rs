//! `example-compose`: Sightline added to an application with its own `tracing` subscriber
//! (plain text on stderr), its own Prometheus recorder (global label `app="compose"`) and a
//! `tower-http` `TraceLayer`.

use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use sightline_tests::collector::{OtlpCollector, Transport};
use sightline_tests::http::HttpClient;
use sightline_tests::process::ExampleProcess;
use sightline_tests::util::{random_span_id, random_trace_id};

use crate::support::{json_lines, traceparent};

const COMPOSE: &str = "example-compose";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_keeps_its_subscriber_and_recorder_and_gains_sightline() {
    let collector = OtlpCollector::start().await;
    let endpoint = collector.endpoint(Transport::Grpc);
    let mut app = ExampleProcess::start(
        COMPOSE,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let trace_id = random_trace_id();
    let client = HttpClient::new();
    let hello = client
        .get_with(
            &app.url("/hello"),
            &[("traceparent", &traceparent(&trace_id, &random_span_id()))],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(hello.status, 200);
    assert_eq!(hello.text(), "hello");

    // The application's recorder, with its global label, has Sightline's histogram.
    let exposition = client
        .get(&app.url("/metrics"), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text();
    let counted = exposition.lines().any(|l| {
        l.starts_with("http_server_request_duration_seconds_count{")
            && l.contains("app=\"compose\"")
            && l.contains("http_route=\"/hello\"")
    });
    assert!(counted, "{exposition}");
    assert!(
        exposition.contains("http_server_request_duration_seconds_bucket{"),
        "a histogram with Sightline's buckets: {exposition}"
    );

    let (status, by_itself) = app.terminate().await;
    assert!(
        by_itself && status.success(),
        "{status}\n{}",
        app.output_report()
    );

    // Plain text on stderr, through the application's own fmt layer...
    let plain = app
        .stderr_lines()
        .into_iter()
        .find(|l| l.contains("saying hello"))
        .unwrap_or_else(|| panic!("no plain-text line on stderr\n{}", app.output_report()));
    assert!(
        !plain.trim_start().starts_with('{'),
        "plain text, not JSON: {plain}"
    );
    assert!(plain.contains(&trace_id), "{plain}");
    // ...and a correlated JSON line on stdout, through Sightline's layer.
    let line = json_lines(&app)
        .into_iter()
        .find(|l| l.message() == Some("saying hello"))
        .unwrap_or_else(|| panic!("no JSON line on stdout\n{}", app.output_report()));
    assert_eq!(line.trace_id(), Some(trace_id.as_str()));
    assert!(line.span_id().is_some_and(|s| s.len() == 16));
    assert!(line.request_id().is_some());

    // One trace: Sightline's server span, the TraceLayer's `request` span under it, no other
    // root and no second server span.
    let spans = collector
        .wait_for_span_count(|s| s.trace_id() == trace_id, 2, Duration::from_secs(15))
        .await;
    let servers: Vec<_> = spans
        .iter()
        .filter(|s| s.span.kind == SpanKind::Server as i32)
        .collect();
    assert_eq!(servers.len(), 1, "{spans:#?}");
    let request = spans
        .iter()
        .find(|s| s.span.name == "request")
        .unwrap_or_else(|| panic!("no TraceLayer span: {spans:#?}"));
    assert_eq!(request.parent_span_id(), servers[0].span_id(), "no orphan");
    assert_eq!(spans.len(), 2, "{spans:#?}");
}
