//! The client middleware around `hyper_util`'s legacy client, calling a real axum server on
//! 127.0.0.1 that echoes the trace-context headers it received. Spans are exported through
//! the SDK's in-memory exporter.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::Context;
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use sightline_http::client::{ClientLayer, HTTP_CLIENT_REQUEST_DURATION};
use sightline_http::server::{DURATION_BUCKETS, ServerLayer};
use sightline_http::{ClientLayerBuilder, RequestId};
use sightline_propagation::{Baggage, Format, Propagator};
use tower::{Service as _, ServiceBuilder, ServiceExt as _};

type Hyper = HyperClient<HttpConnector, Empty<Bytes>>;

struct Spans {
    provider: SdkTracerProvider,
    exporter: InMemorySpanExporter,
}

impl Spans {
    fn new() -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        Self { provider, exporter }
    }

    fn client_layer(&self) -> ClientLayerBuilder {
        prometheus();
        ClientLayer::builder().tracer(self.provider.tracer("test"))
    }

    fn finished(&self) -> Vec<SpanData> {
        self.exporter
            .get_finished_spans()
            .expect("in-memory exporter")
    }

    fn of_kind(&self, kind: &SpanKind) -> SpanData {
        let spans: Vec<_> = self
            .finished()
            .into_iter()
            .filter(|s| &s.span_kind == kind)
            .collect();
        assert_eq!(spans.len(), 1, "exactly one {kind:?} span: {spans:#?}");
        spans.into_iter().next().expect("one span")
    }
}

fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .with_recommended_naming(true)
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(HTTP_CLIENT_REQUEST_DURATION.into()),
                &DURATION_BUCKETS,
            )
            .expect("buckets")
            .install_recorder()
            .expect("no other recorder in this test binary");
        sightline_http::client::describe_client_metrics();
        handle
    })
}

fn attr_str(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

fn attr(span: &SpanData, key: &str) -> Option<opentelemetry::Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

/// Echoes the received context headers as `echo-*` response headers.
async fn echo(headers: HeaderMap) -> (HeaderMap, &'static str) {
    let mut out = HeaderMap::new();
    for name in ["traceparent", "tracestate", "baggage", "x-request-id", "b3"] {
        if let Some(value) = headers.get(name) {
            out.insert(
                http::HeaderName::from_bytes(format!("echo-{name}").as_bytes())
                    .expect("header name"),
                value.clone(),
            );
        }
    }
    (out, "echoed")
}

/// The downstream server: `/echo`, `/fail` (500) and `/slow` (5 s).
async fn downstream() -> SocketAddr {
    let app = Router::new()
        .route("/echo", get(echo))
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
    serve(app).await
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    addr
}

fn hyper() -> Hyper {
    HyperClient::builder(TokioExecutor::new()).build_http()
}

fn get_req(uri: String) -> Request<Empty<Bytes>> {
    Request::get(uri).body(Empty::new()).expect("request")
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| v.to_str().expect("visible ASCII").to_owned())
}

