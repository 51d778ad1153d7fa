//! Which method a call is recorded under: methods the server does not serve become `_OTHER`
//! (with `rpc.method_original` on the span) so a scan of random names adds no series, and
//! health checks stay out of the traces.

use http::uri::PathAndQuery;
use opentelemetry::trace::SpanKind;
use sightline_http::grpc::GrpcServerLayer;
use sightline_tests::grpc::echo::echo_server::EchoServer;
use sightline_tests::grpc::echo::{EchoReply, EchoRequest};
use sightline_tests::grpc::{EchoService, GrpcServer};
use tonic::{Code, Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceBuilder;

use crate::support::{
    ECHO, Telemetry, assert_call_span, assert_parent_child, attr, call_labels, echo_client,
    echo_method, echo_server, is_error,
};

const SERVER_DURATION: &str = "rpc_server_call_duration_seconds_count";

/// Calls `path` on `channel` with an empty `EchoRequest`, whatever the server serves.
async fn call_path<T>(channel: T, path: &str) -> Result<EchoReply, Status>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("not ready: {}", e.into())))?;
    let path = PathAndQuery::try_from(path.to_owned()).expect("a valid path");
    let codec = tonic_prost::ProstCodec::<EchoRequest, EchoReply>::default();
    grpc.unary(Request::new(EchoRequest::default()), path, codec)
        .await
        .map(tonic::Response::into_inner)
}

/// Calls each of `unknown` (`pkg.Service/Method`, not served) through the client layer, and
/// checks the server records each as `_OTHER` with its original name.
async fn unknown_methods_are_other(layer: GrpcServerLayer, t: &Telemetry, unknown: &[&str]) {
    let (server, echo) = echo_server(layer).await;
    let client_layer = t.client_builder().target(&server.uri()).build();
    let channel = server.channel().await;
    let wrapped = ServiceBuilder::new().layer(client_layer).service(channel);

    for (i, method) in unknown.iter().enumerate() {
        let status = call_path(wrapped.clone(), &format!("/{method}"))
            .await
            .expect_err("not served");
        assert_eq!(status.code(), Code::Unimplemented, "{method}: {status:?}");
        let server_span = t
            .wait_span_where(SpanKind::Server, |s| {
                attr(s, "rpc.method_original").as_deref() == Some(*method)
            })
            .await;
        assert_eq!(server_span.name, "grpc", "{server_span:#?}");
        assert_eq!(
            attr(&server_span, "rpc.method").as_deref(),
            Some("_OTHER"),
            "{server_span:#?}"
        );
        assert_eq!(
            attr(&server_span, "rpc.status_code").as_deref(),
            Some("UNIMPLEMENTED"),
            "{server_span:#?}"
        );
        assert_eq!(
            attr(&server_span, "error.type").as_deref(),
            Some("UNIMPLEMENTED")
        );
        assert!(is_error(&server_span), "{server_span:#?}");
        let clients = t.wait_spans(SpanKind::Client, i + 1).await;
        let client_span = clients
            .iter()
            .find(|c| c.span_context.span_id() == server_span.parent_span_id)
            .unwrap_or_else(|| panic!("the client span of {method}: {clients:#?}"));
        assert_parent_child(client_span, &server_span);
        assert!(is_error(client_span), "{client_span:#?}");
    }
    assert!(echo.calls().is_empty(), "no handler ran");

    let mut labels = call_labels("_OTHER", "UNIMPLEMENTED");
    labels.push(("error_type", "UNIMPLEMENTED"));
    t.wait_sample(SERVER_DURATION, &labels, unknown.len() as f64)
        .await;
    let methods: Vec<String> = t
        .samples()
        .iter()
        .filter(|s| s.name == SERVER_DURATION)
        .filter_map(|s| s.label("rpc_method").map(str::to_owned))
        .collect();
    assert_eq!(methods, ["_OTHER"], "{}", t.metrics_text());
}

#[tokio::test]
async fn unknown_methods_are_other_with_the_original_name() {
    let t = Telemetry::new();
    let unknown = [
        "sightline.test.v1.Echo/Nope",
        "no.such.Service/Method",
        "sightline.test.v1.Echo/unary",
    ];
    unknown_methods_are_other(t.server_builder().build(), &t, &unknown).await;
}

/// With a list, what is not on it is `_OTHER` from the start (a listed service's name is
/// matched whole, not as a prefix).
#[tokio::test]
async fn unknown_methods_are_other_with_a_list_of_known_services() {
    let t = Telemetry::new();
    let unknown = ["no.such.Service/Method", "sightline.test.v1.Echoes/Unary"];
    let layer = t.server_builder().known_services([ECHO]).build();
    unknown_methods_are_other(layer, &t, &unknown).await;
}

