//! The gRPC middlewares driven in-process against services that answer the way a gRPC server
//! does on the wire (data frames, then `grpc-status` in trailers, or a trailers-only head):
//! spans through the SDK's in-memory exporter, metrics through a real Prometheus recorder.
//! Real tonic clients and servers are exercised by the `sightline-tests` grpc suite.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::Frame;
use http_body_util::BodyExt as _;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use sightline_http::grpc::{
    Code, CodeSet, GrpcClientLayer, GrpcClientLayerBuilder, GrpcServerLayer,
    GrpcServerLayerBuilder, RPC_SERVER_CALL_DURATION,
};
use sightline_http::server::DURATION_BUCKETS;
use tower::{Layer as _, Service as _, ServiceExt as _};

fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .with_recommended_naming(true)
            .set_buckets_for_metric(
                Matcher::Full(RPC_SERVER_CALL_DURATION.into()),
                &DURATION_BUCKETS,
            )
            .expect("buckets")
            .install_recorder()
            .expect("no other recorder in this test binary");
        sightline_http::grpc::describe_grpc_metrics();
        handle
    })
}

/// The value of one Prometheus sample line, if present.
fn sample(name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let text = prometheus().render();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(series, _)| {
            series.starts_with(&format!("{name}{{"))
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|(_, value)| value.parse().ok())
}

struct Spans {
    provider: SdkTracerProvider,
    exporter: InMemorySpanExporter,
}

impl Spans {
    fn new() -> Self {
        prometheus();
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        Self { provider, exporter }
    }

    fn server(&self) -> GrpcServerLayerBuilder {
        GrpcServerLayer::builder().tracer(self.provider.tracer("test"))
    }

    fn client(&self) -> GrpcClientLayerBuilder {
        GrpcClientLayer::builder().tracer(self.provider.tracer("test"))
    }

    fn finished(&self) -> Vec<SpanData> {
        self.exporter.get_finished_spans().expect("in-memory")
    }

    fn only(&self) -> SpanData {
        let spans = self.finished();
        assert_eq!(spans.len(), 1, "exactly one span: {spans:#?}");
        spans.into_iter().next().expect("one")
    }
}

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

/// A gRPC response body: `messages` length-prefixed messages, one every `delay`, then
/// trailers with `grpc-status: code` (unless `code` is `None`).
struct GrpcBody {
    messages: usize,
    delay: Duration,
    code: Option<Code>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    done: bool,
}

impl http_body::Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        use std::future::Future as _;
        if self.done {
            return Poll::Ready(None);
        }
        if self.messages == 0 {
            self.done = true;
            return Poll::Ready(self.code.map(|code| {
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", HeaderValue::from(code.as_i32()));
                Ok(Frame::trailers(trailers))
            }));
        }
        let delay = self.delay;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
        std::task::ready!(sleep.as_mut().poll(cx));
        self.sleep = None;
        self.messages -= 1;
        // One 3-byte message: flag, length, payload.
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&[
            0, 0, 0, 0, 3, b'a', b'b', b'c',
        ])))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

fn streaming(messages: usize, delay_ms: u64, code: Code) -> Response<GrpcBody> {
    Response::builder()
        .header("content-type", "application/grpc")
        .body(GrpcBody {
            messages,
            delay: Duration::from_millis(delay_ms),
            code: Some(code),
            sleep: None,
            done: false,
        })
        .expect("response")
}

/// A trailers-only answer: the status in the head, an empty body.
fn trailers_only(code: Code) -> Response<GrpcBody> {
    let mut response = streaming(0, 0, code);
    response
        .headers_mut()
        .insert("grpc-status", HeaderValue::from(code.as_i32()));
    response.body_mut().done = true;
    response
}

fn call(path: &str) -> http::request::Builder {
    Request::builder()
        .method("POST")
        .uri(format!("http://greeter.local:50051{path}"))
        .version(http::Version::HTTP_2)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
}

/// A call as a client sends it to a channel: the path only, an empty body.
fn client_request(path: &str) -> Request<String> {
    Request::builder()
        .uri(path)
        .body(String::new())
        .expect("request")
}

