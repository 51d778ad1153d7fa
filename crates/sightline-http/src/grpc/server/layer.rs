//! [`GrpcServerLayerBuilder`]: the gRPC server's configuration.

use super::super::{GrpcConfig, grpc_setters};
use super::{GrpcServerLayer, Shared};
use crate::core::classify::Side;
use crate::core::config::{
    AccessConfig, CommonConfig, access_setters, capture_setters, common_setters,
};
use crate::grpc::CodeSet;

/// Builder of a [`GrpcServerLayer`].
pub struct GrpcServerLayerBuilder {
    common: CommonConfig,
    grpc: GrpcConfig,
    access: AccessConfig,
    trace_health_checks: bool,
    known_services: Option<Vec<Box<str>>>,
}

impl Default for GrpcServerLayerBuilder {
    fn default() -> Self {
        Self {
            common: CommonConfig::new(Side::Server),
            grpc: GrpcConfig::new(CodeSet::SERVER_ERRORS),
            access: AccessConfig::default(),
            trace_health_checks: false,
            known_services: None,
        }
    }
}

common_setters! {
    builder: GrpcServerLayerBuilder,
    layer: "sightline_http::grpc::GrpcServerLayer",
    span: "server span",
    metrics: "`rpc.server.call.duration` and `rpc.server.active_calls`",
    attach_context: "true",
    random_trace_ids: "true",
    builds: GrpcServerLayer,
}

capture_setters! {
    metadata,
    builder: GrpcServerLayerBuilder,
    layer: "sightline_http::grpc::GrpcServerLayer",
    span: "server span",
}

access_setters! {
    builder: GrpcServerLayerBuilder,
    layer: "sightline_http::grpc::GrpcServerLayer",
}

grpc_setters! {
    builder: GrpcServerLayerBuilder,
    layer: "sightline_http::grpc::GrpcServerLayer",
    messages: "`rpc.server.requests_per_rpc`, `rpc.server.responses_per_rpc`",
    error_codes: "[`CodeSet::SERVER_ERRORS`](crate::grpc::CodeSet::SERVER_ERRORS): `UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE` and `DATA_LOSS`",
}

impl GrpcServerLayerBuilder {
    /// Whether calls to `grpc.health.v1.Health` make spans.
    ///
    /// Defaults to `false`: probes every few seconds would crowd the traces. Their metrics
    /// are recorded either way.
    ///
    /// ```
    /// let layer = sightline_http::grpc::GrpcServerLayer::builder().trace_health_checks(true).build();
    /// # drop(layer);
    /// ```
    pub fn trace_health_checks(mut self, enabled: bool) -> Self {
        self.trace_health_checks = enabled;
        self
    }

    /// The services (`pkg.Service`) or methods (`pkg.Service/Method`) this server serves;
    /// calls to other services are recorded as `rpc.method = "_OTHER"` from their start.
    ///
    /// Defaults to none. Either way a method is recognised once a handler answered a call to
    /// it: a response head without a status (a streamed answer, even one the caller then
    /// cancels), or a status other than `UNIMPLEMENTED` (tonic's answer to a method a service
    /// lacks), `UNAVAILABLE` or `RESOURCE_EXHAUSTED` (what limits in front of the handlers
    /// answer). Until then its calls are `_OTHER`, so a call abandoned before any answer, as
    /// a method's very first, is `_OTHER`. A method listed itself (`pkg.Service/Method`) is
    /// recognised at once, and a handler that answers `UNIMPLEMENTED` keeps its name. tonic's
    /// generated servers name their service in `NamedService::NAME`.
    ///
    /// ```
    /// let layer = sightline_http::grpc::GrpcServerLayer::builder()
    ///     .known_services(["sightline.example.v1.Greeter", "grpc.health.v1.Health/Check"])
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn known_services<I, N>(mut self, services: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: Into<Box<str>>,
    {
        self.known_services = Some(services.into_iter().map(Into::into).collect());
        self
    }

    fn into_shared(self) -> Shared {
        let common = self.common.build(self.grpc.metadata_prefixes());
        let grpc = self
            .grpc
            .build(&common, Side::Server, self.known_services, None);
        Shared {
            common,
            grpc,
            access: self.access,
            trace_health_checks: self.trace_health_checks,
        }
    }
}
