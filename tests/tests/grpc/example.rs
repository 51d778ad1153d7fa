//! example-grpc run as a user runs it, observed from the outside: a real Prometheus scraping
//! its metrics port, its OTLP export into the test's collector, its JSON log lines.
//!
//! Build it first: `cargo build -p example-grpc` (scripts/test does it).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use sightline_tests::collector::{OtlpCollector, SpanRecord};
use sightline_tests::grpc::connect;
use sightline_tests::grpc::greeter::greeter_client::GreeterClient;
use sightline_tests::grpc::greeter::{FailRequest, HelloRequest, StreamHellosRequest};
use sightline_tests::http::HttpClient;
use sightline_tests::logs::LogLine;
use sightline_tests::process::ExampleProcess;
use sightline_tests::prometheus::{
    Prometheus, label_values, openmetrics_check, parse_prometheus_float, promtool_check_metrics,
    scalar,
};
use sightline_tests::util::{random_span_id, random_trace_id};
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The package under test.
pub(crate) const EXAMPLE_GRPC: &str = "example-grpc";
const GREETER: &str = "sightline.example.v1.Greeter";
/// What `StreamHellos` does with an empty request: 5 answers, each after 100 ms.
const STREAM_DELAYS: Duration = Duration::from_millis(500);
/// Slack allowed on top of the known delays.
const SLACK: Duration = Duration::from_millis(1500);
const LOG_TIMEOUT: Duration = Duration::from_secs(5);
const SPAN_TIMEOUT: Duration = Duration::from_secs(15);
const ACCESS_TARGET: &str = "sightline_http::access";
/// The semantic conventions' duration buckets, plus `+Inf`.
const BUCKETS: [f64; 15] = [
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    f64::INFINITY,
];

fn greeter(method: &str) -> String {
    format!("{GREETER}/{method}")
}

async fn start(env: &[(&str, &str)]) -> (ExampleProcess, Channel) {
    let app = ExampleProcess::start(EXAMPLE_GRPC, env).await;
    let channel = connect(&app.url("")).await;
    (app, channel)
}