#[tokio::test]
async fn client_span_is_child_of_current_context_and_injected() {
    let spans = Spans::new();
    let addr = downstream().await;
    let mut client = ServiceBuilder::new()
        .layer(spans.client_layer().build())
        .service(hyper());

    let tracer = spans.provider.tracer("parent");
    let parent = tracer.start("parent");
    let parent_ids = parent.span_context().clone();
    let mut baggage = Baggage::new();
    baggage.insert("tenant", "acme");
    let cx = Context::current_with_span(parent)
        .with_value(baggage)
        .with_value(
            RequestId::from_header_value(&http::HeaderValue::from_static("req-7")).unwrap(),
        );

    client.ready().await.unwrap();
    let future = {
        let _attached = cx.clone().attach();
        client.call(get_req(format!(
            "http://127.0.0.1:{}/echo?token=s3cret&q=1",
            addr.port()
        )))
    };
    let response = future.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echoed = response.headers().clone();
    assert!(
        spans.finished().is_empty(),
        "the call ends with the body, not the head"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"echoed");
    cx.span().end();

    let span = spans.of_kind(&SpanKind::Client);
    assert_eq!(span.name, "GET");
    assert_eq!(span.parent_span_id, parent_ids.span_id());
    assert_eq!(span.span_context.trace_id(), parent_ids.trace_id());
    assert_ne!(span.span_context.span_id(), parent_ids.span_id());
    assert_eq!(span.status, Status::Unset);
    assert_eq!(
        header(&echoed, "echo-traceparent"),
        Some(format!(
            "00-{}-{}-01",
            parent_ids.trace_id(),
            span.span_context.span_id()
        )),
        "the client span's id, not the parent's"
    );
    assert_eq!(
        header(&echoed, "echo-baggage").as_deref(),
        Some("tenant=acme")
    );
    assert_eq!(
        header(&echoed, "echo-x-request-id").as_deref(),
        Some("req-7")
    );
    for (key, value) in [
        ("http.request.method", "GET".to_owned()),
        ("server.address", "127.0.0.1".to_owned()),
        (
            "url.full",
            format!("http://127.0.0.1:{}/echo?token=REDACTED&q=1", addr.port()),
        ),
        ("network.protocol.version", "1.1".to_owned()),
    ] {
        assert_eq!(attr_str(&span, key), Some(value), "{key}");
    }
    assert_eq!(
        attr(&span, "server.port"),
        Some(i64::from(addr.port()).into())
    );
    assert_eq!(
        attr(&span, "http.response.status_code"),
        Some(200_i64.into())
    );
    assert_eq!(attr(&span, "error.type"), None);
}

#[tokio::test]
async fn server_error_is_a_span_error_and_a_metric_label() {
    let spans = Spans::new();
    let addr = downstream().await;
    let client = ServiceBuilder::new()
        .layer(spans.client_layer().build())
        .service(hyper());

    let response = client
        .oneshot(get_req(format!("http://127.0.0.1:{}/fail", addr.port())))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    response.into_body().collect().await.unwrap();

    let span = spans.of_kind(&SpanKind::Client);
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?}",
        span.status
    );
    assert_eq!(attr_str(&span, "error.type").as_deref(), Some("500"));
    assert_eq!(
        attr(&span, "http.response.status_code"),
        Some(500_i64.into())
    );

    let text = prometheus().render();
    let port = addr.port().to_string();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("http_client_request_duration_seconds_count{")
                && l.contains("http_response_status_code=\"500\"")
                && l.contains(&format!("server_port=\"{port}\""))
        })
        .unwrap_or_else(|| panic!("no client duration series:\n{text}"));
    for label in [
        "http_request_method=\"GET\"",
        "server_address=\"127.0.0.1\"",
        "error_type=\"500\"",
    ] {
        assert!(line.contains(label), "{label} in {line}");
    }
    assert!(line.ends_with(" 1"), "{line}");
}

#[tokio::test]
async fn connection_refused_is_a_transport_error() {
    let spans = Spans::new();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().expect("local address").port()
    };
    let client = ServiceBuilder::new()
        .layer(spans.client_layer().build())
        .service(hyper());

    let error = client
        .oneshot(get_req(format!("http://127.0.0.1:{port}/echo")))
        .await
        .expect_err("nothing listens");
    assert!(
        error.is_connect(),
        "the inner error passes through: {error:?}"
    );

    let span = spans.of_kind(&SpanKind::Client);
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?}",
        span.status
    );
    assert_eq!(attr_str(&span, "error.type").as_deref(), Some("_OTHER"));
    assert_eq!(attr(&span, "http.response.status_code"), None);
}

#[tokio::test]
async fn timeout_inside_the_layer_is_error_type_timeout() {
    let spans = Spans::new();
    let addr = downstream().await;
    let client = ServiceBuilder::new()
        .layer(spans.client_layer().build())
        .layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(
            100,
        )))
        .service(hyper());

    let error = client
        .oneshot(get_req(format!("http://127.0.0.1:{}/slow", addr.port())))
        .await
        .expect_err("times out");
    assert!(error.is::<tower::timeout::error::Elapsed>(), "{error:?}");

    let span = spans.of_kind(&SpanKind::Client);
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?}",
        span.status
    );
    assert_eq!(attr_str(&span, "error.type").as_deref(), Some("timeout"));
}