/// Serves every call with `answer`, through `layer`.
#[allow(
    clippy::needless_pass_by_value,
    reason = "tests pass a freshly built layer"
)]
fn server<F>(
    layer: GrpcServerLayer,
    answer: F,
) -> impl tower::Service<
    Request<String>,
    Response = Response<sightline_http::grpc::ResponseBody<GrpcBody>>,
    Error = Infallible,
>
where
    F: Fn(&str) -> Response<GrpcBody> + Clone + Send + 'static,
{
    layer.layer(tower::service_fn(
        move |req: Request<sightline_http::grpc::RequestBody<String>>| {
            let answer = answer.clone();
            async move { Ok::<_, Infallible>(answer(req.uri().path())) }
        },
    ))
}

async fn drain(response: Response<sightline_http::grpc::ResponseBody<GrpcBody>>) -> HeaderMap {
    let collected = response.into_body().collect().await.expect("infallible");
    collected.trailers().cloned().unwrap_or_default()
}

#[tokio::test]
async fn unary_ok_reads_status_from_trailers() {
    let spans = Spans::new();
    let mut svc = server(spans.server().build(), |_| streaming(1, 0, Code::Ok));
    let response = svc
        .ready()
        .await
        .expect("ready")
        .call(
            call("/test.unary.Greeter/SayHello")
                .header("x-request-id", "req-1")
                .header(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                )
                .body(String::new())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.headers()["x-request-id"], "req-1");
    assert!(
        spans.finished().is_empty(),
        "the call is not over at the head"
    );
    let trailers = drain(response).await;
    assert_eq!(trailers["grpc-status"], "0", "trailers pass through");

    let span = spans.only();
    assert_eq!(span.name, "test.unary.Greeter/SayHello");
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(attr(&span, "rpc.system.name").as_deref(), Some("grpc"));
    assert_eq!(
        attr(&span, "rpc.method").as_deref(),
        Some("test.unary.Greeter/SayHello")
    );
    assert_eq!(attr(&span, "rpc.status_code").as_deref(), Some("OK"));
    assert_eq!(
        attr(&span, "server.address").as_deref(),
        Some("greeter.local")
    );
    assert_eq!(attr(&span, "error.type"), None);
    assert_eq!(span.status, Status::Unset);
    assert_eq!(
        span.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(span.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert_eq!(
        sample(
            "rpc_server_call_duration_seconds_count",
            &[
                ("rpc_method", "test.unary.Greeter/SayHello"),
                ("rpc_status_code", "OK"),
                ("rpc_system_name", "grpc"),
            ]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn trailers_only_error_is_a_server_error() {
    let spans = Spans::new();
    let mut svc = server(spans.server().build(), |_| trailers_only(Code::Internal));
    let response = svc
        .call(
            call("/test.fail.Greeter/Fail")
                .body(String::new())
                .expect("request"),
        )
        .await
        .expect("infallible");
    // A trailers-only response ends the call at its head: its body may never be polled.
    let span = spans.only();
    assert_eq!(attr(&span, "rpc.status_code").as_deref(), Some("INTERNAL"));
    assert_eq!(attr(&span, "error.type").as_deref(), Some("INTERNAL"));
    assert!(matches!(span.status, Status::Error { .. }));
    drop(response);
    assert_eq!(spans.finished().len(), 1, "ends once");
    assert_eq!(
        sample(
            "rpc_server_call_duration_seconds_count",
            &[
                ("rpc_method", "test.fail.Greeter/Fail"),
                ("rpc_status_code", "INTERNAL"),
                ("error_type", "INTERNAL"),
            ]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn streaming_call_ends_at_its_trailers() {
    let spans = Spans::new();
    let mut svc = server(spans.server().message_counts(true).build(), |_| {
        streaming(5, 60, Code::Ok)
    });
    let started = Instant::now();
    let response = svc
        .call(
            call("/test.stream.Greeter/StreamHellos")
                .body(String::new())
                .expect("request"),
        )
        .await
        .expect("infallible");
    drain(response).await;
    let elapsed = started.elapsed();
    let span = spans.only();
    let span_secs = span
        .end_time
        .duration_since(span.start_time)
        .expect("ends after start")
        .as_secs_f64();
    assert!(span_secs >= 0.3, "5 messages 60 ms apart: {span_secs}");
    assert!(span_secs <= elapsed.as_secs_f64() + 0.01);
    let sum = sample(
        "rpc_server_call_duration_seconds_sum",
        &[("rpc_method", "test.stream.Greeter/StreamHellos")],
    )
    .expect("recorded");
    assert!(sum >= 0.3, "histogram has the stream's duration: {sum}");
}

#[tokio::test]
async fn cancelled_mid_stream_ends_once_as_cancelled() {
    let spans = Spans::new();
    // The first call is answered whole; later ones stream for a second.
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut svc = server(spans.server().build(), move |_| {
        if calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0 {
            streaming(1, 0, Code::Ok)
        } else {
            streaming(50, 20, Code::Ok)
        }
    });
    let active = || {
        sample(
            "rpc_server_active_calls",
            &[("rpc_method", "test.cancel.Greeter/Stream")],
        )
        .unwrap_or(0.0)
    };
    // The first answer settles the method name (pending methods are counted as _OTHER in
    // flight, and only a handler's answer settles one).
    let response = svc
        .call(
            call("/test.cancel.Greeter/Stream")
                .body(String::new())
                .expect("request"),
        )
        .await
        .expect("infallible");
    drain(response).await;
    let response = svc
        .call(
            call("/test.cancel.Greeter/Stream")
                .body(String::new())
                .expect("request"),
        )
        .await
        .expect("infallible");
    let mut body = response.into_body();
    let _ = body.frame().await;
    drop(body);
    let response = svc
        .call(
            call("/test.cancel.Greeter/Stream")
                .body(String::new())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(active(), 1.0);
    let mut body = response.into_body();
    let _ = body.frame().await;
    let _ = body.frame().await;
    drop(body);
    assert_eq!(active(), 0.0, "gauge back to 0 after cancellation");
    let spans = spans.finished();
    assert_eq!(spans.len(), 3);
    for span in &spans[1..] {
        assert_eq!(span.name, "test.cancel.Greeter/Stream");
        assert_eq!(attr(span, "rpc.status_code").as_deref(), Some("CANCELLED"));
        assert_eq!(
            span.status,
            Status::Unset,
            "the client left; not a server error"
        );
    }
}

#[tokio::test]
async fn unknown_methods_are_other() {
    let spans = Spans::new();
    let mut svc = server(spans.server().build(), |path| {
        if path.ends_with("/Known") {
            streaming(1, 0, Code::Ok)
        } else {
            trailers_only(Code::Unimplemented)
        }
    });
    for i in 0..20 {
        let response = svc
            .call(
                call(&format!("/scan.Random{i}/Nope{i}"))
                    .body(String::new())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        drain(response).await;
    }
    let response = svc
        .call(
            call("/test.other.Greeter/Known")
                .body(String::new())
                .expect("request"),
        )
        .await
        .expect("infallible");
    drain(response).await;

    let spans = spans.finished();
    assert_eq!(spans.len(), 21);
    let first = &spans[0];
    assert_eq!(first.name, "grpc");
    assert_eq!(attr(first, "rpc.method").as_deref(), Some("_OTHER"));
    assert_eq!(
        attr(first, "rpc.method_original").as_deref(),
        Some("scan.Random0/Nope0")
    );
    assert_eq!(
        attr(first, "rpc.status_code").as_deref(),
        Some("UNIMPLEMENTED")
    );
    let known = &spans[20];
    assert_eq!(known.name, "test.other.Greeter/Known");
    assert_eq!(attr(known, "rpc.method_original"), None);

    let text = prometheus().render();
    assert!(!text.contains("scan.Random"), "no series per unknown name");
    assert_eq!(
        sample(
            "rpc_server_call_duration_seconds_count",
            &[
                ("rpc_method", "_OTHER"),
                ("rpc_status_code", "UNIMPLEMENTED")
            ]
        ),
        Some(20.0)
    );
}

#[tokio::test]
async fn only_a_handlers_answer_teaches_a_method() {
    // A scanner that gives up before any answer, or calls shed by a limit in front of the
    // handlers, must not fill the method table: such calls prove nothing about the method.
    let spans = Spans::new();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut svc = spans.server().build().layer(tower::service_fn(
        move |_req: Request<sightline_http::grpc::RequestBody<String>>| {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                Ok::<_, Infallible>(match n {
                    0 => {
                        // Slow to answer: the caller leaves before the head.
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        streaming(1, 0, Code::Ok)
                    }
                    1 => trailers_only(Code::Unavailable),
                    2 => trailers_only(Code::ResourceExhausted),
                    _ => streaming(50, 20, Code::Ok),
                })
            }
        },
    ));
    let path = "/test.learn.Greeter/Watch";
    let request = || call(path).body(String::new()).expect("request");
    // 0: dropped before any answer.
    let early = tokio::time::timeout(Duration::from_millis(20), svc.call(request())).await;
    assert!(early.is_err(), "still waiting for the head");
    // 1, 2: shed.
    for _ in 0..2 {
        drain(svc.call(request()).await.expect("infallible")).await;
    }
    // 3, 4: a streamed answer that the caller cancels, as watchers do: the handler answered.
    for _ in 0..2 {
        let mut body = svc.call(request()).await.expect("infallible").into_body();
        let _ = body.frame().await;
        drop(body);
    }
    let spans = spans.finished();
    let methods: Vec<_> = spans
        .iter()
        .map(|s| {
            (
                s.name.to_string(),
                attr(s, "rpc.method").unwrap_or_default(),
            )
        })
        .collect();
    let other = ("grpc".to_owned(), "_OTHER".to_owned());
    let known = (path[1..].to_owned(), path[1..].to_owned());
    assert_eq!(
        methods,
        [other.clone(), other.clone(), other, known.clone(), known]
    );
    assert_eq!(
        attr(&spans[0], "rpc.method_original").as_deref(),
        Some(&path[1..])
    );
    assert_eq!(
        attr(&spans[0], "rpc.status_code").as_deref(),
        Some("CANCELLED")
    );
}

#[tokio::test]
async fn client_error_codes_are_configurable_and_other_keeps_the_original() {
    let spans = Spans::new();
    // Users ask for NOT_FOUND not to count as a client error.
    let layer = spans
        .client()
        .error_codes(CodeSet::ALL_ERRORS.without(Code::NotFound))
        .build();
    let mut client = layer.layer(tower::service_fn(|req: Request<String>| async move {
        let code = if req.uri().path().ends_with("/Get") {
            Code::NotFound
        } else {
            Code::PermissionDenied
        };
        Ok::<_, Infallible>(trailers_only(code))
    }));
    for path in [
        "/test.codes.Store/Get",
        "/test.codes.Store/Put",
        "/not-a-method",
    ] {
        let response = client.call(client_request(path)).await.expect("infallible");
        drop(response);
    }
    let spans = spans.finished();
    assert_eq!(spans.len(), 3);
    assert_eq!(
        spans[0].status,
        Status::Unset,
        "NOT_FOUND is not an error here"
    );
    assert_eq!(attr(&spans[0], "error.type"), None);
    assert_eq!(
        attr(&spans[0], "rpc.status_code").as_deref(),
        Some("NOT_FOUND")
    );
    assert!(matches!(spans[1].status, Status::Error { .. }));
    assert_eq!(
        attr(&spans[1], "error.type").as_deref(),
        Some("PERMISSION_DENIED")
    );
    // A path that is no gRPC method: `_OTHER`, with what was asked beside it.
    assert_eq!(spans[2].name, "grpc");
    assert_eq!(attr(&spans[2], "rpc.method").as_deref(), Some("_OTHER"));
    assert_eq!(
        attr(&spans[2], "rpc.method_original").as_deref(),
        Some("not-a-method")
    );
}

#[tokio::test]
async fn legacy_client_labels_and_attributes() {
    let spans = Spans::new();
    let layer = spans
        .client()
        .target("http://127.0.0.1:50099")
        .legacy_semconv(true)
        .build();
    let mut client = layer.layer(tower::service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(trailers_only(Code::Aborted))
    }));
    let response = client
        .call(client_request("/test.legacy.Client/Call"))
        .await
        .expect("infallible");
    drop(response);
    let span = spans.only();
    assert_eq!(attr(&span, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(
        attr(&span, "rpc.service").as_deref(),
        Some("test.legacy.Client")
    );
    assert_eq!(attr(&span, "rpc.method").as_deref(), Some("Call"));
    assert_eq!(
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == "rpc.grpc.status_code")
            .map(|kv| kv.value.clone()),
        Some(opentelemetry::Value::I64(10))
    );
    assert_eq!(attr(&span, "rpc.system.name"), None);
    assert_eq!(
        sample(
            "rpc_client_call_duration_seconds_count",
            &[
                ("rpc_system", "grpc"),
                ("rpc_service", "test.legacy.Client"),
                ("rpc_method", "Call"),
                ("rpc_grpc_status_code", "10"),
            ]
        ),
        Some(1.0),
        "{}",
        prometheus().render()
    );
}

#[tokio::test]
async fn known_services_and_error_codes_are_configurable() {
    let spans = Spans::new();
    let layer = spans
        .server()
        .known_services(["test.known.Svc"])
        .error_codes(CodeSet::SERVER_ERRORS.with(Code::NotFound))
        .build();
    let mut svc = server(layer, |_| trailers_only(Code::NotFound));
    for path in ["/test.known.Svc/Get", "/test.known.Other/Get"] {
        svc.call(call(path).body(String::new()).expect("request"))
            .await
            .expect("infallible");
    }
    let spans = spans.finished();
    assert_eq!(
        attr(&spans[0], "rpc.method").as_deref(),
        Some("test.known.Svc/Get")
    );
    assert_eq!(attr(&spans[0], "error.type").as_deref(), Some("NOT_FOUND"));
    assert!(matches!(spans[0].status, Status::Error { .. }));
    assert_eq!(attr(&spans[1], "rpc.method").as_deref(), Some("_OTHER"));

    // By default NOT_FOUND is the caller's problem, not the server's.
    let spans = Spans::new();
    let mut svc = server(spans.server().build(), |_| trailers_only(Code::NotFound));
    svc.call(
        call("/test.known.Default/Get")
            .body(String::new())
            .expect("request"),
    )
    .await
    .expect("infallible");
    let span = spans.only();
    assert_eq!(span.status, Status::Unset);
    assert_eq!(attr(&span, "error.type"), None);
}

#[tokio::test]
async fn health_checks_make_no_span() {
    let spans = Spans::new();
    let mut svc = server(spans.server().build(), |_| streaming(1, 0, Code::Ok));
    let response = svc
        .call(
            call("/grpc.health.v1.Health/Check")
                .body(String::new())
                .expect("request"),
        )
        .await
        .expect("infallible");
    drain(response).await;
    assert!(spans.finished().is_empty());

    let spans = Spans::new();
    let mut svc = server(spans.server().trace_health_checks(true).build(), |_| {
        streaming(1, 0, Code::Ok)
    });
    let response = svc
        .call(
            call("/grpc.health.v1.Health/Check")
                .body(String::new())
                .expect("request"),
        )
        .await
        .expect("infallible");
    drain(response).await;
    assert_eq!(spans.only().name, "grpc.health.v1.Health/Check");
}

#[tokio::test]
async fn bad_metadata_never_fails_a_call() {
    let spans = Spans::new();
    let mut svc = server(spans.server().build(), |_| streaming(1, 0, Code::Ok));
    let huge = "x".repeat(16 * 1024);
    let cases: Vec<(&str, HeaderValue)> = vec![
        (
            "traceparent",
            HeaderValue::from_static("00-zz-00f067aa0ba902b7-01"),
        ),
        ("traceparent", HeaderValue::from_str(&huge).expect("value")),
        ("tracestate", HeaderValue::from_str(&huge).expect("value")),
        ("baggage", HeaderValue::from_str(&huge).expect("value")),
        ("x-request-id", HeaderValue::from_str(&huge).expect("value")),
        (
            "trace-bin",
            HeaderValue::from_bytes(&[0x80, 0xff, 0x20]).expect("value"),
        ),
        ("grpc-trace-bin", HeaderValue::from_static("AAECAwQ=")),
    ];
    for (name, value) in cases {
        let response = svc
            .call(
                call("/test.bad.Greeter/SayHello")
                    .header(name, value)
                    .body(String::new())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        let id = response.headers()["x-request-id"].clone();
        assert!(id.len() <= 128, "{name}: request id replaced");
        assert_eq!(drain(response).await["grpc-status"], "0", "{name}");
    }
    assert_eq!(spans.finished().len(), 7);
}

#[tokio::test]
async fn legacy_attribute_names() {
    let spans = Spans::new();
    let mut svc = server(spans.server().legacy_semconv(true).build(), |_| {
        trailers_only(Code::DataLoss)
    });
    svc.call(
        call("/test.legacy.Greeter/SayHello")
            .body(String::new())
            .expect("request"),
    )
    .await
    .expect("infallible");
    let span = spans.only();
    assert_eq!(span.name, "test.legacy.Greeter/SayHello");
    assert_eq!(attr(&span, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(
        attr(&span, "rpc.service").as_deref(),
        Some("test.legacy.Greeter")
    );
    assert_eq!(attr(&span, "rpc.method").as_deref(), Some("SayHello"));
    assert_eq!(attr(&span, "rpc.grpc.status_code").as_deref(), Some("15"));
    assert_eq!(attr(&span, "rpc.system.name"), None);
}

#[tokio::test]
async fn client_injects_its_span_and_treats_every_code_but_ok_as_error() {
    let spans = Spans::new();
    let layer = spans.client().target("http://127.0.0.1:50051").build();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut client = layer.layer(tower::service_fn(move |req: Request<String>| {
        let tx = tx.clone();
        async move {
            tx.send(req.headers().clone()).expect("receiver");
            Ok::<_, Infallible>(trailers_only(Code::NotFound))
        }
    }));
    let response = client
        .call(client_request("/test.client.Greeter/SayHello"))
        .await
        .expect("infallible");
    drop(response);
    let sent = rx.recv().await.expect("one call");
    let span = spans.only();
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(span.name, "test.client.Greeter/SayHello");
    let traceparent = sent["traceparent"].to_str().expect("ascii");
    assert_eq!(
        traceparent,
        format!(
            "00-{}-{}-01",
            span.span_context.trace_id(),
            span.span_context.span_id()
        )
    );
    assert_eq!(attr(&span, "server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == "server.port")
            .map(|kv| kv.value.clone()),
        Some(opentelemetry::Value::I64(50051))
    );
    assert_eq!(attr(&span, "rpc.status_code").as_deref(), Some("NOT_FOUND"));
    assert!(matches!(span.status, Status::Error { .. }));
}

#[tokio::test]
async fn client_transport_failure_is_unavailable() {
    let spans = Spans::new();
    let layer = spans.client().build();
    let mut client = layer.layer(tower::service_fn(|_req: Request<String>| async {
        Err::<Response<GrpcBody>, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        ))
    }));
    let result = client.call(client_request("/test.c.S/M")).await;
    assert!(result.is_err(), "errors pass through");
    let span = spans.only();
    assert_eq!(
        attr(&span, "rpc.status_code").as_deref(),
        Some("UNAVAILABLE")
    );
    assert!(matches!(span.status, Status::Error { .. }));
}

/// A `MakeWriter` that keeps every JSON line in memory.
#[derive(Clone, Default)]
struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn json(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().expect("lock").clone();
        String::from_utf8(bytes)
            .expect("utf-8")
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect()
    }
}

#[test]
fn access_line_per_call_with_configurable_levels() {
    use sightline_http::access::AccessLogLevels;
    use tracing_subscriber::layer::SubscriberExt as _;

    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::registry().with(
        sightline_logging::JsonLayer::builder()
            .service_name("test")
            .writer(move || writer.clone())
            .build(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let spans = Spans::new();
            let layer = spans
                .server()
                .access_log_levels(AccessLogLevels {
                    client_error: Some(tracing::Level::INFO),
                    ..AccessLogLevels::DEFAULT
                })
                .build();
            let mut svc = server(layer, |path| match path {
                "/test.log.Greeter/Ok" => streaming(2, 0, Code::Ok),
                "/test.log.Greeter/Missing" => trailers_only(Code::NotFound),
                _ => trailers_only(Code::Internal),
            });
            for path in [
                "/test.log.Greeter/Ok",
                "/test.log.Greeter/Missing",
                "/test.log.Greeter/Broken",
                "/grpc.health.v1.Health/Check",
            ] {
                let response = svc
                    .call(
                        call(path)
                            .header("x-request-id", "req-log")
                            .body("abcdefgh".to_owned())
                            .expect("request"),
                    )
                    .await
                    .expect("infallible");
                drain(response).await;
            }
        });
    });

    let access: Vec<_> = lines
        .json()
        .into_iter()
        .filter(|line| line["target"] == "sightline_http::access")
        .collect();
    assert_eq!(access.len(), 3, "no line for the health check: {access:#?}");
    let field = |line: &serde_json::Value, key: &str| line["fields"][key].clone();
    assert_eq!(access[0]["level"], "INFO");
    assert_eq!(field(&access[0], "rpc.method"), "test.log.Greeter/Ok");
    assert_eq!(field(&access[0], "rpc.status_code"), "OK");
    assert_eq!(field(&access[0], "rpc.response.body.size"), 16);
    assert!(field(&access[0], "duration_ms").is_number());
    assert_eq!(access[0]["request_id"], "req-log");
    assert_eq!(access[0]["span"]["name"], "gRPC call");
    assert_eq!(
        access[1]["level"], "INFO",
        "NOT_FOUND: client error, set to INFO"
    );
    assert_eq!(field(&access[1], "rpc.status_code"), "NOT_FOUND");
    assert_eq!(access[2]["level"], "ERROR");
    assert_eq!(field(&access[2], "error.type"), "INTERNAL");
    assert_eq!(
        access[0]["trace_id"].as_str().map(str::len),
        Some(32),
        "lines carry the call's trace id"
    );
}

/// One call carrying tenant, credential and session metadata through a server layer that
/// captures them (the session key marked sensitive), in the current or the legacy naming; the
/// call's span, and each captured attribute as text.
async fn span_with_captured_metadata(legacy: bool) -> (SpanData, impl Fn(&str) -> Option<String>) {
    use http::HeaderName;

    let spans = Spans::new();
    let layer = spans
        .server()
        .legacy_semconv(legacy)
        .capture_request_metadata([
            HeaderName::from_static("x-tenant"),
            http::header::AUTHORIZATION,
            HeaderName::from_static("x-session"),
        ])
        .capture_response_metadata([HeaderName::from_static("grpc-status")])
        .sensitive_metadata([HeaderName::from_static("x-session")])
        .build();
    let mut svc = server(layer, |_| streaming(1, 0, Code::Ok));
    let response = svc
        .call(
            call("/test.meta.Greeter/SayHello")
                .header("x-tenant", "acme")
                .header("authorization", "Bearer s3cr3t-token")
                .header("x-session", "s3cr3t-session")
                .body(String::new())
                .expect("request"),
        )
        .await
        .expect("infallible");
    drain(response).await;
    let span = spans.only();
    assert!(!format!("{:?}", span.attributes).contains("s3cr3t"));
    let attributes = span.attributes.clone();
    let value = move |key: &str| {
        attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    (span, value)
}

#[tokio::test]
async fn captured_metadata_is_recorded_with_secrets_redacted() {
    // Semantic conventions v1.38 and later: the system-neutral keys.
    let (span, value) = span_with_captured_metadata(false).await;
    let (acme, redacted) = (Some("[\"acme\"]"), Some("[\"REDACTED\"]"));
    assert_eq!(value("rpc.request.metadata.x-tenant").as_deref(), acme);
    assert_eq!(
        value("rpc.request.metadata.authorization").as_deref(),
        redacted
    );
    assert_eq!(value("rpc.request.metadata.x-session").as_deref(), redacted);
    assert_eq!(
        value("rpc.response.metadata.grpc-status").as_deref(),
        Some("[\"0\"]"),
        "trailers are response metadata"
    );
    assert!(
        !span
            .attributes
            .iter()
            .any(|kv| kv.key.as_str().starts_with("rpc.grpc.")),
        "no deprecated keys: {:?}",
        span.attributes
    );
}

#[tokio::test]
async fn legacy_semconv_records_metadata_under_the_grpc_keys() {
    let (_, value) = span_with_captured_metadata(true).await;
    let (acme, redacted) = (Some("[\"acme\"]"), Some("[\"REDACTED\"]"));
    assert_eq!(value("rpc.grpc.request.metadata.x-tenant").as_deref(), acme);
    assert_eq!(
        value("rpc.grpc.request.metadata.authorization").as_deref(),
        redacted
    );
    assert_eq!(
        value("rpc.grpc.response.metadata.grpc-status").as_deref(),
        Some("[\"0\"]")
    );
    assert_eq!(value("rpc.request.metadata.x-tenant"), None);
}
