//! The facade's gRPC layers in a real tonic stack, each composed with other tower layers
//! (a timeout and a concurrency limit on the server, a timeout on the client), both configured
//! by one builder: the client's CLIENT span and the server's SERVER span make one trace in an
//! OTLP collector, the request ID crosses in the metadata and comes back, both RED histograms
//! and the server's access line come out of the same process, and the client's error codes
//! follow the builder (NOT_FOUND is an answer, not a failed call).

use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use sightline::Sightline;
use sightline::grpc::{Code, CodeSet};
use sightline::propagation::{Format, Propagator};
use sightline_tests::collector::{OtlpCollector, SpanRecord};
use sightline_tests::grpc::echo::EchoRequest;
use sightline_tests::grpc::echo::echo_client::EchoClient;
use sightline_tests::grpc::echo::echo_server::EchoServer;
use sightline_tests::grpc::{EchoService, GrpcServer};
use sightline_tests::logs::Captured;
use sightline_tests::prometheus::parse_exposition;
use tokio_stream::StreamExt as _;

const UNARY: &str = "sightline.test.v1.Echo/Unary";
const STREAM: &str = "sightline.test.v1.Echo/ServerStream";

/// The value of the first sample `name` with every one of `labels`, from a real parse of the
/// exposition.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    parse_exposition(text)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .map(|s| s.value)
}

