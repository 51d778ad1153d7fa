//! What the in-process suites share: per-test telemetry (an in-memory span exporter and a
//! Prometheus recorder of the test's own), the Echo server behind the Sightline server layer
//! and an Echo client behind the client layer.

use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use sightline_http::grpc::{
    GrpcClient, GrpcClientLayer, GrpcClientLayerBuilder, GrpcServerLayer, GrpcServerLayerBuilder,
    RPC_CLIENT_CALL_DURATION, RPC_SERVER_CALL_DURATION,
};
use sightline_http::server::DURATION_BUCKETS;
use sightline_tests::grpc::echo::echo_client::EchoClient;
use sightline_tests::grpc::echo::echo_server::EchoServer;
use sightline_tests::grpc::{EchoService, GrpcServer};
use sightline_tests::prometheus::{Sample, parse_exposition};
use sightline_tests::util::poll_until;
use tonic::transport::Channel;

/// The `Echo` service's fully qualified name.
pub(crate) const ECHO: &str = "sightline.test.v1.Echo";
/// How long a span or metric may take to show up after the call ended on the client.
pub(crate) const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// `sightline.test.v1.Echo/<method>`.
pub(crate) fn echo_method(method: &str) -> String {
    format!("{ECHO}/{method}")
}

/// One test's telemetry: spans exported synchronously to memory, and metrics recorded by a
/// Prometheus recorder that is the default only on this thread.
///
/// Tests run on the current-thread runtime (`#[tokio::test]`'s default), so the tonic server,
/// the channel and the layers all record on the test's thread, into the test's own recorder:
/// counts never mix between tests, whether they run in one process or one each.
pub(crate) struct Telemetry {
    provider: SdkTracerProvider,
    exporter: InMemorySpanExporter,
    handle: PrometheusHandle,
    _guard: metrics::LocalRecorderGuard<'static>,
}

