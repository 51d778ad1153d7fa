use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use http::Request;
use http_body_util::BodyExt as _;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use sightline_http::server::{DURATION_BUCKETS, HTTP_SERVER_REQUEST_DURATION, ServerLayer};
use tower::ServiceExt as _;

/// The process-wide Prometheus recorder (one per test binary; tests use distinct routes).
pub(crate) fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .with_recommended_naming(true)
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(HTTP_SERVER_REQUEST_DURATION.into()),
                &DURATION_BUCKETS,
            )
            .expect("buckets")
            .install_recorder()
            .expect("no other recorder in this test binary");
        sightline_http::server::describe_server_metrics();
        handle
    })
}

/// A tracer provider exporting synchronously to memory.
pub(crate) struct Spans {
    pub(crate) provider: SdkTracerProvider,
    pub(crate) exporter: InMemorySpanExporter,
}

impl Spans {
    pub(crate) fn new() -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        Self { provider, exporter }
    }

    pub(crate) fn layer(&self) -> ServerLayer {
        self.builder().build()
    }

    pub(crate) fn builder(&self) -> sightline_http::ServerLayerBuilder {
        prometheus();
        ServerLayer::builder().tracer(self.provider.tracer("test"))
    }

    pub(crate) fn finished(&self) -> Vec<SpanData> {
        self.exporter
            .get_finished_spans()
            .expect("in-memory exporter")
    }

    pub(crate) fn only(&self) -> SpanData {
        let spans = self.finished();
        assert_eq!(spans.len(), 1, "exactly one span: {spans:#?}");
        spans.into_iter().next().expect("one span")
    }
}

pub(crate) fn attr(span: &SpanData, key: &str) -> Option<opentelemetry::Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

pub(crate) fn attr_str(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

/// Sends `req` through `app` and reads the whole body.
pub(crate) async fn send(
    app: &Router,
    req: Request<Body>,
) -> (http::response::Parts, bytes::Bytes) {
    let response = app.clone().oneshot(req).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (parts, bytes)
}

pub(crate) fn get(uri: &str) -> http::request::Builder {
    Request::builder()
        .uri(uri)
        .header("host", "api.example.com:8443")
}

/// The value of one Prometheus sample line, if present.
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
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
