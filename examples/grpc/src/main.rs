//! gRPC: a tonic service with traces, RED metrics, request IDs and JSON logs from the same
//! builder as the HTTP quick start, and one layer on the tonic server.
//!
//! Run it with `cargo run -p example-grpc` (gRPC on 127.0.0.1:50051 or `ADDR`, which also
//! answers a plain HTTP `GET /metrics`; Prometheus metrics on
//! `http://127.0.0.1:9464/metrics` too, or `METRICS_ADDR`; building it needs `protoc`,
//! Debian's `protobuf-compiler`). It serves `sightline.example.v1.Greeter`
//! (`proto/sightline/example/v1/greeter.proto`) and `grpc.health.v1.Health`. Then look at:
//!
//! - a call to `Greeter/SayHello`, for example with `grpcurl -plaintext -import-path
//!   examples/grpc/proto -proto sightline/example/v1/greeter.proto 127.0.0.1:50051
//!   sightline.example.v1.Greeter/SayHello`: the `x-request-id` response header; on stdout,
//!   an access-log line with `rpc.method`, `rpc.status_code` and `duration_ms`;
//! - `Greeter/StreamHellos`: five answers 100 ms apart, and a duration of at least 500 ms,
//!   measured to the end of the stream, not to the response headers;
//! - `Greeter/Fail`: INTERNAL, counted with `error_type="INTERNAL"`;
//! - `curl 127.0.0.1:9464/metrics`: `rpc_server_call_duration_seconds` by `rpc_method` and
//!   `rpc_status_code`, and `rpc_server_active_calls`; health checks
//!   (`grpc.health.v1.Health/Check`) are kept out of the traces;
//! - with `OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317`, the server spans
//!   `sightline.example.v1.Greeter/SayHello` in your trace viewer.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use sightline::Sightline;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// The code generated from `proto/sightline/example/v1/greeter.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
mod proto {
    tonic::include_proto!("sightline.example.v1");
}

use proto::greeter_server::{Greeter, GreeterServer};
use proto::{FailRequest, HelloReply, HelloRequest, StreamHellosRequest};

/// Answers of `StreamHellos` when the request leaves `count` at 0.
const DEFAULT_COUNT: u32 = 5;
/// The pause before each `StreamHellos` answer when the request leaves `interval_ms` at 0.
const DEFAULT_INTERVAL_MS: u32 = 100;
/// Caps on what a request may ask for, so one call cannot keep the server busy for long.
const MAX_COUNT: u32 = 100;
const MAX_INTERVAL_MS: u32 = 10_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use tonic::server::NamedService as _;

    // Naming the methods served makes `rpc.method` exact from a call's first arrival; methods
    // of other services are `_OTHER` at once, and any other method of these services once it
    // answers UNIMPLEMENTED.
    let sightline = Sightline::builder().service_name("example-grpc").build()?;
    let greeter = GreeterServer::<DemoGreeter>::NAME;
    let server_layer = sightline
        .grpc_server_layer_builder()
        .known_services([
            format!("{greeter}/SayHello"),
            format!("{greeter}/StreamHellos"),
            format!("{greeter}/Fail"),
            "grpc.health.v1.Health/Check".to_owned(),
            "grpc.health.v1.Health/Watch".to_owned(),
        ])
        .build();

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<GreeterServer<DemoGreeter>>().await;

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:50051".to_owned());
    let metrics_addr =
        std::env::var("METRICS_ADDR").unwrap_or_else(|_| "127.0.0.1:9464".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    let metrics_listener = TcpListener::bind(&metrics_addr).await?;
    let grpc_addr: SocketAddr = listener.local_addr()?;
    let metrics_addr: SocketAddr = metrics_listener.local_addr()?;

    // One port for gRPC and HTTP: the tonic services as an axum router (gRPC over h2c),
    // traced by the gRPC layer, beside `/metrics` for a plain HTTP/1.1 scrape. The metrics
    // port of its own stays for scrapers configured with it.
    let grpc_routes = tonic::service::Routes::new(GreeterServer::new(DemoGreeter))
        .add_service(health_service)
        .into_axum_router()
        .layer(server_layer);
    let app = grpc_routes.route("/metrics", sightline.metrics_handler());
    let metrics_app = axum::Router::new().route("/metrics", sightline.metrics_handler());

    // Both servers stop on the same signal; the watch channel fans it out.
    let (stop_tx, stop_rx) = watch::channel(false);
    let metrics_server = tokio::spawn(
        axum::serve(metrics_listener, metrics_app)
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future(),
    );

    tracing::info!(addr = %grpc_addr, metrics_addr = %metrics_addr, "listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        sightline::shutdown_signal().await;
        let _ = stop_tx.send(true);
    })
    .await?;
    metrics_server.await??;

    // Export the spans still queued while the runtime (and the exporter's connection) is up.
    sightline.shutdown_async().await?;
    Ok(())
}

/// The demo service.
#[derive(Clone, Copy, Debug, Default)]
struct DemoGreeter;

fn name_or_world(name: &str) -> &str {
    if name.is_empty() { "world" } else { name }
}

#[tonic::async_trait]
impl Greeter for DemoGreeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = name_or_world(&request.get_ref().name);
        // What only the handler knows, on the call's server span.
        sightline::server_span().set_attribute(sightline::opentelemetry::KeyValue::new(
            "greeting.name",
            name.to_owned(),
        ));
        tracing::info!(greeted = name, "saying hello");
        Ok(Response::new(HelloReply {
            message: format!("Hello, {name}!"),
            index: 0,
        }))
    }

    type StreamHellosStream = Pin<Box<dyn Stream<Item = Result<HelloReply, Status>> + Send>>;

    async fn stream_hellos(
        &self,
        request: Request<StreamHellosRequest>,
    ) -> Result<Response<Self::StreamHellosStream>, Status> {
        let request = request.into_inner();
        let name = name_or_world(&request.name).to_owned();
        let count = match request.count {
            0 => DEFAULT_COUNT,
            n => n.min(MAX_COUNT),
        };
        let interval = Duration::from_millis(u64::from(match request.interval_ms {
            0 => DEFAULT_INTERVAL_MS,
            n => n.min(MAX_INTERVAL_MS),
        }));
        // A channel of one: the producer runs at most one answer ahead of the client, and
        // stops as soon as the client goes away (the send fails).
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            for index in 0..count {
                tokio::time::sleep(interval).await;
                let reply = HelloReply {
                    message: format!("Hello #{index}, {name}!"),
                    index,
                };
                if tx.send(Ok(reply)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn fail(&self, request: Request<FailRequest>) -> Result<Response<HelloReply>, Status> {
        let reason = &request.get_ref().reason;
        tracing::warn!(reason = %reason, "about to fail on purpose");
        Err(Status::internal(if reason.is_empty() {
            "failed on purpose"
        } else {
            reason.as_str()
        }))
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