#[tokio::test]
async fn dropped_future_is_cancelled_not_an_error() {
    let spans = Spans::new();
    let addr = downstream().await;
    let client = ServiceBuilder::new()
        .layer(spans.client_layer().build())
        .service(hyper());

    let call = client.oneshot(get_req(format!("http://127.0.0.1:{}/slow", addr.port())));
    assert!(
        tokio::time::timeout(Duration::from_millis(100), call)
            .await
            .is_err(),
        "the caller gives up and drops the future"
    );

    let span = spans.of_kind(&SpanKind::Client);
    assert_eq!(span.status, Status::Unset);
    assert_eq!(attr_str(&span, "error.type").as_deref(), Some("cancelled"));
}

#[tokio::test]
async fn without_a_tracer_the_current_context_is_forwarded() {
    let spans = Spans::new();
    let addr = downstream().await;
    let mut client = ServiceBuilder::new()
        .layer(ClientLayer::builder().build())
        .service(hyper());

    let parent = spans.provider.tracer("parent").start("parent");
    let parent_ids = parent.span_context().clone();
    let cx = Context::current_with_span(parent);
    client.ready().await.unwrap();
    let future = {
        let _attached = cx.clone().attach();
        client.call(get_req(format!("http://127.0.0.1:{}/echo", addr.port())))
    };
    let response = future.await.unwrap();
    assert_eq!(
        header(response.headers(), "echo-traceparent"),
        Some(format!(
            "00-{}-{}-01",
            parent_ids.trace_id(),
            parent_ids.span_id()
        ))
    );
    assert_eq!(header(response.headers(), "echo-x-request-id"), None);
}

#[derive(Clone)]
struct Front {
    client: sightline_http::client::Client<Hyper>,
    downstream: SocketAddr,
}

/// A handler that calls the downstream through the client layer and returns what it saw.
async fn front(State(front): State<Front>) -> (HeaderMap, Body) {
    let response = front
        .client
        .oneshot(get_req(format!("http://{}/echo", front.downstream)))
        .await
        .expect("downstream call");
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("downstream body")
        .to_bytes();
    (headers, Body::from(body))
}