impl Telemetry {
    pub(crate) fn new() -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let mut builder = PrometheusBuilder::new().with_recommended_naming(true);
        for name in [RPC_SERVER_CALL_DURATION, RPC_CLIENT_CALL_DURATION] {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(name.to_owned()), &DURATION_BUCKETS)
                .expect("valid buckets");
        }
        // Leaked so the thread-local guard can be `'static`: one small recorder per test.
        let recorder: &'static _ = Box::leak(Box::new(builder.build_recorder()));
        let handle = recorder.handle();
        let guard = metrics::set_default_local_recorder(recorder);
        sightline_http::grpc::describe_grpc_metrics();
        Self {
            provider,
            exporter,
            handle,
            _guard: guard,
        }
    }

    /// The server layer builder with this test's tracer.
    pub(crate) fn server_builder(&self) -> GrpcServerLayerBuilder {
        GrpcServerLayer::builder().tracer(self.provider.tracer("grpc-server-test"))
    }

    /// The client layer builder with this test's tracer.
    pub(crate) fn client_builder(&self) -> GrpcClientLayerBuilder {
        GrpcClientLayer::builder().tracer(self.provider.tracer("grpc-client-test"))
    }

    /// Every span ended so far.
    pub(crate) fn spans(&self) -> Vec<SpanData> {
        self.exporter
            .get_finished_spans()
            .expect("in-memory exporter")
    }

    /// Every ended span of `kind`.
    pub(crate) fn spans_of(&self, kind: &SpanKind) -> Vec<SpanData> {
        self.spans()
            .into_iter()
            .filter(|s| &s.span_kind == kind)
            .collect()
    }

    /// Waits until `n` spans of `kind` have ended (up to [`SETTLE_TIMEOUT`]) and returns
    /// them; panics with every span otherwise.
    pub(crate) async fn wait_spans(&self, kind: SpanKind, n: usize) -> Vec<SpanData> {
        let found = poll_until(SETTLE_TIMEOUT, Duration::from_millis(10), || {
            let spans = self.spans_of(&kind);
            std::future::ready((spans.len() >= n).then_some(spans))
        })
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "want {n} {kind:?} span(s) within {SETTLE_TIMEOUT:?}; ended: {:#?}",
                self.spans()
            )
        })
    }

    /// Waits until a span of `kind` satisfies `pred` (up to [`SETTLE_TIMEOUT`]) and returns
    /// it; panics with every span otherwise.
    pub(crate) async fn wait_span_where(
        &self,
        kind: SpanKind,
        pred: impl Fn(&SpanData) -> bool,
    ) -> SpanData {
        let found = poll_until(SETTLE_TIMEOUT, Duration::from_millis(10), || {
            std::future::ready(self.spans_of(&kind).into_iter().find(|s| pred(s)))
        })
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "no matching {kind:?} span within {SETTLE_TIMEOUT:?}; ended: {:#?}",
                self.spans()
            )
        })
    }

    /// Waits for exactly one span of `kind` and returns it; a second one is a failure.
    pub(crate) async fn one_span(&self, kind: SpanKind) -> SpanData {
        let spans = self.wait_spans(kind.clone(), 1).await;
        assert_eq!(spans.len(), 1, "exactly one {kind:?} span: {spans:#?}");
        spans.into_iter().next().expect("one span")
    }

    /// The Prometheus exposition of this test's metrics.
    pub(crate) fn metrics_text(&self) -> String {
        self.handle.render()
    }

    /// Every sample of this test's metrics.
    pub(crate) fn samples(&self) -> Vec<Sample> {
        parse_exposition(&self.metrics_text()).expect("a valid exposition")
    }

    /// The value of the sample `name` whose labels include `labels`; `None` if there is none,
    /// panics if more than one matches.
    pub(crate) fn sample(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let matching: Vec<Sample> = self
            .samples()
            .into_iter()
            .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
            .collect();
        assert!(
            matching.len() <= 1,
            "more than one series of {name} with {labels:?}: {matching:#?}"
        );
        matching.first().map(|s| s.value)
    }

    /// Waits until `sample(name, labels)` equals `want` (up to [`SETTLE_TIMEOUT`]); panics
    /// with the exposition otherwise.
    pub(crate) async fn wait_sample(&self, name: &str, labels: &[(&str, &str)], want: f64) {
        let reached = poll_until(SETTLE_TIMEOUT, Duration::from_millis(10), || {
            std::future::ready((self.sample(name, labels) == Some(want)).then_some(()))
        })
        .await;
        assert!(
            reached.is_some(),
            "want {name}{labels:?} = {want} within {SETTLE_TIMEOUT:?}; got {:?}\n{}",
            self.sample(name, labels),
            self.metrics_text()
        );
    }
}

impl Telemetry {
    /// Waits until every `rpc_server_active_calls` series is 0 (and there is one); panics with
    /// the exposition otherwise.
    ///
    /// Every series, not only the method's: without a list of known services, the first call
    /// of a method is in flight under `_OTHER` until its status tells whether it is served.
    pub(crate) async fn wait_no_active_calls(&self) {
        let idle = || {
            let gauges: Vec<f64> = self
                .samples()
                .into_iter()
                .filter(|s| s.name == "rpc_server_active_calls")
                .map(|s| s.value)
                .collect();
            !gauges.is_empty() && gauges.iter().all(|v| *v == 0.0)
        };
        let reached = poll_until(SETTLE_TIMEOUT, Duration::from_millis(10), || {
            std::future::ready(idle().then_some(()))
        })
        .await;
        assert!(
            reached.is_some(),
            "want every rpc_server_active_calls at 0 within {SETTLE_TIMEOUT:?}\n{}",
            self.metrics_text()
        );
    }
}

/// The Echo service behind `layer` on 127.0.0.1:0, with the service itself for inspection.
pub(crate) async fn echo_server(layer: GrpcServerLayer) -> (GrpcServer, EchoService) {
    let echo = EchoService::default();
    let router = tonic::transport::Server::builder()
        .layer(layer)
        .add_service(EchoServer::new(echo.clone()));
    (GrpcServer::start(router).await, echo)
}

/// An Echo client for `server` behind `layer`.
pub(crate) async fn echo_client(
    server: &GrpcServer,
    layer: GrpcClientLayer,
) -> EchoClient<GrpcClient<Channel>> {
    let channel = server.channel().await;
    EchoClient::new(tower::ServiceBuilder::new().layer(layer).service(channel))
}

