//! The harness checked against known peers, so an e2e failure points at the product: an OTLP
//! exporter made of the `opentelemetry-proto` client, a static metrics page, `promtool`.

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;
use sightline_tests::collector::{OtlpCollector, Transport};
use sightline_tests::http::{raw_get, raw_request};
use sightline_tests::process::ExampleProcess;
use sightline_tests::prometheus::{Prometheus, promtool_check_metrics, scalar, series_set};

const CLEAN_METRICS: &str = "# HELP demo_requests_total Requests served.\n\
# TYPE demo_requests_total counter\n\
demo_requests_total{route=\"/a\"} 42\n";

fn export_request(service: &str, trace_id: [u8; 16], name: &str) -> ExportTraceServiceRequest {
    let kv = |k: &str, v: &str| KeyValue {
        key: k.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.to_owned())),
        }),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: trace_id.to_vec(),
                    span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
                    name: name.to_owned(),
                    kind: 2,
                    attributes: vec![
                        kv("http.route", "/users/{id}"),
                        KeyValue {
                            key: "http.response.status_code".to_owned(),
                            value: Some(AnyValue {
                                value: Some(Value::IntValue(200)),
                            }),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_receives_grpc_and_http_protobuf() {
    let collector = OtlpCollector::start().await;

    let mut client = TraceServiceClient::connect(collector.grpc_endpoint())
        .await
        .expect("connect to the gRPC receiver");
    client
        .export(export_request("svc-grpc", [0xab; 16], "grpc span"))
        .await
        .expect("gRPC export");

    let body = export_request("svc-http", [0xcd; 16], "http span").encode_to_vec();
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(format!("{}/v1/traces", collector.http_endpoint()))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .expect("HTTP export");
    assert_eq!(response.status(), 200);

    let spans = collector
        .wait_for_span_count(|_| true, 2, Duration::from_secs(5))
        .await;
    assert_eq!(spans.len(), 2);
    let grpc = spans
        .iter()
        .find(|s| s.transport == Transport::Grpc)
        .expect("gRPC span");
    assert_eq!(grpc.trace_id(), "ab".repeat(16));
    assert_eq!(grpc.span_id(), "0102030405060708");
    assert_eq!(grpc.parent_span_id(), "");
    assert_eq!(grpc.resource_str("service.name"), Some("svc-grpc"));
    assert_eq!(grpc.attr_str("http.route"), Some("/users/{id}"));
    assert_eq!(grpc.attr_i64("http.response.status_code"), Some(200));
    let http = spans
        .iter()
        .find(|s| s.transport == Transport::HttpProtobuf)
        .expect("HTTP span");
    assert_eq!(http.span.name, "http span");
    assert_eq!(http.resource_str("service.name"), Some("svc-http"));

    // JSON bodies are refused and recorded, not silently accepted.
    let refused = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(format!("{}/v1/traces", collector.http_endpoint()))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("HTTP export");
    assert_eq!(refused.status(), 415);
    assert_eq!(collector.rejected().len(), 1);
    assert_eq!(
        collector.connections(Transport::Grpc),
        1,
        "{}",
        collector.summary()
    );
    assert!(
        collector.connections(Transport::HttpProtobuf) >= 1,
        "{}",
        collector.summary()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_a_static_target() {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route("/metrics", axum::routing::get(|| async { CLEAN_METRICS }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let prometheus = Prometheus::start(addr, "/metrics").await;
    prometheus
        .wait_for_scrape_after(SystemTime::now(), Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", prometheus.log()));
    let result = prometheus
        .query(r#"demo_requests_total{route="/a"}"#)
        .await
        .expect("query");
    assert_eq!(scalar(&result), Some(42.0), "{result}");
    server.abort();
}

#[test]
fn promtool_accepts_clean_text_and_reports_lint_findings() {
    promtool_check_metrics(CLEAN_METRICS).expect("clean exposition");
    let problems = promtool_check_metrics("# TYPE demo counter\ndemo 1\n")
        .expect_err("no HELP and no _total suffix");
    assert!(problems.contains("demo"), "{problems}");
    assert_eq!(series_set(CLEAN_METRICS).expect("parses").len(), 1);
}

#[tokio::test]
async fn raw_client_reads_a_plain_http_answer() {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route(
        "/echo",
        axum::routing::get(|headers: axum::http::HeaderMap| async move {
            headers
                .get_all("x-a")
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join("|")
        }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let request = raw_get(addr, "/echo", &[b"x-a: 1", b"X-A: 2"]);
    let response = raw_request(addr, &request).await.expect("answer");
    assert_eq!((response.status, response.text().as_str()), (200, "1|2"));
    let bad = raw_request(addr, &raw_get(addr, "/echo", &[b"x-a: a\x01b"]))
        .await
        .expect("answer");
    assert_eq!(
        bad.status, 400,
        "hyper refuses control characters in header values"
    );
    server.abort();
}

#[tokio::test]
#[should_panic(expected = "build it first: cargo build -p example-that-does-not-exist")]
async fn a_missing_example_says_how_to_build_it() {
    ExampleProcess::start("example-that-does-not-exist", &[]).await;
}
