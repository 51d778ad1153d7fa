//! Per-call cost of the gRPC server layer on a unary call (`Greeter/SayHello`), against a bare
//! tonic server in the same run, in two groups:
//!
//! - `grpc_unary_in_process`: tonic's own router and generated server called without sockets
//!   (gRPC-framed request in, body and trailers collected): what the layer adds to a call;
//! - `grpc_unary`: a tonic client over 127.0.0.1 (HTTP/2, one connection, `TCP_NODELAY`), 32
//!   calls in flight per iteration, client and server on one 2-worker runtime: the whole
//!   exchange, as a user's throughput would see it (noisy on a shared 2-core machine).
//!
//! Variants:
//!
//! - `bare`: the tonic server alone;
//! - `wrapper_only`: the layer with every part off (request IDs, metrics, access log, spans):
//!   the cost of the wrappers themselves;
//! - `metrics_request_id`: the layer with request IDs and RED metrics into a real Prometheus
//!   recorder, no tracer, no access log;
//! - `full`: plus a server span (SDK provider whose exporter drops every batch, so OTLP
//!   encoding is not counted; a batch processor, as the facade installs) and the access line
//!   through the JSON layer to `io::sink`.
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

/// One `SayHello` call as it reaches a tonic server: gRPC framing around the prost message.
fn say_hello_request() -> http::Request<tonic::body::Body> {
    use prost::Message as _;

    let message = HelloRequest {
        name: "bench".into(),
    }
    .encode_to_vec();
    let mut framed = Vec::with_capacity(5 + message.len());
    framed.push(0);
    framed.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
    framed.extend_from_slice(&message);
    http::Request::post("http://127.0.0.1:50051/sightline.example.v1.Greeter/SayHello")
        .version(http::Version::HTTP_2)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("user-agent", "grpc-rust-bench")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(tonic::body::Body::new(http_body_util::Full::new(
            bytes::Bytes::from(framed),
        )))
        .expect("valid request")
}

/// The layer variants, by name; `None` is the bare server.
fn layers(
    provider: &opentelemetry_sdk::trace::SdkTracerProvider,
) -> Vec<(&'static str, Option<GrpcServerLayer>)> {
    vec![
        ("bare", None),
        (
            "wrapper_only",
            Some(
                GrpcServerLayer::builder()
                    .access_log(false)
                    .metrics(false)
                    .without_request_id()
                    .build(),
            ),
        ),
        (
            "metrics_request_id",
            Some(GrpcServerLayer::builder().access_log(false).build()),
        ),
        (
            "full",
            Some(
                GrpcServerLayer::builder()
                    .tracer(provider.tracer("bench"))
                    .build(),
            ),
        ),
    ]
}

/// The layer around tonic's own router and generated server, called without sockets: what
/// the layer adds to a call, free of the loopback's noise.
fn in_process(c: &mut Criterion, provider: &opentelemetry_sdk::trace::SdkTracerProvider) {
    use http_body_util::BodyExt as _;
    use tower::{Layer as _, Service as _};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("grpc_unary_in_process");
    for (name, layer) in layers(provider) {
        let routes = tonic::service::Routes::new(GreeterServer::new(Hello));
        let mut svc: tower::util::BoxCloneSyncService<
            http::Request<tonic::body::Body>,
            http::Response<tonic::body::Body>,
            std::convert::Infallible,
        > = match layer {
            None => tower::util::BoxCloneSyncService::new(routes),
            Some(layer) => tower::util::BoxCloneSyncService::new(
                tower::util::MapResponseLayer::new(|r: http::Response<_>| {
                    r.map(tonic::body::Body::new)
                })
                .layer(layer.layer(routes)),
            ),
        };
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let call = svc.call(say_hello_request());
                async move {
                    let response = call.await.expect("infallible");
                    let body = response.into_body().collect().await.expect("body");
                    assert!(
                        body.trailers().is_some(),
                        "a gRPC answer ends with trailers"
                    );
                }
            })
        });
    }
    group.finish();
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _ = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(DropExporter)
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

    in_process(c, &provider);

    let servers = runtime.block_on(async {
        let bare = GrpcServer::start(
            tonic::transport::Server::builder().add_service(GreeterServer::new(Hello)),
        )
        .await;
        let wrapper = GrpcServer::start(
            tonic::transport::Server::builder()
                .layer(
                    GrpcServerLayer::builder()
                        .access_log(false)
                        .metrics(false)
                        .without_request_id()
                        .build(),
                )
                .add_service(GreeterServer::new(Hello)),
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
            ("wrapper_only", wrapper),
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
