//! The server of the load benchmark (`scripts/bench-load`): the quick start's
//! `GET /users/{id}` route, bare or with Sightline, so both are measured in the same run.
//!
//! `MODE` selects what wraps the router:
//!
//! - `bare`: nothing;
//! - `metrics-id`: the server layer with RED metrics and request IDs only: no spans, no access
//!   log, and the facade's metrics as a service gets them (its Prometheus recorder, the
//!   runtime and process metrics sampled by the upkeep thread, exemplars on);
//! - `logged`: `metrics-id` plus the JSON access line, written as in `full`, and the request's
//!   `tracing` span that carries its request ID; no tracer: the reference the issue measures an
//!   unpicked request against;
//! - `full`: everything on: every request traced and batch-exported by OTLP/gRPC to the
//!   collector at `OTEL_EXPORTER_OTLP_ENDPOINT` (the script runs `MODE=sink` on the other
//!   core, so decoding the spans is not counted as our cost, while encoding and sending them
//!   is), RED metrics, request IDs, and one JSON access-log line per request written to stdout
//!   through the non-blocking writer;
//! - `sampled`: `full` as production runs it: one new trace in ten sampled
//!   (`traceidratio` 0.1), every error and every request slower than 1 s kept besides (none
//!   in this benchmark: every request here is a fast 200);
//! - `unsampled`: `full` with no request sampled but every one recorded until it ends, as an
//!   unpicked request is when errors and slow requests are kept: what such a request costs;
//! - `sink`: an OTLP/gRPC collector that reads and drops every export request without
//!   decoding it, so that it takes as little as possible from the load generator's core.
//!
//! Listens on `ADDR` (default 127.0.0.1:3000). Run it with
//! `MODE=full cargo run --release -p example-bench-server > /dev/null`.

use std::net::SocketAddr;

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use sightline::Sightline;
use sightline::opentelemetry_sdk::trace::Sampler;

async fn user(Path(id): Path<String>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "id": id, "name": "Ada" }))
}

/// A gRPC answer with an empty message and `grpc-status: 0` in the trailers.
struct GrpcOk {
    sent_data: bool,
    sent_trailers: bool,
}

impl http_body::Body for GrpcOk {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        let frame = if !self.sent_data {
            self.sent_data = true;
            // Uncompressed, zero-length ExportTraceServiceResponse.
            http_body::Frame::data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]))
        } else if !self.sent_trailers {
            self.sent_trailers = true;
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            http_body::Frame::trailers(trailers)
        } else {
            return std::task::Poll::Ready(None);
        };
        std::task::Poll::Ready(Some(Ok(frame)))
    }
}

/// Reads the whole export request and answers OK without decoding it.
async fn export(body: axum::body::Body) -> axum::response::Response {
    let _ = http_body_util::BodyExt::collect(body).await;
    let mut response = axum::response::Response::new(axum::body::Body::new(GrpcOk {
        sent_data: false,
        sent_trailers: false,
    }));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

async fn run_sink(addr: &str) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    // Traces and log records (the facade exports the access lines as OTLP logs too).
    let app = Router::new()
        .route(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            axum::routing::post(export),
        )
        .route(
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            axum::routing::post(export),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mode = std::env::var("MODE").unwrap_or_else(|_| "full".to_owned());
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    if mode == "sink" {
        return run_sink(&addr).await;
    }
    let router = Router::new().route("/users/{id}", get(user));
    let mut keep = None;
    let app = match mode.as_str() {
        "bare" => router,
        "metrics-id" => {
            // The facade for its recorders only: the layer below has no tracer.
            let sightline = Sightline::builder()
                .service_name("bench")
                .install_subscriber(false)
                .exemplars(true)
                .build()?;
            keep = Some(sightline);
            let layer = sightline::ServerLayer::builder().access_log(false).build();
            router.layer(layer)
        }
        "logged" => {
            // What `unsampled` is measured against: `metrics-id` plus the JSON access line (and
            // the request's `tracing` span, which carries its request ID), with no tracer.
            let sightline = Sightline::builder()
                .service_name("bench")
                .exemplars(true)
                .build()?;
            keep = Some(sightline);
            router.layer(sightline::ServerLayer::builder().build())
        }
        "full" | "sampled" | "unsampled" => {
            let mut builder = Sightline::builder()
                .service_name("bench")
                .export_interval(std::time::Duration::from_millis(500));
            let ratio = |r| Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)));
            builder = match mode.as_str() {
                "sampled" => builder.sampler(ratio(0.1)),
                "unsampled" => builder
                    .sampler(ratio(0.0))
                    .keep(sightline::KeepPolicy::default()),
                _ => builder,
            };
            // `LOG_WRITER=sink` formats every line but writes it nowhere, to tell the cost of
            // the non-blocking writer apart from the cost of formatting.
            if std::env::var("LOG_WRITER").as_deref() == Ok("sink") {
                builder = builder.log_writer(std::io::sink);
            }
            let sightline = builder.build()?;
            let app = router.layer(sightline.http_server_layer());
            keep = Some(sightline);
            app
        }
        other => {
            return Err(format!(
                "unknown MODE {other:?}: bare, metrics-id, logged, full, sampled, unsampled or sink"
            )
            .into());
        }
    };
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    // Shutting the provider down flushes through the in-process sink: not on a runtime thread.
    if let Some(sightline) = keep {
        tokio::task::spawn_blocking(move || sightline.shutdown()).await??;
    }
    Ok(())
}
