//! Per-call cost of the gRPC server layer on a unary call, against a bare tonic server in the
//! same run: a tonic client calls `Greeter/SayHello` over 127.0.0.1 (HTTP/2, one connection),
//! 32 calls in flight per iteration so the machine is busy rather than waiting on round
//! trips, on servers that differ only in their layer. Client and server share one 2-worker
//! runtime: the ratio is of the whole exchange, as a user's throughput would see it.
//!
//! - `bare`: the tonic server alone;
//! - `metrics_request_id`: the layer with request IDs and RED metrics into a real Prometheus
//!   recorder, no tracer, no access log;
//! - `full`: plus a server span (SDK provider whose exporter drops every batch, so OTLP
//!   encoding is not counted) and the access line through the JSON layer to `io::sink`.
//!
//! Run: `cargo bench -p sightline-tests --bench grpc_unary`. Report the ratios of the
//! per-call times to `bare`; the latest figures are in docs/performance.md.

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::trace::TracerProvider as _;
use sightline_http::grpc::GrpcServerLayer;
use sightline_tests::grpc::GrpcServer;
use sightline_tests::grpc::greeter::greeter_client::GreeterClient;
use sightline_tests::grpc::greeter::greeter_server::{Greeter, GreeterServer};
use sightline_tests::grpc::greeter::{FailRequest, HelloReply, HelloRequest, StreamHellosRequest};
use tonic::{Request, Response, Status};

/// Calls in flight per iteration.
const IN_FLIGHT: usize = 32;

/// The example's `SayHello`, without its logging: what is measured is the layer.
#[derive(Clone, Copy, Default)]
struct Hello;

#[tonic::async_trait]
impl Greeter for Hello {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        Ok(Response::new(HelloReply {
            message: format!("Hello, {}!", request.into_inner().name),
            index: 0,
        }))
    }

    type StreamHellosStream = tokio_stream::Iter<std::vec::IntoIter<Result<HelloReply, Status>>>;

    async fn stream_hellos(
        &self,
        _request: Request<StreamHellosRequest>,
    ) -> Result<Response<Self::StreamHellosStream>, Status> {
        Err(Status::unimplemented("not benchmarked"))
    }

    async fn fail(&self, _request: Request<FailRequest>) -> Result<Response<HelloReply>, Status> {
        Err(Status::internal("not benchmarked"))
    }
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

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _ = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(DropExporter)
        .build();
    {
        use tracing_subscriber::layer::SubscriberExt as _;
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("info"))
            .with(
                sightline_logging::JsonLayer::builder()
                    .service_name("bench")
                    .writer(std::io::sink)
                    .build(),
            );
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
    }

    let servers = runtime.block_on(async {
        let bare = GrpcServer::start(
            tonic::transport::Server::builder().add_service(GreeterServer::new(Hello)),
        )
        .await;
        let metrics = GrpcServer::start(
            tonic::transport::Server::builder()
                .layer(GrpcServerLayer::builder().access_log(false).build())
                .add_service(GreeterServer::new(Hello)),
        )
        .await;
        let full = GrpcServer::start(
            tonic::transport::Server::builder()
                .layer(
                    GrpcServerLayer::builder()
                        .tracer(provider.tracer("bench"))
                        .build(),
                )
                .add_service(GreeterServer::new(Hello)),
        )
        .await;
        [
            ("bare", bare),
            ("metrics_request_id", metrics),
            ("full", full),
        ]
    });

    let mut group = c.benchmark_group("grpc_unary");
    group.throughput(criterion::Throughput::Elements(IN_FLIGHT as u64));
    for (name, server) in &servers {
        let client = runtime.block_on(async { GreeterClient::new(server.channel().await) });
        group.bench_function(*name, |b| {
            b.to_async(&runtime).iter(|| {
                let mut calls = tokio::task::JoinSet::new();
                for _ in 0..IN_FLIGHT {
                    let mut client = client.clone();
                    calls.spawn(async move {
                        client
                            .say_hello(HelloRequest {
                                name: "bench".into(),
                            })
                            .await
                            .expect("call succeeds")
                    });
                }
                async move { calls.join_all().await }
            })
        });
    }
    group.finish();
    runtime.block_on(async {
        for (_, server) in servers {
            server.stop().await;
        }
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
