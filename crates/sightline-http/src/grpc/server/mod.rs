//! The gRPC server middleware for tonic servers: [`GrpcServerLayer`], [`GrpcServer`] and their
//! [`ResponseFuture`] and [`ResponseBody`]. See the [`grpc`](super) module docs for what is
//! recorded and when; the types are also exported there.

mod layer;
mod service;
mod state;

pub use layer::GrpcServerLayerBuilder;

use super::Grpc;
use super::body::RequestBody;
use crate::core::config::{AccessConfig, Common};
use crate::core::middleware::middleware;

/// Configuration shared by every clone of a [`GrpcServerLayer`] and the services it makes.
struct Shared {
    common: Common,
    grpc: Grpc,
    access: AccessConfig,
    trace_health_checks: bool,
}

middleware! {
    /// [`Layer`](tower_layer::Layer) that applies the [`GrpcServer`] middleware to a tonic
    /// server: `tonic::transport::Server::builder().layer(layer)`.
    ///
    /// Cheap to clone. See the [module docs](super) for what is recorded.
    ///
    /// ```
    /// use sightline_http::grpc::GrpcServerLayer;
    ///
    /// let layer = GrpcServerLayer::builder()
    ///     .tracer(opentelemetry::global::tracer("greeter"))
    ///     .known_services(["sightline.example.v1.Greeter"])
    ///     .build();
    /// # drop(layer);
    /// ```
    layer: GrpcServerLayer = "sightline_http::grpc::GrpcServerLayer",
    builder: GrpcServerLayerBuilder,
    /// Middleware that traces, measures and identifies every gRPC call a server answers; see
    /// the [module docs](super).
    ///
    /// Made by [`GrpcServerLayer`].
    service: GrpcServer {},
    shared: Shared, call: state::ServerCall, inner_body: RequestBody<ReqBody>, error: [],
    future;
    body;
}