/// `message` as a request with `metadata`.
fn request<T>(message: T, metadata: &[(&'static str, &str)]) -> Request<T> {
    let mut request = Request::new(message);
    for (key, value) in metadata {
        request
            .metadata_mut()
            .insert(*key, value.parse().expect("ascii metadata"));
    }
    request
}

async fn say_hello(client: &mut GreeterClient<Channel>, metadata: &[(&'static str, &str)]) {
    let request = request(HelloRequest::default(), metadata);
    let reply = client.say_hello(request).await.expect("SayHello answers");
    assert_eq!(reply.get_ref().message, "Hello, world!");
}

/// Calls `StreamHellos` with an empty request, reads at most `up_to` answers and drops the
/// stream (before its end, that is the client cancelling); the indexes read.
async fn read_hellos(
    client: &mut GreeterClient<Channel>,
    metadata: &[(&'static str, &str)],
    up_to: usize,
) -> Vec<u32> {
    let request = request(StreamHellosRequest::default(), metadata);
    let mut stream = client
        .stream_hellos(request)
        .await
        .expect("StreamHellos starts")
        .into_inner();
    let mut indexes = Vec::new();
    while indexes.len() < up_to {
        // Bounded: the example sends 5 messages; the timeout guards a stream that never ends.
        let Some(reply) = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("a message or the end within 10 s")
            .expect("no error")
        else {
            break;
        };
        indexes.push(reply.index);
    }
    indexes
}

/// Calls `StreamHellos` and reads every answer.
async fn stream_hellos(client: &mut GreeterClient<Channel>, metadata: &[(&'static str, &str)]) {
    assert_eq!(
        read_hellos(client, metadata, usize::MAX).await,
        [0, 1, 2, 3, 4]
    );
}

/// Calls `StreamHellos`, reads the first answer and cancels.
async fn cancel_stream_hellos(
    client: &mut GreeterClient<Channel>,
    metadata: &[(&'static str, &str)],
) {
    assert_eq!(read_hellos(client, metadata, 1).await, [0]);
}

async fn fail(client: &mut GreeterClient<Channel>) {
    let status = client
        .fail(Request::new(FailRequest::default()))
        .await
        .expect_err("Fail fails");
    assert_eq!(status.code(), Code::Internal, "{status:?}");
}

async fn health_check(channel: &Channel) {
    let mut health = HealthClient::new(channel.clone());
    for service in ["", GREETER] {
        let response = health
            .check(Request::new(HealthCheckRequest {
                service: service.to_owned(),
            }))
            .await
            .unwrap_or_else(|s| panic!("health check of {service:?}: {s:?}"));
        assert_eq!(
            response.get_ref().status,
            ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
}

async fn scalar_of(prometheus: &Prometheus, promql: &str) -> Option<f64> {
    let result = prometheus
        .query(promql)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    scalar(&result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_prometheus_counts_every_call() {
    const HELLOS: usize = 7;
    const FAILS: usize = 2;
    let (app, channel) = start(&[]).await;
    let metrics_addr = app.listening_addr("metrics_addr").unwrap_or_else(|| {
        panic!(
            "no metrics_addr in the listening line\n{}",
            app.output_report()
        )
    });
    let prometheus = Prometheus::start(metrics_addr, "/metrics").await;
    let mut client = GreeterClient::new(channel.clone());

    for _ in 0..HELLOS {
        say_hello(&mut client, &[]).await;
    }
    for _ in 0..FAILS {
        fail(&mut client).await;
    }
    stream_hellos(&mut client, &[]).await;
    cancel_stream_hellos(&mut client, &[]).await;
    health_check(&channel).await;

    // A scrape that starts after the last call ended sees every call.
    let done = SystemTime::now() + Duration::from_millis(200);
    prometheus
        .wait_for_scrape_after(done, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}\nprometheus log:\n{}", prometheus.log()));

    let count = |method: &str, code: &str, error: bool| {
        let error = if error {
            format!(",error_type=\"{code}\"")
        } else {
            String::new()
        };
        format!(
            "rpc_server_call_duration_seconds_count{{rpc_system_name=\"grpc\",rpc_method=\"{}\",\
             rpc_status_code=\"{code}\"{error}}}",
            greeter(method)
        )
    };
    let report = || app.output_report();
    assert_eq!(
        scalar_of(&prometheus, &count("SayHello", "OK", false)).await,
        Some(HELLOS as f64),
        "{}",
        report()
    );
    assert_eq!(
        scalar_of(&prometheus, &count("Fail", "INTERNAL", true)).await,
        Some(FAILS as f64),
        "{}",
        report()
    );
    assert_eq!(
        scalar_of(&prometheus, &count("StreamHellos", "OK", false)).await,
        Some(1.0)
    );
    // The client that left mid-stream: counted once, as CANCELLED, not a server error.
    assert_eq!(
        scalar_of(&prometheus, &count("StreamHellos", "CANCELLED", false)).await,
        Some(1.0),
        "{}",
        report()
    );
    // OK calls carry no error_type.
    let ok_with_error =
        "rpc_server_call_duration_seconds_count{rpc_status_code=\"OK\",error_type!=\"\"}";
    let result = prometheus
        .query(ok_with_error)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(result.as_array().map(Vec::len), Some(0), "{result}");

    let sum = scalar_of(
        &prometheus,
        &format!(
            "rpc_server_call_duration_seconds_sum{{rpc_method=\"{}\",rpc_status_code=\"OK\"}}",
            greeter("StreamHellos")
        ),
    )
    .await
    .expect("a StreamHellos duration sum");
    assert!(
        sum >= STREAM_DELAYS.as_secs_f64() && sum <= (STREAM_DELAYS + SLACK).as_secs_f64(),
        "StreamHellos lasted {sum} s for {STREAM_DELAYS:?} of delays"
    );

    let active = scalar_of(&prometheus, "sum(rpc_server_active_calls)").await;
    assert_eq!(
        active,
        Some(0.0),
        "no call in flight after the last one ended"
    );

    let buckets = prometheus
        .query(&format!(
            "rpc_server_call_duration_seconds_bucket{{rpc_method=\"{}\"}}",
            greeter("SayHello")
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let les: BTreeSet<String> = label_values(&buckets, "le").into_iter().collect();
    let mut got: Vec<f64> = les
        .iter()
        .map(|le| parse_prometheus_float(le).unwrap_or_else(|| panic!("le {le:?}")))
        .collect();
    got.sort_by(f64::total_cmp);
    assert_eq!(got, BUCKETS, "{buckets}");

    let exposition = HttpClient::new()
        .get(&format!("http://{metrics_addr}/metrics"), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exposition.status, 200);
    promtool_check_metrics(&exposition.text()).unwrap_or_else(|e| panic!("{e}"));

    // Asked for OpenMetrics, the call durations carry exemplars, and Prometheus stored them.
    let openmetrics = HttpClient::new()
        .get_with(
            &format!("http://{metrics_addr}/metrics"),
            &[("accept", "application/openmetrics-text; version=1.0.0")],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let report = openmetrics_check(&openmetrics.text())
        .unwrap_or_else(|e| panic!("{e}\n{}", openmetrics.text()));
    let exemplars = report["exemplars"].as_array().cloned().unwrap_or_default();
    assert!(
        exemplars
            .iter()
            .any(|e| e["sample"] == "rpc_server_call_duration_seconds_bucket"
                && e["exemplar_labels"]["trace_id"]
                    .as_str()
                    .is_some_and(|t| t.len() == 32)),
        "{}",
        openmetrics.text()
    );
    let stored = prometheus
        .query_exemplars(&format!(
            "rpc_server_call_duration_seconds_bucket{{rpc_method=\"{}\"}}",
            greeter("SayHello")
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        stored.as_array().is_some_and(|series| series
            .iter()
            .any(|s| s["exemplars"].as_array().is_some_and(|e| !e.is_empty()))),
        "no stored exemplar: {stored}\nprometheus log:\n{}",
        prometheus.log()
    );
}

fn find_line(app: &ExampleProcess, pred: impl Fn(&LogLine) -> bool) -> Option<LogLine> {
    app.stdout_lines()
        .iter()
        .filter_map(|l| LogLine::parse(l.as_bytes()).ok())
        .find(|l| pred(l))
}

async fn wait_line(app: &ExampleProcess, pred: impl Fn(&LogLine) -> bool) -> LogLine {
    let found = app
        .wait_for_stdout(
            |l| LogLine::parse(l.as_bytes()).is_ok_and(|l| pred(&l)),
            LOG_TIMEOUT,
        )
        .await;
    found
        .and_then(|l| LogLine::parse(l.as_bytes()).ok())
        .unwrap_or_else(|| panic!("no such log line\n{}", app.output_report()))
}

fn span_duration(span: &SpanRecord) -> Duration {
    Duration::from_nanos(
        span.span
            .end_time_unix_nano
            .saturating_sub(span.span.start_time_unix_nano),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_exports_spans_and_logs_each_call_with_its_request_id() {
    let collector = OtlpCollector::start().await;
    let endpoint = collector.grpc_endpoint();
    let (mut app, channel) = start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]).await;
    let mut client = GreeterClient::new(channel.clone());

    let (hello_trace, hello_parent) = (random_trace_id(), random_span_id());
    let (stream_trace, stream_parent) = (random_trace_id(), random_span_id());
    let hello_request_id = format!("grpc-e2e-{}", &random_span_id()[..8]);
    let traceparent = |trace: &str, parent: &str| format!("00-{trace}-{parent}-01");

    // The request ID comes back in the response metadata.
    let mut request = Request::new(HelloRequest { name: "Ada".into() });
    let metadata = request.metadata_mut();
    metadata.insert(
        "traceparent",
        traceparent(&hello_trace, &hello_parent)
            .parse()
            .expect("ascii"),
    );
    metadata.insert("x-request-id", hello_request_id.parse().expect("ascii"));
    let response = client.say_hello(request).await.expect("SayHello answers");
    assert_eq!(response.get_ref().message, "Hello, Ada!");
    assert_eq!(
        response
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some(hello_request_id.as_str())
    );

    stream_hellos(
        &mut client,
        &[("traceparent", &traceparent(&stream_trace, &stream_parent))],
    )
    .await;
    fail(&mut client).await;
    let (cancel_trace, cancel_parent) = (random_trace_id(), random_span_id());
    cancel_stream_hellos(
        &mut client,
        &[("traceparent", &traceparent(&cancel_trace, &cancel_parent))],
    )
    .await;
    health_check(&channel).await;

    // One access line per call, joined to the trace and the request.
    let access = wait_line(&app, |l| {
        l.target() == Some(ACCESS_TARGET) && l.request_id() == Some(hello_request_id.as_str())
    })
    .await;
    assert_eq!(
        access.field_text("rpc.method").as_deref(),
        Some(greeter("SayHello").as_str()),
        "{}",
        access.raw
    );
    assert_eq!(
        access.field_text("rpc.status_code").as_deref(),
        Some("OK"),
        "{}",
        access.raw
    );
    assert!(
        access
            .field("duration_ms")
            .is_some_and(serde_json::Value::is_number),
        "{}",
        access.raw
    );
    assert_eq!(
        access.trace_id(),
        Some(hello_trace.as_str()),
        "{}",
        access.raw
    );
    // The handler's own line carries the same trace and request.
    let handler = find_line(&app, |l| l.message() == Some("saying hello"))
        .unwrap_or_else(|| panic!("no handler line\n{}", app.output_report()));
    assert_eq!(
        handler.trace_id(),
        Some(hello_trace.as_str()),
        "{}",
        handler.raw
    );
    assert_eq!(
        handler.request_id(),
        Some(hello_request_id.as_str()),
        "{}",
        handler.raw
    );
    let stream_access = wait_line(&app, |l| {
        l.target() == Some(ACCESS_TARGET) && l.trace_id() == Some(stream_trace.as_str())
    })
    .await;
    let stream_ms = stream_access
        .field("duration_ms")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("duration_ms: {}", stream_access.raw));
    assert!(
        stream_ms >= STREAM_DELAYS.as_secs_f64() * 1000.0,
        "StreamHellos logged {stream_ms} ms: {}",
        stream_access.raw
    );
    let fail_access = wait_line(&app, |l| {
        l.target() == Some(ACCESS_TARGET)
            && l.field_text("rpc.method").as_deref() == Some(greeter("Fail").as_str())
    })
    .await;
    assert_eq!(
        fail_access.field_text("rpc.status_code").as_deref(),
        Some("INTERNAL"),
        "{}",
        fail_access.raw
    );
    assert_eq!(
        fail_access.top_str("level"),
        Some("ERROR"),
        "{}",
        fail_access.raw
    );

    // The spans, once the example has flushed them on SIGTERM.
    let (_, by_itself) = app.terminate().await;
    let report = || app.output_report();
    assert!(
        by_itself,
        "example-grpc did not stop on SIGTERM\n{}",
        report()
    );
    let servers = collector
        .wait_for_span_count(|s| s.span.kind == SpanKind::Server as i32, 4, SPAN_TIMEOUT)
        .await;
    let summary = || format!("{servers:#?}\n{}\n{}", collector.summary(), report());
    let by_name = |name: &str| -> &SpanRecord {
        let found: Vec<&SpanRecord> = servers.iter().filter(|s| s.span.name == name).collect();
        assert_eq!(found.len(), 1, "one {name} span\n{}", summary());
        found[0]
    };

    let hello = by_name(&greeter("SayHello"));
    assert_eq!(hello.trace_id(), hello_trace, "{}", summary());
    assert_eq!(hello.parent_span_id(), hello_parent, "{}", summary());
    assert_eq!(hello.resource_str("service.name"), Some(EXAMPLE_GRPC));
    assert_eq!(hello.attr_str("rpc.system.name"), Some("grpc"));
    assert_eq!(
        hello.attr_str("rpc.method"),
        Some(greeter("SayHello").as_str())
    );
    assert_eq!(hello.attr_str("rpc.status_code"), Some("OK"));
    assert_eq!(
        hello.attr_str("greeting.name"),
        Some("Ada"),
        "set by the tonic handler through sightline::server_span()"
    );
    assert_eq!(hello.attr_str("server.address"), Some("127.0.0.1"));
    assert_eq!(hello.attr_str("client.address"), Some("127.0.0.1"));
    assert_eq!(
        access.span_id(),
        Some(hello.span_id().as_str()),
        "{}",
        access.raw
    );

    let by_trace = |trace: &str| -> &SpanRecord {
        let found: Vec<&SpanRecord> = servers.iter().filter(|s| s.trace_id() == trace).collect();
        assert_eq!(found.len(), 1, "one span of trace {trace}\n{}", summary());
        found[0]
    };
    let stream = by_trace(&stream_trace);
    assert_eq!(stream.span.name, greeter("StreamHellos"));
    assert_eq!(stream.parent_span_id(), stream_parent);
    let lasted = span_duration(stream);
    assert!(
        lasted >= STREAM_DELAYS && lasted <= STREAM_DELAYS + SLACK,
        "StreamHellos span lasted {lasted:?}"
    );

    // Cancelled after its first answer: ended then, once, as CANCELLED and not an error.
    let cancelled = by_trace(&cancel_trace);
    assert_eq!(cancelled.span.name, greeter("StreamHellos"));
    assert_eq!(cancelled.parent_span_id(), cancel_parent);
    assert_eq!(
        cancelled.attr_str("rpc.status_code"),
        Some("CANCELLED"),
        "{}",
        summary()
    );
    assert_ne!(
        cancelled.span.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32),
        "{}",
        summary()
    );
    let lasted = span_duration(cancelled);
    assert!(
        lasted < STREAM_DELAYS,
        "the cancelled stream ended when the client left, after {lasted:?}"
    );

    let failed = by_name(&greeter("Fail"));
    assert_eq!(failed.attr_str("rpc.status_code"), Some("INTERNAL"));
    assert_eq!(failed.attr_str("error.type"), Some("INTERNAL"));
    assert_eq!(
        failed.span.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32),
        "{}",
        summary()
    );

    let health: Vec<String> = collector
        .spans()
        .into_iter()
        .filter(|s| s.span.name.contains("grpc.health"))
        .map(|s| s.span.name)
        .collect();
    assert!(
        health.is_empty(),
        "health checks make no span\n{}",
        summary()
    );
}

/// With `OTEL_METRICS_EXPORTER=otlp` the RPC metrics are pushed with the OpenTelemetry names,
/// units and buckets: a call, a failure and the one-hello stream in `rpc.server.call.duration`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_pushes_rpc_metrics_over_otlp() {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;

    let collector = OtlpCollector::start().await;
    let endpoint = collector.grpc_endpoint();
    let (mut app, channel) = start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_METRICS_EXPORTER", "otlp"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
    ])
    .await;
    let mut client = GreeterClient::new(channel);
    say_hello(&mut client, &[]).await;
    say_hello(&mut client, &[]).await;
    fail(&mut client).await;

    let hello = greeter("SayHello");
    let failed = greeter("Fail");
    let duration = collector
        .wait_for_metric(
            |m| {
                m.metric.name == "rpc.server.call.duration"
                    && m.histogram_points(&[("rpc.method", &hello)])
                        .first()
                        .is_some_and(|p| p.count == 2)
                    && !m.histogram_points(&[("rpc.method", &failed)]).is_empty()
            },
            SPAN_TIMEOUT,
        )
        .await
        .unwrap_or_else(|| panic!("no rpc.server.call.duration: {}", collector.summary()));
    assert_eq!(duration.metric.unit, "s");
    assert_eq!(duration.resource_str("service.name"), Some("example-grpc"));
    let points = duration.histogram_points(&[("rpc.method", &hello), ("rpc.status_code", "OK")]);
    assert_eq!(points.len(), 1, "{:?}", duration.metric);
    let finite: Vec<f64> = BUCKETS.iter().copied().filter(|b| b.is_finite()).collect();
    assert_eq!(points[0].explicit_bounds, finite);
    let internal =
        duration.histogram_points(&[("rpc.method", &failed), ("rpc.status_code", "INTERNAL")]);
    assert_eq!(internal.len(), 1, "{:?}", duration.metric);

    let active = collector
        .wait_for_metric(|m| m.metric.name == "rpc.server.active_calls", SPAN_TIMEOUT)
        .await
        .expect("active calls");
    assert_eq!(active.metric.unit, "{call}");
    assert!(
        matches!(&active.metric.data, Some(Data::Sum(sum)) if !sum.is_monotonic),
        "{:?}",
        active.metric
    );
    let (_, by_itself) = app.terminate().await;
    assert!(by_itself, "{}", app.output_report());
}

/// The gRPC port answers a plain HTTP/1.1 `GET /metrics` with the exposition too, while the
/// metrics port of its own keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_serves_metrics_on_its_grpc_port_too() {
    let (mut app, channel) = start(&[]).await;
    let mut client = GreeterClient::new(channel);
    say_hello(&mut client, &[]).await;
    let http = HttpClient::new();
    let on_grpc_port = http
        .get(&app.url("/metrics"), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(on_grpc_port.status, 200);
    let body = on_grpc_port.text();
    assert!(
        body.lines()
            .any(|l| l.starts_with("rpc_server_call_duration_seconds_count{")
                && l.contains(&greeter("SayHello"))),
        "{body}"
    );
    let metrics_addr = app
        .listening_addr("metrics_addr")
        .expect("the listening line names metrics_addr");
    let on_metrics_port = http
        .get(&format!("http://{metrics_addr}/metrics"), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(on_metrics_port.status, 200);
    assert!(
        on_metrics_port
            .text()
            .contains("rpc_server_call_duration_seconds")
    );
    let (_, by_itself) = app.terminate().await;
    assert!(by_itself, "{}", app.output_report());
}

/// Head sampling that picks nothing, with errors kept: the failed calls (`INTERNAL`, a server
/// error) are exported, the good ones are not, and `/metrics` counts both decisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_keeps_failed_calls_that_head_sampling_did_not_pick() {
    const HELLOS: usize = 5;
    const FAILS: usize = 2;
    let collector = OtlpCollector::start().await;
    let endpoint = collector.grpc_endpoint();
    let (mut app, channel) = start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_TRACES_SAMPLER", "traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ("SIGHTLINE_KEEP_ERRORS", "true"),
    ])
    .await;
    let mut client = GreeterClient::new(channel.clone());
    for _ in 0..HELLOS {
        say_hello(&mut client, &[]).await;
    }
    for _ in 0..FAILS {
        fail(&mut client).await;
    }
    let servers = |s: &SpanRecord| s.span.kind == SpanKind::Server as i32;
    let failed = collector
        .wait_for_span_count(servers, FAILS, Duration::from_secs(15))
        .await;
    // A margin for a late export of a call that should not be there.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let exported: Vec<_> = collector.spans().into_iter().filter(servers).collect();
    assert_eq!(exported.len(), FAILS, "{}", collector.summary());
    assert!(
        failed.iter().all(
            |s| s.attr_str("rpc.method") == Some(greeter("Fail").as_str())
                && s.attr_str("rpc.status_code") == Some("INTERNAL")
        ),
        "{failed:?}"
    );
    let metrics = HttpClient::new()
        .get_text(&format!(
            "http://{}/metrics",
            app.listening_addr("metrics_addr").expect("metrics_addr")
        ))
        .await;
    assert!(
        metrics.contains("sightline_traces_total{decision=\"kept_error\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sightline_traces_total{decision=\"dropped\"} 5"),
        "{metrics}"
    );
    app.terminate().await;
}
