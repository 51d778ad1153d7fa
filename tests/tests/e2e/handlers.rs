//! What real applications need at the edges, on the quick start: a handler's own attribute
//! on the server span, a panicking handler, an outgoing `reqwest` call, probes, and the client
//! address behind trusted proxies.

use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use sightline_tests::collector::{OtlpCollector, SpanRecord, Transport};
use sightline_tests::http::HttpClient;
use sightline_tests::process::ExampleProcess;
use sightline_tests::util::{random_span_id, random_trace_id};

use crate::support::{ACCESS_TARGET, json_lines, quickstart, traceparent};

const SPAN_TIMEOUT: Duration = Duration::from_secs(15);

async fn app(collector: &OtlpCollector, extra: &[(&str, &str)]) -> ExampleProcess {
    let endpoint = collector.endpoint(Transport::Grpc);
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    env.extend_from_slice(extra);
    quickstart(&env).await
}

/// A GET with `headers`: status and body.
async fn get(app: &ExampleProcess, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let response = HttpClient::new()
        .get_with(&app.url(path), headers)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    (response.status, response.text())
}

async fn stop(app: &mut ExampleProcess) {
    let (status, by_itself) = app.terminate().await;
    assert!(
        by_itself && status.success(),
        "{status}\n{}",
        app.output_report()
    );
}