#[tokio::test]
async fn end_to_end_through_the_server_layer() {
    let spans = Spans::new();
    let downstream_addr = downstream().await;
    let state = Front {
        client: ServiceBuilder::new()
            .layer(spans.client_layer().build())
            .service(hyper()),
        downstream: downstream_addr,
    };
    let app = Router::new()
        .route("/front", get(front))
        .with_state(state)
        .layer(
            ServerLayer::builder()
                .tracer(spans.provider.tracer("server"))
                .build(),
        );

    let response = app
        .oneshot(
            Request::get("/front")
                .header("host", "front.example.com")
                .header(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                )
                .header("baggage", "tenant=acme,user=alice")
                .header("x-request-id", "req-42")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let echoed = response.headers().clone();
    response.into_body().collect().await.unwrap();

    let server = spans.of_kind(&SpanKind::Server);
    let client = spans.of_kind(&SpanKind::Client);
    assert_eq!(
        server.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(server.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert_eq!(
        client.span_context.trace_id(),
        server.span_context.trace_id()
    );
    assert_eq!(client.parent_span_id, server.span_context.span_id());
    assert_eq!(
        header(&echoed, "echo-traceparent"),
        Some(format!(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
            client.span_context.span_id()
        )),
        "the downstream's parent is the client span"
    );
    assert_eq!(
        header(&echoed, "echo-baggage").as_deref(),
        Some("tenant=acme,user=alice")
    );
    assert_eq!(
        header(&echoed, "echo-x-request-id").as_deref(),
        Some("req-42")
    );
}

#[tokio::test]
async fn b3_is_injected_with_the_client_span_id_when_configured() {
    let spans = Spans::new();
    let addr = downstream().await;
    let client = ServiceBuilder::new()
        .layer(
            spans
                .client_layer()
                .propagator(
                    Propagator::builder()
                        .inject_formats(&[Format::B3Single])
                        .build(),
                )
                .build(),
        )
        .service(hyper());

    let response = client
        .oneshot(get_req(format!("http://127.0.0.1:{}/echo", addr.port())))
        .await
        .unwrap();
    let echoed = response.headers().clone();
    response.into_body().collect().await.unwrap();

    let span = spans.of_kind(&SpanKind::Client);
    assert_eq!(header(&echoed, "echo-traceparent"), None);
    assert_eq!(
        header(&echoed, "echo-b3"),
        Some(format!(
            "{}-{}-1",
            span.span_context.trace_id(),
            span.span_context.span_id()
        )),
        "a new root trace: the client span's own ids"
    );
    assert_eq!(span.parent_span_id, opentelemetry::trace::SpanId::INVALID);
}

#[tokio::test]
async fn captured_headers_are_redacted_when_sensitive() {
    use http::header::{ACCEPT, AUTHORIZATION, SET_COOKIE};
    use opentelemetry::{Array, Value};

    let spans = Spans::new();
    let layer = spans
        .client_layer()
        .capture_request_headers([
            AUTHORIZATION,
            ACCEPT,
            http::HeaderName::from_static("traceparent"),
        ])
        .capture_response_headers([SET_COOKIE, http::header::CONTENT_LENGTH])
        .build();
    let mut client = ServiceBuilder::new()
        .layer(layer)
        .service_fn(|_req: Request<String>| async {
            let response = http::Response::builder()
                .header(SET_COOKIE, "sid=s3cr3t-set")
                .header(http::header::CONTENT_LENGTH, "0")
                .body(String::new())
                .expect("response");
            Ok::<_, std::convert::Infallible>(response)
        });
    let request = Request::get("http://api.example.com/x")
        .header(AUTHORIZATION, "Bearer s3cr3t-bearer")
        .header(ACCEPT, "*/*")
        .body(String::new())
        .expect("request");
    let response = client
        .ready()
        .await
        .expect("ready")
        .call(request)
        .await
        .expect("response");
    let _ = response.into_body().collect().await;

    let span = spans.of_kind(&SpanKind::Client);
    let strings = |key: &str| -> Vec<String> {
        match attr(&span, key) {
            Some(Value::Array(Array::String(v))) => {
                v.iter().map(|s| s.as_str().to_owned()).collect()
            }
            other => panic!("{key}: {other:?}"),
        }
    };
    assert_eq!(
        strings("http.request.header.authorization"),
        vec!["REDACTED"]
    );
    assert_eq!(strings("http.request.header.accept"), vec!["*/*"]);
    assert_eq!(strings("http.response.header.set-cookie"), vec!["REDACTED"]);
    assert_eq!(strings("http.response.header.content-length"), vec!["0"]);
    assert_eq!(
        attr(&span, "http.request.header.traceparent"),
        None,
        "headers as the caller set them, before injection"
    );
    assert!(!format!("{span:?}").contains("s3cr3t"), "{span:?}");
}

/// A client of many upstream hosts: `http.client.request.duration` keeps within its series
/// budget (2,000), the rest folded into one `otel_metric_overflow="true"` series, every call
/// still counted.
#[tokio::test]
async fn many_upstream_hosts_stay_within_the_series_budget() {
    use tower::{Layer as _, ServiceExt as _};

    let handle = prometheus();
    let layer = sightline_http::ClientLayer::builder().build();
    let calls = 2300;
    for i in 0..calls {
        let service = layer.layer(tower::service_fn(|_req: Request<Empty<Bytes>>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Empty::<Bytes>::new()))
        }));
        let response = service
            .oneshot(get_req(format!("http://host-{i}.example:8080/ping")))
            .await
            .expect("answers");
        http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body");
    }
    let text = handle.render();
    let counts: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("http_client_request_duration_seconds_count"))
        .collect();
    assert!(counts.len() <= 2000, "{} series", counts.len());
    let overflow: Vec<&&str> = counts
        .iter()
        .filter(|l| l.contains("otel_metric_overflow=\"true\""))
        .collect();
    assert_eq!(overflow.len(), 1);
    let total: f64 = counts
        .iter()
        .filter(|l| l.contains("host-") || l.contains("otel_metric_overflow"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(total, f64::from(calls), "every call counted");
}
