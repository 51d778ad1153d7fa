//! gRPC middlewares for tonic servers and channels: trace context through metadata, spans per
//! the RPC semantic conventions, RED metrics, request IDs and an access-log line per call.
//!
//! ```
//! use sightline_http::grpc::{GrpcClientLayer, GrpcServerLayer};
//!
//! // tonic::transport::Server::builder().layer(server_layer).add_service(..)
//! let server_layer = GrpcServerLayer::builder()
//!     .tracer(opentelemetry::global::tracer("greeter"))
//!     .build();
//! // tower::ServiceBuilder::new().layer(client_layer).service(channel)
//! let client_layer = GrpcClientLayer::builder()
//!     .tracer(opentelemetry::global::tracer("greeter"))
//!     .target("http://127.0.0.1:50051")
//!     .build();
//! # drop((server_layer, client_layer));
//! ```
//!
//! # What happens to a call
//!
//! When a call arrives ([`GrpcServer`]) or leaves ([`GrpcClient`]):
//!
//! 1. The method is read from the path (`/pkg.Service/Method`). On the server it is
//!    recognised once a call to it ends with anything but `UNIMPLEMENTED` (tonic's answer to
//!    a method it does not serve), or at once when listed in
//!    [`known_services`](GrpcServerLayerBuilder::known_services) as `pkg.Service/Method`;
//!    with that list, methods of services not on it are never recognised. An unrecognised
//!    method is recorded as `_OTHER`,
//!    with `rpc.method_original` on the span, so a scan of random names adds no series.
//! 2. The server reads the request ID from `x-request-id` metadata (kept when 1 to 128 visible
//!    ASCII characters, generated otherwise) and the trace context from the metadata (W3C
//!    `traceparent`/`tracestate`, B3, `baggage`, as configured; malformed values start a new
//!    trace and are counted in `sightline.propagation.rejected`). The client injects its own
//!    span's context and the caller's baggage and request ID.
//! 3. A span of kind SERVER or CLIENT starts, named `{rpc.method}` (`grpc` when the method is
//!    not recognised), with `rpc.system.name = "grpc"`, `rpc.method`, `server.address` and
//!    `server.port` (client: from the [`target`](GrpcClientLayerBuilder::target)),
//!    `client.address`/`client.port` on a tonic server, and the metadata chosen with
//!    [`capture_request_metadata`](GrpcServerLayerBuilder::capture_request_metadata) (sensitive
//!    values `REDACTED`). Health checks
//!    (`grpc.health.v1.Health`) make no span unless
//!    [`trace_health_checks`](GrpcServerLayerBuilder::trace_health_checks) is on.
//!
//! **The call ends when the response stream ends**, never at the response head: at the
//! trailers, at the end of a trailers-only response, on a body error, or when the response
//! future or body is dropped (the caller cancelled or went away). Then, exactly once, the
//! status is taken from the trailers (or from the head of a trailers-only response, or
//! derived from a non-200 HTTP status) and:
//!
//! - `rpc.server.call.duration` / `rpc.client.call.duration` record the duration, labelled by
//!   `rpc.system.name`, `rpc.method`, `rpc.status_code` (`"OK"`, `"INTERNAL"`, ...)
//!   and `error.type` on errors; `rpc.server.active_calls` goes down;
//! - the span gets `rpc.status_code`, and for an error code `error.type` and status
//!   Error, and ends. Errors are, by default, `UNKNOWN`, `DEADLINE_EXCEEDED`,
//!   `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE` and `DATA_LOSS` on the server and every code
//!   but `OK` on the client; [`error_codes`](GrpcServerLayerBuilder::error_codes) changes that;
//! - the server writes one access-log event (target `sightline_http::access`): INFO for `OK`,
//!   ERROR for an error code, WARN otherwise
//!   ([`access_log_levels`](GrpcServerLayerBuilder::access_log_levels) changes them), with
//!   `rpc.method`, `rpc.status_code`, `duration_ms`, the request and response bytes,
//!   `client.address` and `user_agent.original`.
//!
//! A call dropped before its end is recorded as `CANCELLED`. With
//! [`legacy_semconv`](GrpcServerLayerBuilder::legacy_semconv) the pre-1.38 attribute names
//! are used instead (`rpc.system`, `rpc.service`, `rpc.method` as the method alone,
//! `rpc.grpc.status_code` as a number).
//!
//! The layers, services and builders are exported here; each side's `ResponseFuture` and
//! `ResponseBody` are in [`server`] and [`client`] (the server's also here, as tonic servers
//! name them).