fn server_span_of(spans: &[SpanRecord], path: &str) -> Option<SpanRecord> {
    spans
        .iter()
        .find(|s| s.span.kind == SpanKind::Server as i32 && s.attr_str("url.path") == Some(path))
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_puts_its_attribute_on_the_server_span() {
    let collector = OtlpCollector::start().await;
    let mut app = app(&collector, &[]).await;
    let trace_id = random_trace_id();
    let tp = traceparent(&trace_id, &random_span_id());
    assert_eq!(get(&app, "/users/42", &[("traceparent", &tp)]).await.0, 200);
    stop(&mut app).await;
    let spans = collector
        .wait_for_spans(|s| s.trace_id() == trace_id, SPAN_TIMEOUT)
        .await;
    let server = server_span_of(&spans, "/users/42")
        .unwrap_or_else(|| panic!("no server span: {}", collector.summary()));
    assert_eq!(server.attr_str("enduser.id"), Some("42"));
    assert_eq!(server.span.name, "GET /users/{id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_recorded_500_and_the_service_keeps_serving() {
    let collector = OtlpCollector::start().await;
    let mut app = app(&collector, &[]).await;
    let trace_id = random_trace_id();
    let tp = traceparent(&trace_id, &random_span_id());
    assert_eq!(get(&app, "/panic", &[("traceparent", &tp)]).await.0, 500);
    assert_eq!(
        get(&app, "/users/1", &[]).await.0,
        200,
        "served after the panic"
    );

    let (status, exposition) = get(&app, "/metrics", &[]).await;
    assert_eq!(status, 200);
    let counted = exposition.lines().any(|l| {
        l.starts_with("http_server_request_duration_seconds_count{")
            && l.contains("http_route=\"/panic\"")
            && l.contains("http_response_status_code=\"500\"")
            && l.ends_with(" 1")
    });
    assert!(counted, "{exposition}");
    stop(&mut app).await;

    let spans = collector
        .wait_for_spans(|s| s.trace_id() == trace_id, SPAN_TIMEOUT)
        .await;
    let server = server_span_of(&spans, "/panic")
        .unwrap_or_else(|| panic!("no server span: {}", collector.summary()));
    let status = server.span.status.clone().unwrap_or_default();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(server.attr_i64("http.response.status_code"), Some(500));
    let exception = server
        .span
        .events
        .iter()
        .find(|e| e.name == "exception")
        .unwrap_or_else(|| panic!("no exception event: {:?}", server.span.events));
    assert_eq!(
        sightline_tests::collector::attr_str(&exception.attributes, "exception.message"),
        Some("the quick start panics on purpose")
    );
    let errors: Vec<_> = json_lines(&app)
        .into_iter()
        .filter(|l| l.target() == Some(ACCESS_TARGET) && l.trace_id() == Some(trace_id.as_str()))
        .collect();
    assert_eq!(errors.len(), 1, "{}", app.output_report());
    assert_eq!(errors[0].top_str("level"), Some("ERROR"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reqwest_call_is_a_client_span_whose_id_the_upstream_sees() {
    let collector = OtlpCollector::start().await;
    // UPSTREAM defaults to the quick start itself: the upstream's server span is ours too.
    let mut app = app(&collector, &[]).await;
    let trace_id = random_trace_id();
    let tp = traceparent(&trace_id, &random_span_id());
    let (status, body) = get(&app, "/proxy/users/9", &[("traceparent", &tp)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"id\":\"9\""), "the upstream's body: {body}");
    stop(&mut app).await;

    let spans = collector
        .wait_for_span_count(|s| s.trace_id() == trace_id, 3, SPAN_TIMEOUT)
        .await;
    let proxy = server_span_of(&spans, "/proxy/users/9")
        .unwrap_or_else(|| panic!("no proxy span: {}", collector.summary()));
    let client = spans
        .iter()
        .find(|s| s.span.kind == SpanKind::Client as i32)
        .unwrap_or_else(|| panic!("no client span: {spans:#?}"));
    let upstream = server_span_of(&spans, "/users/9")
        .unwrap_or_else(|| panic!("no upstream span: {spans:#?}"));
    assert_eq!(
        client.parent_span_id(),
        proxy.span_id(),
        "CLIENT under the server span"
    );
    assert_eq!(
        upstream.parent_span_id(),
        client.span_id(),
        "the upstream's parent is the CLIENT span"
    );
    assert_eq!(client.attr_str("http.request.method"), Some("GET"));
    assert_eq!(client.attr_i64("http.response.status_code"), Some(200));
    let request_ids: Vec<_> = json_lines(&app)
        .into_iter()
        .filter(|l| l.target() == Some(ACCESS_TARGET) && l.trace_id() == Some(trace_id.as_str()))
        .filter_map(|l| l.request_id().map(str::to_owned))
        .collect();
    assert_eq!(request_ids.len(), 2, "{}", app.output_report());
    assert_eq!(
        request_ids[0], request_ids[1],
        "the request ID is forwarded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_make_no_span_and_no_access_line_but_are_counted() {
    let collector = OtlpCollector::start().await;
    let mut app = app(&collector, &[]).await;
    let trace_id = random_trace_id();
    let tp = traceparent(&trace_id, &random_span_id());
    for _ in 0..3 {
        assert_eq!(get(&app, "/healthz", &[("traceparent", &tp)]).await.0, 200);
    }
    let (_, exposition) = get(&app, "/metrics", &[]).await;
    let counted = exposition.lines().any(|l| {
        l.starts_with("http_server_request_duration_seconds_count{")
            && l.contains("http_route=\"/healthz\"")
            && l.ends_with(" 3")
    });
    assert!(counted, "{exposition}");
    // A traced request after them, so "nothing exported" is not "not exported yet".
    let later = random_trace_id();
    let tp = traceparent(&later, &random_span_id());
    assert_eq!(get(&app, "/users/1", &[("traceparent", &tp)]).await.0, 200);
    stop(&mut app).await;
    collector
        .wait_for_spans(|s| s.trace_id() == later, SPAN_TIMEOUT)
        .await;
    assert!(
        collector.spans().iter().all(|s| s.trace_id() != trace_id),
        "a probe made a span: {}",
        collector.summary()
    );
    assert!(
        collector
            .spans()
            .iter()
            .all(|s| s.attr_str("url.path") != Some("/metrics")),
        "a scrape made a span"
    );
    let probe_lines = json_lines(&app)
        .into_iter()
        .filter(|l| l.target() == Some(ACCESS_TARGET))
        .filter(|l| l.field_text("http.route").as_deref() == Some("/healthz"))
        .count();
    assert_eq!(probe_lines, 0, "{}", app.output_report());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_address_follows_forwarded_headers_only_from_trusted_proxies() {
    for (trusted, expected) in [(Some("127.0.0.1"), "203.0.113.7"), (None, "127.0.0.1")] {
        let collector = OtlpCollector::start().await;
        let env: Vec<(&str, &str)> = trusted
            .map(|t| vec![("SIGHTLINE_TRUSTED_PROXIES", t)])
            .unwrap_or_default();
        let mut app = app(&collector, &env).await;
        let trace_id = random_trace_id();
        let tp = traceparent(&trace_id, &random_span_id());
        let headers = [
            ("traceparent", tp.as_str()),
            ("x-forwarded-for", "198.51.100.1, 203.0.113.7"),
        ];
        assert_eq!(get(&app, "/users/3", &headers).await.0, 200);
        stop(&mut app).await;
        let spans = collector
            .wait_for_spans(|s| s.trace_id() == trace_id, SPAN_TIMEOUT)
            .await;
        let server = server_span_of(&spans, "/users/3")
            .unwrap_or_else(|| panic!("no server span: {}", collector.summary()));
        assert_eq!(
            server.attr_str("client.address"),
            Some(expected),
            "trusted: {trusted:?}"
        );
        let access = json_lines(&app)
            .into_iter()
            .find(|l| l.target() == Some(ACCESS_TARGET) && l.trace_id() == Some(trace_id.as_str()))
            .expect("an access line");
        assert_eq!(
            access.field_text("client.address").as_deref(),
            Some(expected),
            "trusted: {trusted:?}"
        );
    }
}