#[tokio::test]
async fn a_scan_of_random_method_names_adds_no_series() {
    const NAMES: usize = 30;
    let t = Telemetry::new();
    let (server, _echo) = echo_server(t.server_builder().build()).await;
    let channel = server.channel().await;
    for i in 0..NAMES {
        let path = format!("/scan{i}.{}.Service/Method{i}", uuid_like(i));
        let status = call_path(channel.clone(), &path)
            .await
            .expect_err("not served");
        assert_eq!(status.code(), Code::Unimplemented);
    }
    let mut labels = call_labels("_OTHER", "UNIMPLEMENTED");
    labels.push(("error_type", "UNIMPLEMENTED"));
    t.wait_sample(SERVER_DURATION, &labels, NAMES as f64).await;
    let series = t
        .samples()
        .iter()
        .filter(|s| s.name.starts_with("rpc_server_"))
        .filter(|s| s.label("rpc_method").is_some_and(|m| m != "_OTHER"))
        .map(|s| s.series_key())
        .collect::<Vec<_>>();
    assert!(series.is_empty(), "series by scanned name: {series:#?}");
    let spans = t.spans_of(&SpanKind::Server);
    assert_eq!(spans.len(), NAMES);
    assert!(spans.iter().all(|s| s.name == "grpc"), "{spans:#?}");
}

fn uuid_like(i: usize) -> String {
    format!("{:08x}", i.wrapping_mul(0x9e37_79b9))
}

/// Without a list of known services, a method is learned from its first call that ends with
/// anything but UNIMPLEMENTED; until then an UNIMPLEMENTED answer cannot be told apart from
/// tonic's answer to an unknown method.
#[tokio::test]
async fn a_served_method_is_learned_from_its_first_answer() {
    let t = Telemetry::new();
    let (server, _echo) = echo_server(t.server_builder().build()).await;
    let mut client = echo_client(&server, t.client_builder().target(&server.uri()).build()).await;
    let method = echo_method("Unary");
    let unimplemented = || EchoRequest {
        fail_code: Code::Unimplemented as i32,
        ..EchoRequest::default()
    };

    let status = client
        .unary(Request::new(unimplemented()))
        .await
        .expect_err("fails as asked");
    assert_eq!(status.code(), Code::Unimplemented);
    let first = t.one_span(SpanKind::Server).await;
    assert_eq!(attr(&first, "rpc.method").as_deref(), Some("_OTHER"));
    assert_eq!(
        attr(&first, "rpc.method_original").as_deref(),
        Some(method.as_str())
    );

    client
        .unary(Request::new(EchoRequest::default()))
        .await
        .expect("OK");
    let status = client
        .unary(Request::new(unimplemented()))
        .await
        .expect_err("fails as asked");
    assert_eq!(status.code(), Code::Unimplemented);
    let spans = t.wait_spans(SpanKind::Server, 3).await;
    assert_call_span(&spans[1], &method, "OK", false);
    assert_call_span(&spans[2], &method, "UNIMPLEMENTED", true);
    assert_eq!(attr(&spans[2], "rpc.method_original"), None);
}

/// The Echo service and `grpc.health.v1.Health` behind `layer`.
async fn with_health(layer: GrpcServerLayer) -> GrpcServer {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<EchoServer<EchoService>>().await;
    let router = tonic::transport::Server::builder()
        .layer(layer)
        .add_service(health)
        .add_service(EchoServer::new(EchoService::default()));
    GrpcServer::start(router).await
}

async fn check_health(server: &GrpcServer) {
    let mut health = HealthClient::new(server.channel().await);
    for service in ["", ECHO] {
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

#[tokio::test]
async fn health_checks_make_no_span() {
    let t = Telemetry::new();
    let server = with_health(t.server_builder().build()).await;
    check_health(&server).await;
    // A call after the health checks: once its span has ended, theirs would have too.
    let mut client = echo_client(&server, t.client_builder().target(&server.uri()).build()).await;
    client
        .unary(Request::new(EchoRequest::default()))
        .await
        .expect("OK");
    let spans = t.wait_spans(SpanKind::Server, 1).await;
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(names, [echo_method("Unary")], "{spans:#?}");
}

#[tokio::test]
async fn health_checks_are_traced_when_asked() {
    let t = Telemetry::new();
    let server = with_health(t.server_builder().trace_health_checks(true).build()).await;
    check_health(&server).await;
    let spans = t.wait_spans(SpanKind::Server, 2).await;
    for span in &spans {
        assert_call_span(span, "grpc.health.v1.Health/Check", "OK", false);
    }
}