mod body;
mod call;
pub mod client;
mod code;
mod method;
#[cfg(feature = "metrics")]
mod metrics;
pub mod server;

pub use body::RequestBody;
pub use client::{GrpcClient, GrpcClientLayer, GrpcClientLayerBuilder};
pub use code::{Code, CodeSet};
pub use method::OTHER_METHOD;
#[cfg(feature = "metrics")]
pub use metrics::{
    RPC_CLIENT_CALL_DURATION, RPC_CLIENT_RESPONSES_PER_RPC, RPC_SERVER_ACTIVE_CALLS,
    RPC_SERVER_CALL_DURATION, RPC_SERVER_REQUESTS_PER_RPC, RPC_SERVER_RESPONSES_PER_RPC,
    describe_grpc_metrics,
};
pub use server::{
    GrpcServer, GrpcServerLayer, GrpcServerLayerBuilder, ResponseBody, ResponseFuture,
};

use opentelemetry_semantic_conventions::attribute;

/// `rpc.status_code`: the gRPC status name of a call (`"OK"`, `"NOT_FOUND"`, ...), on the
/// span, the access line and the duration histograms (Prometheus label `rpc_status_code`).
///
/// The semantic conventions' registry renamed `rpc.response.status_code` to this after
/// v1.44.0, and v1.45.0 made the RPC spans and `rpc.{server,client}.call.duration` stable;
/// the `opentelemetry-semantic-conventions` crate does not have the new name yet.
///
/// ```
/// assert_eq!(sightline_http::grpc::RPC_STATUS_CODE, "rpc.status_code");
/// ```
pub const RPC_STATUS_CODE: &str = "rpc.status_code";

/// The pre-1.38 RPC names that [`legacy_semconv`](GrpcServerLayerBuilder::legacy_semconv)
/// records, and the message-count metrics the conventions have since dropped. The semantic
/// conventions crate deprecates them; this crate records them on request, so the allowance
/// is made here, once.
#[allow(deprecated)]
mod legacy {
    use opentelemetry_semantic_conventions::attribute;
    #[cfg(feature = "metrics")]
    use opentelemetry_semantic_conventions::metric;

    pub(crate) const RPC_SYSTEM: &str = attribute::RPC_SYSTEM;
    pub(crate) const RPC_SERVICE: &str = attribute::RPC_SERVICE;
    pub(crate) const RPC_GRPC_STATUS_CODE: &str = attribute::RPC_GRPC_STATUS_CODE;
    pub(crate) const RPC_GRPC_REQUEST_METADATA: &str = attribute::RPC_GRPC_REQUEST_METADATA;
    pub(crate) const RPC_GRPC_RESPONSE_METADATA: &str = attribute::RPC_GRPC_RESPONSE_METADATA;
    #[cfg(feature = "metrics")]
    pub(crate) const RPC_SERVER_REQUESTS_PER_RPC: &str = metric::RPC_SERVER_REQUESTS_PER_RPC;
    #[cfg(feature = "metrics")]
    pub(crate) const RPC_SERVER_RESPONSES_PER_RPC: &str = metric::RPC_SERVER_RESPONSES_PER_RPC;
    #[cfg(feature = "metrics")]
    pub(crate) const RPC_CLIENT_RESPONSES_PER_RPC: &str = metric::RPC_CLIENT_RESPONSES_PER_RPC;
}

/// What the gRPC server and client builders share besides the common configuration.
pub(crate) struct GrpcConfig {
    message_counts: bool,
    error_codes: CodeSet,
    legacy_semconv: bool,
}

