//! [`GrpcClientLayerBuilder`]: the gRPC client's configuration.

use std::sync::Arc;

use super::super::{GrpcConfig, grpc_setters};
use super::{GrpcClientLayer, Shared};
use crate::core::classify::Side;
use crate::core::config::{CommonConfig, capture_setters, common_setters};
use crate::core::net::Target;
use crate::grpc::CodeSet;

/// Builder of a [`GrpcClientLayer`].
pub struct GrpcClientLayerBuilder {
    common: CommonConfig,
    grpc: GrpcConfig,
    target: Option<(Arc<str>, u16)>,
}

impl Default for GrpcClientLayerBuilder {
    fn default() -> Self {
        Self {
            common: CommonConfig::new(Side::Client),
            grpc: GrpcConfig::new(CodeSet::ALL_ERRORS),
            target: None,
        }
    }
}

common_setters! {
    builder: GrpcClientLayerBuilder,
    layer: "sightline_http::grpc::GrpcClientLayer",
    span: "client span",
    metrics: "`rpc.client.call.duration`",
    attach_context: "false",
    random_trace_ids: "false",
    builds: GrpcClientLayer,
}

capture_setters! {
    metadata,
    builder: GrpcClientLayerBuilder,
    layer: "sightline_http::grpc::GrpcClientLayer",
    span: "client span",
}

grpc_setters! {
    builder: GrpcClientLayerBuilder,
    layer: "sightline_http::grpc::GrpcClientLayer",
    messages: "`rpc.client.responses_per_rpc`: the messages received",
    error_codes: "[`CodeSet::ALL_ERRORS`](crate::grpc::CodeSet::ALL_ERRORS), as the semantic conventions ask of clients",
}

impl GrpcClientLayerBuilder {
    /// The channel's target (`http://host:port`), for `server.address` and `server.port`:
    /// a tonic client sends requests with the path alone.
    ///
    /// A target that does not parse is ignored; the request's authority is used when it has
    /// one.
    ///
    /// ```
    /// let layer = sightline_http::grpc::GrpcClientLayer::builder()
    ///     .target("http://127.0.0.1:50051")
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn target(mut self, target: &str) -> Self {
        self.target = Target::parse(target);
        self
    }

    fn into_shared(self) -> Shared {
        let common = self.common.build(self.grpc.metadata_prefixes());
        let grpc = self
            .grpc
            .build(&common, Side::Client, None, self.target.as_ref());
        Shared {
            common,
            grpc,
            target: self.target,
        }
    }
}