fn pair<'a>(spans: &'a [SpanRecord], method: &str, code: &str) -> (&'a SpanRecord, &'a SpanRecord) {
    let find = |kind: SpanKind| {
        spans
            .iter()
            .find(|s| {
                s.span.kind == kind as i32
                    && s.span.name == method
                    && s.attr_str("rpc.status_code") == Some(code)
            })
            .unwrap_or_else(|| panic!("no {kind:?} span {method} {code}: {spans:#?}"))
    };
    (find(SpanKind::Client), find(SpanKind::Server))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facade_layers_compose_with_other_tower_layers() {
    let collector = OtlpCollector::start().await;
    let lines = Captured::default();
    let sightline = Sightline::builder()
        .service_name("grpc-stack")
        .otlp_endpoint(collector.grpc_endpoint())
        .export_interval(Duration::from_millis(100))
        .otlp_logs(false)
        .log_writer(lines.clone())
        .log_filter("info")
        // One setting for every layer: the client writes B3 beside W3C.
        .propagator(
            Propagator::builder()
                .inject_formats(&[Format::TraceContext, Format::B3Multi])
                .build(),
        )
        .build()
        .expect("builds");

    let echo = EchoService::default();
    let router = tonic::transport::Server::builder()
        .layer(
            tower::ServiceBuilder::new()
                .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(5)))
                .layer(sightline.grpc_server_layer())
                .layer(tower::limit::ConcurrencyLimitLayer::new(16)),
        )
        .add_service(EchoServer::new(echo.clone()));
    let server = GrpcServer::start(router).await;
    let target = server.uri();
    let channel = server.channel().await;
    let mut client = EchoClient::new(
        tower::ServiceBuilder::new()
            .layer(
                sightline
                    .grpc_client_layer_builder(&target)
                    .error_codes(CodeSet::ALL_ERRORS.without(Code::NotFound))
                    .build(),
            )
            .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(5)))
            .service(channel),
    );

    // Unary, OK, with a request ID of ours.
    let mut request = tonic::Request::new(EchoRequest {
        message: "hi".into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("x-request-id", "stack-1".parse().expect("ascii"));
    let reply = client.unary(request).await.expect("unary OK");
    assert_eq!(
        reply
            .metadata()
            .get("x-request-id")
            .map(|v| v.to_str().ok()),
        Some(Some("stack-1")),
        "the request ID comes back"
    );
    // Unary, NOT_FOUND.
    let status = client
        .unary(EchoRequest {
            fail_code: Code::NotFound.as_i32(),
            ..Default::default()
        })
        .await
        .expect_err("NOT_FOUND");
    assert_eq!(status.code(), tonic::Code::NotFound);
    // Server streaming: three messages 60 ms apart.
    let mut stream = client
        .server_stream(EchoRequest {
            count: 3,
            delay_ms: 60,
            ..Default::default()
        })
        .await
        .expect("stream")
        .into_inner();
    let mut received = 0;
    while let Some(reply) = stream.next().await {
        reply.expect("message");
        received += 1;
    }
    assert_eq!(received, 3);

    // The service saw the trace context and the request ID the client layer put in.
    let calls = echo.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(
        calls[0]
            .metadata
            .get("x-request-id")
            .map(|v| v.to_str().ok()),
        Some(Some("stack-1"))
    );
    let sent_traceparent = calls[0]
        .metadata
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .expect("traceparent injected")
        .to_owned();

    let spans = collector
        .wait_for_spans(
            |s| s.span.name.starts_with("sightline.test.v1.Echo/"),
            Duration::from_secs(15),
        )
        .await;
    let spans = if spans.len() < 6 {
        let _ = sightline_tests::util::poll_until(
            Duration::from_secs(15),
            Duration::from_millis(50),
            || std::future::ready((collector.spans().len() >= 6).then_some(())),
        )
        .await;
        collector.spans()
    } else {
        spans
    };
    assert_eq!(
        spans.len(),
        6,
        "three calls, a span on each side: {spans:#?}"
    );
    for (method, code) in [(UNARY, "OK"), (UNARY, "NOT_FOUND"), (STREAM, "OK")] {
        let (client_span, server_span) = pair(&spans, method, code);
        assert_eq!(
            client_span.trace_id(),
            server_span.trace_id(),
            "{method} {code}: one trace"
        );
        assert_eq!(
            server_span.parent_span_id(),
            client_span.span_id(),
            "{method} {code}: the server's parent is the client's span"
        );
        assert_eq!(client_span.attr_str("server.address"), Some("127.0.0.1"));
        assert_eq!(
            client_span.attr_i64("server.port"),
            Some(i64::from(server.addr().port()))
        );
        assert_eq!(client_span.attr_str("rpc.system.name"), Some("grpc"));
        let status = |s: &SpanRecord| s.span.status.as_ref().map_or(0, |st| st.code);
        assert_ne!(
            status(client_span),
            StatusCode::Error as i32,
            "{method} {code}: NOT_FOUND is not an error for this client"
        );
        assert_ne!(status(server_span), StatusCode::Error as i32);
    }
    let (unary_client, unary_server) = pair(&spans, UNARY, "OK");
    assert_eq!(
        sent_traceparent,
        format!(
            "00-{}-{}-01",
            unary_client.trace_id(),
            unary_client.span_id()
        )
    );
    assert_eq!(unary_server.attr_str("rpc.method"), Some(UNARY));
    let b3 = |key: &str| {
        calls[0]
            .metadata
            .get(key)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        b3("x-b3-traceid"),
        Some(unary_client.trace_id()),
        "B3 from the builder"
    );
    assert_eq!(b3("x-b3-spanid"), Some(unary_client.span_id()));
    assert_eq!(b3("x-b3-sampled").as_deref(), Some("1"));

    // Both histograms, with the stream's duration covering its three messages.
    let text = sightline.render_metrics();
    for (name, extra) in [
        ("rpc_server_call_duration_seconds_count", None),
        (
            "rpc_client_call_duration_seconds_count",
            Some(("server_address", "127.0.0.1")),
        ),
    ] {
        for (method, code) in [(UNARY, "OK"), (UNARY, "NOT_FOUND"), (STREAM, "OK")] {
            let mut labels = vec![
                ("rpc_system_name", "grpc"),
                ("rpc_method", method),
                ("rpc_status_code", code),
            ];
            labels.extend(extra);
            assert_eq!(
                sample(&text, name, &labels),
                Some(1.0),
                "{name} {method} {code}\n{text}"
            );
        }
    }
    for name in [
        "rpc_server_call_duration_seconds_sum",
        "rpc_client_call_duration_seconds_sum",
    ] {
        let secs = sample(&text, name, &[("rpc_method", STREAM)]).expect("stream duration");
        assert!(
            (0.15..5.0).contains(&secs),
            "{name}: {secs} s for three messages 60 ms apart"
        );
    }
    assert_eq!(
        sample(&text, "rpc_server_active_calls", &[("rpc_method", UNARY)]),
        Some(0.0),
        "{text}"
    );

    // The server's access line for the first call, joined to its span by ids.
    let lines: Vec<serde_json::Value> = lines.lines().into_iter().map(|l| l.json).collect();
    let access = lines
        .iter()
        .find(|l| l["target"] == "sightline_http::access" && l["request_id"] == "stack-1")
        .unwrap_or_else(|| panic!("no access line for stack-1: {lines:#?}"));
    assert_eq!(
        access["trace_id"],
        unary_server.trace_id().as_str(),
        "{access}"
    );
    assert_eq!(
        access["span_id"],
        unary_server.span_id().as_str(),
        "{access}"
    );
    assert_eq!(access["fields"]["rpc.method"], UNARY, "{access}");

    drop(client);
    tokio::task::spawn_blocking(move || sightline.shutdown())
        .await
        .expect("joins")
        .expect("shuts down");
}