impl GrpcConfig {
    fn new(error_codes: CodeSet) -> Self {
        Self {
            message_counts: false,
            error_codes,
            legacy_semconv: false,
        }
    }

    /// The metadata attribute prefixes (request, response): v1.38 renamed the gRPC-only keys
    /// to the system-neutral ones.
    fn metadata_prefixes(&self) -> (&'static str, &'static str) {
        if self.legacy_semconv {
            (
                legacy::RPC_GRPC_REQUEST_METADATA,
                legacy::RPC_GRPC_RESPONSE_METADATA,
            )
        } else {
            (
                attribute::RPC_REQUEST_METADATA,
                attribute::RPC_RESPONSE_METADATA,
            )
        }
    }

    fn build(
        self,
        common: &crate::core::config::Common,
        side: crate::core::classify::Side,
        known_services: Option<Vec<Box<str>>>,
        target: Option<&(std::sync::Arc<str>, u16)>,
    ) -> Grpc {
        #[cfg(not(feature = "metrics"))]
        let _ = (common, side, target);
        Grpc {
            #[cfg(feature = "metrics")]
            metrics: common.metrics.then(|| metrics::Labels {
                names: metrics::Names::of(side),
                legacy: self.legacy_semconv,
                target: target.cloned(),
            }),
            message_counts: self.message_counts,
            error_codes: self.error_codes,
            legacy_semconv: self.legacy_semconv,
            methods: method::MethodTable::new(known_services),
        }
    }
}

/// What the gRPC server and client layers share besides the common configuration.
pub(crate) struct Grpc {
    pub(crate) message_counts: bool,
    pub(crate) error_codes: CodeSet,
    pub(crate) legacy_semconv: bool,
    pub(crate) methods: method::MethodTable,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Option<metrics::Labels>,
}

/// The setters of the [`GrpcConfig`] part (a `grpc` field) of the gRPC builders.
macro_rules! grpc_setters {
    (
        builder: $builder:ident,
        layer: $layer:literal,
        messages: $messages:literal,
        error_codes: $codes:literal $(,)?
    ) => {
        impl $builder {
            #[doc = concat!("Whether to record the messages per call (", $messages, ").")]
            ///
            /// Defaults to `false`: it reads every message's 5-byte prefix.
            ///
            /// ```
            #[doc = concat!("let layer = ", $layer, "::builder().message_counts(true).build();")]
            /// # drop(layer);
            /// ```
            pub fn message_counts(mut self, enabled: bool) -> Self {
                self.grpc.message_counts = enabled;
                self
            }

            /// The status codes that are errors: span status Error and `error.type`.
            ///
            #[doc = concat!("Defaults to ", $codes, ".")]
            ///
            /// ```
            /// use sightline_http::grpc::{Code, CodeSet};
            ///
            /// // A lookup that finds nothing is an answer, not a failed call.
            #[doc = concat!("let layer = ", $layer, "::builder()")]
            ///     .error_codes(CodeSet::ALL_ERRORS.without(Code::NotFound))
            ///     .build();
            /// # drop(layer);
            /// ```
            pub fn error_codes(mut self, codes: $crate::grpc::CodeSet) -> Self {
                self.grpc.error_codes = codes;
                self
            }

            /// Whether to use the pre-1.38 RPC attribute names (`rpc.system`, `rpc.service`,
            /// `rpc.method` as the method alone, `rpc.grpc.status_code`, and the
            /// `rpc.grpc.*.metadata.<key>` keys) in spans and metric labels, for dashboards
            /// built on them.
            ///
            /// Defaults to `false`: the current conventions.
            ///
            /// ```
            #[doc = concat!("let layer = ", $layer, "::builder().legacy_semconv(true).build();")]
            /// # drop(layer);
            /// ```
            pub fn legacy_semconv(mut self, legacy: bool) -> Self {
                self.grpc.legacy_semconv = legacy;
                self
            }
        }
    };
}

pub(crate) use grpc_setters;
