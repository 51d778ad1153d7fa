//! Server spans reach an OTLP collector over gRPC and over HTTP/protobuf: one span per
//! request, continuing the caller's trace, with the semantic-convention attributes and the
//! sensitive query values redacted.

use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use sightline_tests::collector::{OtlpCollector, SpanRecord, Transport};
use sightline_tests::http::HttpClient;
use sightline_tests::util::{random_span_id, random_trace_id};

use crate::support::{USERS_ROUTE, get_traced, quickstart, traceparent};

const USER_AGENT: &str = "sightline-e2e/1.0 (otlp)";
const SPAN_TIMEOUT: Duration = Duration::from_secs(15);

fn status_code(span: &SpanRecord) -> i32 {
    span.span.status.as_ref().map_or(0, |s| s.code)
}

async fn export_roundtrip(transport: Transport) {
    let collector = OtlpCollector::start().await;
    let service = format!("e2e-{}", &random_span_id()[..8]);
    let endpoint = collector.endpoint(transport);
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_SERVICE_NAME", service.as_str()),
        // Percent-encoded values, as the OTLP exporter specification writes them.
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-tenant=acme,authorization=Bearer%20e2e-token",
        ),
    ];
    if transport == Transport::HttpProtobuf {
        env.push(("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"));
    }
    let mut app = quickstart(&env).await;
    let client = HttpClient::new();

    let (trace_id, parent_id) = (random_trace_id(), random_span_id());
    let response = client
        .get_with(
            &app.url("/users/42?token=secret&q=1"),
            &[
                ("traceparent", &traceparent(&trace_id, &parent_id)),
                ("user-agent", USER_AGENT),
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status, 200, "{}", response.text());

    let (failed, fail_trace, fail_parent) = get_traced(&app, "/fail").await;
    assert_eq!(failed.status, 500);

    // SIGTERM must flush the batch processor before the process exits.
    let (status, by_itself) = app.terminate().await;
    assert!(
        by_itself,
        "the example did not exit within 10 s of SIGTERM\n{}",
        app.output_report()
    );
    assert!(
        status.success(),
        "exit status after SIGTERM: {status}\n{}",
        app.output_report()
    );

    let ours = |s: &SpanRecord| s.trace_id() == trace_id || s.trace_id() == fail_trace;
    let spans = collector.wait_for_span_count(ours, 2, SPAN_TIMEOUT).await;
    let all = collector.spans();
    let summary: Vec<String> = all
        .iter()
        .map(|s| {
            format!(
                "{} {} kind={} trace={}",
                s.span.name,
                s.span_id(),
                s.span.kind,
                s.trace_id()
            )
        })
        .collect();
    assert!(
        collector.rejected().is_empty(),
        "collector refused exports: {:?}",
        collector.rejected()
    );

    let server: Vec<&SpanRecord> = spans
        .iter()
        .filter(|s| s.trace_id() == trace_id && s.span.kind == SpanKind::Server as i32)
        .collect();
    assert_eq!(
        server.len(),
        1,
        "exactly one server span for trace {trace_id} over {transport:?}; received: {summary:#?}\n{}\n{}",
        collector.summary(),
        app.output_report()
    );
    let span = server[0];
    assert_eq!(span.transport, transport);
    assert_eq!(span.span.name, format!("GET {USERS_ROUTE}"));
    assert_eq!(
        span.parent_span_id(),
        parent_id,
        "parent is the caller's span"
    );
    assert_eq!(span.span_id().len(), 16);
    assert_ne!(span.span_id(), parent_id);
    assert_ne!(span.span_id(), "0000000000000000");
    assert_eq!(
        span.resource_str("service.name"),
        Some(service.as_str()),
        "OTEL_SERVICE_NAME wins"
    );

    let port = i64::from(app.addr().port());
    let expected_str = [
        ("http.request.method", "GET"),
        ("url.path", "/users/42"),
        ("url.scheme", "http"),
        ("http.route", USERS_ROUTE),
        ("network.protocol.version", "1.1"),
        ("server.address", "127.0.0.1"),
        ("client.address", "127.0.0.1"),
        ("user_agent.original", USER_AGENT),
        ("url.query", "token=REDACTED&q=1"),
    ];
    for (key, value) in expected_str {
        assert_eq!(
            span.attr_str(key),
            Some(value),
            "attribute {key}; all: {:?}",
            span.span.attributes
        );
    }
    assert_eq!(
        span.attr_i64("http.response.status_code"),
        Some(200),
        "{:?}",
        span.span.attributes
    );
    assert_eq!(
        span.attr_i64("server.port"),
        Some(port),
        "{:?}",
        span.span.attributes
    );
    assert_eq!(
        status_code(span),
        StatusCode::Unset as i32,
        "a 200 leaves the server span status unset: {:?}",
        span.span.status
    );
    assert!(span.span.end_time_unix_nano >= span.span.start_time_unix_nano);
    for received in collector.trace_requests() {
        let header = |name: &str| received.headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(header("x-tenant"), Some("acme"), "{:?}", received.headers);
        assert_eq!(
            header("authorization"),
            Some("Bearer e2e-token"),
            "OTEL_EXPORTER_OTLP_HEADERS is sent, percent-decoded: {:?}",
            received.headers
        );
    }
    let everything = format!("{:?}", collector.trace_requests());
    assert!(
        !everything.contains("secret"),
        "a sensitive query value was exported: {span:#?}"
    );

    let failing: Vec<&SpanRecord> = spans
        .iter()
        .filter(|s| s.trace_id() == fail_trace && s.span.kind == SpanKind::Server as i32)
        .collect();
    assert_eq!(
        failing.len(),
        1,
        "one server span for /fail; received: {summary:#?}"
    );
    let fail_span = failing[0];
    assert_eq!(fail_span.span.name, "GET /fail");
    assert_eq!(fail_span.parent_span_id(), fail_parent);
    assert_eq!(fail_span.attr_i64("http.response.status_code"), Some(500));
    assert_eq!(
        status_code(fail_span),
        StatusCode::Error as i32,
        "a 500 sets status Error: {:?}",
        fail_span.span.status
    );
    assert_eq!(
        fail_span.attr_str("error.type"),
        Some("500"),
        "semantic conventions: error.type is the status code for a 5xx; {:?}",
        fail_span.span.attributes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_spans_are_exported_over_grpc() {
    export_roundtrip(Transport::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_spans_are_exported_over_http_protobuf() {
    export_roundtrip(Transport::HttpProtobuf).await;
}

/// Style guide: "a dead collector loses data, never blocks a request". Nothing listens on the
/// endpoint; requests are still answered promptly and SIGTERM still ends the process in time.
/// `https://` endpoints (feature `otlp-tls`, on in the test build): spans reach a collector
/// behind TLS whose CA is given by `OTEL_EXPORTER_OTLP_CERTIFICATE`; without the CA the
/// handshake fails, nothing is exported, and the service still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_tls_to_a_collector_the_certificate_vouches_for() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tls");
    let read = |name: &str| std::fs::read(format!("{fixtures}/{name}")).expect("TLS fixture");
    let collector = OtlpCollector::start_tls(&read("server.pem"), &read("server.key")).await;
    let endpoint = collector.grpc_tls_endpoint();
    let ca = format!("{fixtures}/ca.pem");
    let client = HttpClient::new();

    // Without the CA: the system roots do not vouch for the test CA.
    let mut untrusted = quickstart(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]).await;
    let response = client
        .get(&untrusted.url("/users/1"), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status, 200, "{}", response.text());
    let (_, by_itself) = untrusted.terminate().await;
    assert!(
        by_itself,
        "shutdown must not hang on a collector it cannot trust"
    );
    assert!(
        collector.trace_requests().is_empty(),
        "an unverified collector received spans: {}",
        collector.summary()
    );

    let mut app = quickstart(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.as_str()),
    ])
    .await;
    let (response, trace_id, parent_id) = get_traced(&app, "/users/42").await;
    assert_eq!(response.status, 200, "{}", response.text());
    let spans = collector
        .wait_for_spans(
            |s| s.trace_id() == trace_id && s.span.kind == SpanKind::Server as i32,
            SPAN_TIMEOUT,
        )
        .await;
    assert_eq!(spans.len(), 1, "{}", collector.summary());
    assert_eq!(spans[0].parent_span_id(), parent_id);
    app.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_never_blocks_requests_or_shutdown() {
    let dead = format!("http://{}", sightline_tests::util::free_addr());
    let mut app = quickstart(&[("OTEL_EXPORTER_OTLP_ENDPOINT", dead.as_str())]).await;
    let client = HttpClient::new();
    let started = std::time::Instant::now();
    for i in 0..50 {
        let r = client
            .get(&app.url(&format!("/users/{i}")), &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 200);
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(5),
        "50 requests took {elapsed:?} with an unreachable collector"
    );
    let (status, by_itself) = app.terminate().await;
    assert!(
        by_itself,
        "did not exit within 10 s of SIGTERM with an unreachable collector\n{}",
        app.output_report()
    );
    assert!(
        status.success(),
        "exit status {status}\n{}",
        app.output_report()
    );
}
