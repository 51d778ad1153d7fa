//! The server of the load benchmark (`scripts/bench-load`): the quick start's
//! `GET /users/{id}` route, bare or with Sightline, so both are measured in the same run.
//!
//! `MODE` selects what wraps the router:
//!
//! - `bare`: nothing;
//! - `metrics-id`: the server layer with RED metrics and request IDs only (a Prometheus
//!   recorder installed, no spans, no access log);
//! - `full`: everything on: every request traced and batch-exported by OTLP/gRPC to a sink
//!   collector running in this process, RED metrics, request IDs, and one JSON access-log line
//!   per request written to stdout through the non-blocking writer.
//!
//! Listens on `ADDR` (default 127.0.0.1:3000). Run it with
//! `MODE=full cargo run --release -p example-bench-server > /dev/null`.

use std::net::SocketAddr;

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use sightline::Sightline;

async fn user(Path(id): Path<String>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "id": id, "name": "Ada" }))
}

/// An OTLP collector that decodes and drops every span.
struct Sink;

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        drop(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

async fn start_sink() -> Result<SocketAddr, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Sink))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mode = std::env::var("MODE").unwrap_or_else(|_| "full".to_owned());
    let router = Router::new().route("/users/{id}", get(user));
    let mut keep = None;
    let app = match mode.as_str() {
        "bare" => router,
        "metrics-id" => {
            let _handle =
                metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
            let layer = sightline::ServerLayer::builder().access_log(false).build();
            router.layer(layer)
        }
        "full" => {
            let sink = start_sink().await?;
            let sightline = Sightline::builder()
                .service_name("bench")
                .otlp_endpoint(format!("http://{sink}"))
                .export_interval(std::time::Duration::from_millis(500))
                .build()?;
            let app = router.layer(sightline.http_server_layer());
            keep = Some(sightline);
            app
        }
        other => return Err(format!("unknown MODE {other:?}: bare, metrics-id or full").into()),
    };
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
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
    tokio::task::spawn_blocking(move || drop(keep)).await?;
    Ok(())
}
