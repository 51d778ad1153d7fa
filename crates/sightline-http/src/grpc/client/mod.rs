//! The gRPC client middleware for tonic channels: [`GrpcClientLayer`], [`GrpcClient`] and
//! their [`ResponseFuture`] and [`ResponseBody`]. See the [`grpc`](super) module docs for what
//! is recorded and when; the layer and the service are also exported there.

mod layer;
mod service;
mod state;

pub use layer::GrpcClientLayerBuilder;

use super::Grpc;
use crate::core::config::Common;
use crate::core::middleware::middleware;

/// Configuration shared by every clone of a [`GrpcClientLayer`] and the services it makes.
struct Shared {
    common: Common,
    grpc: Grpc,
    /// The channel's `server.address` and `server.port`.
    target: Option<(std::sync::Arc<str>, u16)>,
}

middleware! {
    /// [`Layer`](tower_layer::Layer) that applies the [`GrpcClient`] middleware to a tonic
    /// `Channel`: `ServiceBuilder::new().layer(layer).service(channel)`, then hand the service
    /// to a generated client's `new`.
    ///
    /// Cheap to clone, and cheap to make per connection: method names and metric handles are
    /// interned once per process. See the [module docs](super) for what is recorded.
    ///
    /// ```
    /// use sightline_http::grpc::GrpcClientLayer;
    ///
    /// let layer = GrpcClientLayer::builder()
    ///     .tracer(opentelemetry::global::tracer("checkout"))
    ///     .target("http://127.0.0.1:50051")
    ///     .build();
    /// # drop(layer);
    /// ```
    layer: GrpcClientLayer = "sightline_http::grpc::GrpcClientLayer",
    builder: GrpcClientLayerBuilder,
    /// Middleware that traces, propagates and measures every outgoing gRPC call; see the
    /// [module docs](super).
    ///
    /// Made by [`GrpcClientLayer`]. The inner service's error must be
    /// `Debug + Display + 'static` so that a failed call can be classified (a timeout is
    /// `DEADLINE_EXCEEDED`, another failure `UNAVAILABLE`); it is passed on untouched.
    service: GrpcClient {},
    shared: Shared, call: state::ClientCall, inner_body: ReqBody, error: [::std::fmt::Debug + ::std::fmt::Display + 'static],
    future;
    body;
}
