//! Per-request cost of the server middleware, in-process (no sockets): one axum route
//! `GET /users/{id}` called through `Router::oneshot`, bare and with the layer, so the
//! difference is our overhead without I/O.
//!
//! - `bare`: the router alone;
//! - `metrics_request_id`: request IDs and RED metrics into a real Prometheus recorder;
//! - `full`: plus a recorded server span (SDK tracer provider, no exporter) and the access
//!   log event (no subscriber installed, so the event is not formatted);
//! - `full_owned_span`: `full` with `attach_context(false)`: the span owned by the call, not
//!   in the context (what the context, which the handler API needs, costs);
//! - `full_handler_api`: `full` whose handler sets an attribute through
//!   `sightline_http::server_span()` (what using the API costs);
//! - `full_logged`: `full` as the `sightline` facade wires it: the span ended into a span
//!   processor (whose exporter drops the batch: OTLP encoding is not counted), and a global
//!   subscriber with an `info` filter, the JSON layer writing to `io::sink`, and the
//!   `tracing-opentelemetry` bridge filtered off Sightline's own targets.
//!
//! Run: `cargo bench -p sightline-http --bench server`. Last result: see docs/performance.md.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::trace::TracerProvider as _;
use tower::Service;

fn router() -> Router {
    Router::new().route(
        "/users/{id}",
        get(|| async { "{\"id\":7,\"name\":\"Ada\"}" }),
    )
}

fn request() -> http::Request<Body> {
    http::Request::get("/users/7")
        .header("host", "127.0.0.1:3000")
        .header("user-agent", "bench")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(Body::empty())
        .expect("valid request")
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let _ = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();

    let variants = [
        ("bare", router()),
        (
            "metrics_request_id",
            router().layer(
                sightline_http::ServerLayer::builder()
                    .access_log(false)
                    .build(),
            ),
        ),
        (
            "full",
            router().layer(
                sightline_http::ServerLayer::builder()
                    .tracer(provider.tracer("bench"))
                    .build(),
            ),
        ),
        (
            "full_owned_span",
            router().layer(
                sightline_http::ServerLayer::builder()
                    .tracer(provider.tracer("bench"))
                    .attach_context(false)
                    .build(),
            ),
        ),
        (
            "full_handler_api",
            Router::new()
                .route(
                    "/users/{id}",
                    get(|| async {
                        sightline_http::server_span()
                            .set_attribute(opentelemetry::KeyValue::new("enduser.id", "7"));
                        "{\"id\":7,\"name\":\"Ada\"}"
                    }),
                )
                .layer(
                    sightline_http::ServerLayer::builder()
                        .tracer(provider.tracer("bench"))
                        .build(),
                ),
        ),
    ];
    let exported = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(DropExporter)
        .build();
    let logged = router().layer(
        sightline_http::ServerLayer::builder()
            .tracer(exported.tracer("bench"))
            .build(),
    );
    let mut group = c.benchmark_group("server");
    for (name, app) in variants {
        // What `into_make_service` does for a server: turn handlers into routes (and apply
        // the layers) once, not per request.
        let mut svc = app.with_state(()).into_service::<Body>();
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let call = svc.call(request());
                async move {
                    let response = call.await.expect("infallible");
                    http_body_util::BodyExt::collect(response.into_body())
                        .await
                        .expect("body")
                }
            })
        });
    }
    {
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        let bridge = tracing_opentelemetry::layer()
            .with_tracer(exported.tracer("bridge"))
            .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                !meta.target().starts_with("sightline_http")
            }));
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("info"))
            .with(
                sightline_logging::JsonLayer::builder()
                    .service_name("bench")
                    .writer(std::io::sink)
                    .build(),
            )
            .with(bridge);
        let _default = tracing::subscriber::set_default(subscriber);
        let mut svc = logged.with_state(()).into_service::<Body>();
        group.bench_function("full_logged", |b| {
            b.to_async(&runtime).iter(|| {
                let call = svc.call(request());
                async move {
                    let response = call.await.expect("infallible");
                    http_body_util::BodyExt::collect(response.into_body())
                        .await
                        .expect("body")
                }
            })
        });
    }
    group.finish();
}

/// An exporter that drops every batch.
#[derive(Debug)]
struct DropExporter;

impl opentelemetry_sdk::trace::SpanExporter for DropExporter {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        drop(batch);
        Ok(())
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