/// Client and server both wrapped, sharing `telemetry`.
pub(crate) async fn wrapped_pair(
    telemetry: &Telemetry,
) -> (GrpcServer, EchoService, EchoClient<GrpcClient<Channel>>) {
    let (server, echo) = echo_server(telemetry.server_builder().build()).await;
    let client = echo_client(
        &server,
        telemetry.client_builder().target(&server.uri()).build(),
    )
    .await;
    (server, echo, client)
}

/// As [`wrapped_pair`], with the echo service's methods listed one by one
/// (`known_services`): a method's first call is named even when it never gets an answer
/// (unlisted, a method is learned from its first answer).
pub(crate) async fn wrapped_pair_listed(
    telemetry: &Telemetry,
) -> (GrpcServer, EchoService, EchoClient<GrpcClient<Channel>>) {
    let methods = ["Unary", "ServerStream", "ClientStream", "Bidi"].map(echo_method);
    let (server, echo) =
        echo_server(telemetry.server_builder().known_services(methods).build()).await;
    let client = echo_client(
        &server,
        telemetry.client_builder().target(&server.uri()).build(),
    )
    .await;
    (server, echo, client)
}

/// A span attribute as text (strings as they are, numbers formatted).
pub(crate) fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

/// A span attribute that must be an integer.
pub(crate) fn attr_i64(span: &SpanData, key: &str) -> Option<i64> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .and_then(|kv| match kv.value {
            opentelemetry::Value::I64(i) => Some(i),
            _ => None,
        })
}

/// Whether the span's status is Error.
pub(crate) fn is_error(span: &SpanData) -> bool {
    matches!(span.status, Status::Error { .. })
}

/// How long the span lasted.
pub(crate) fn duration(span: &SpanData) -> Duration {
    span.end_time
        .duration_since(span.start_time)
        .unwrap_or_default()
}

/// The span's trace id as 32 lowercase hex digits.
pub(crate) fn trace_id(span: &SpanData) -> String {
    span.span_context.trace_id().to_string()
}

/// The span's id as 16 lowercase hex digits.
pub(crate) fn span_id(span: &SpanData) -> String {
    span.span_context.span_id().to_string()
}

/// The parent span id as 16 lowercase hex digits (all zero for a root).
pub(crate) fn parent_id(span: &SpanData) -> String {
    span.parent_span_id.to_string()
}

/// Asserts what every finished call's span carries: kind, name, `rpc.system.name`,
/// `rpc.method`, `rpc.status_code`, and `error.type` plus status Error exactly when
/// `error` says so.
pub(crate) fn assert_call_span(span: &SpanData, method: &str, code: &str, error: bool) {
    assert_eq!(span.name, method, "span name: {span:#?}");
    assert_eq!(
        attr(span, "rpc.system.name").as_deref(),
        Some("grpc"),
        "{span:#?}"
    );
    assert_eq!(
        attr(span, "rpc.method").as_deref(),
        Some(method),
        "{span:#?}"
    );
    assert_eq!(
        attr(span, "rpc.status_code").as_deref(),
        Some(code),
        "{span:#?}"
    );
    if error {
        assert!(is_error(span), "span status must be Error: {span:#?}");
        assert_eq!(attr(span, "error.type").as_deref(), Some(code), "{span:#?}");
    } else {
        assert!(!is_error(span), "span status must not be Error: {span:#?}");
        assert_eq!(attr(span, "error.type"), None, "{span:#?}");
    }
}

/// Asserts the server span is the child of the client span, in the same trace.
pub(crate) fn assert_parent_child(client: &SpanData, server: &SpanData) {
    assert_eq!(
        trace_id(server),
        trace_id(client),
        "one trace: {client:#?}\n{server:#?}"
    );
    assert_eq!(
        parent_id(server),
        span_id(client),
        "server parent = client span: {client:#?}\n{server:#?}"
    );
    assert!(server.parent_span_is_remote, "{server:#?}");
}

/// Labels of a finished call's duration series.
pub(crate) fn call_labels<'a>(method: &'a str, code: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("rpc_system_name", "grpc"),
        ("rpc_method", method),
        ("rpc_status_code", code),
    ]
}
