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
//!   `rpc.system.name`, `rpc.method`, `rpc.response.status_code` (`"OK"`, `"INTERNAL"`, ...)
//!   and `error.type` on errors; `rpc.server.active_calls` goes down;
//! - the span gets `rpc.response.status_code`, and for an error code `error.type` and status
//!   Error, and ends. Errors are, by default, `UNKNOWN`, `DEADLINE_EXCEEDED`,
//!   `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE` and `DATA_LOSS` on the server and every code
//!   but `OK` on the client; [`error_codes`](GrpcServerLayerBuilder::error_codes) changes that;
//! - the server writes one access-log event (target `sightline_http::access`): INFO for `OK`,
//!   ERROR for an error code, WARN otherwise
//!   ([`access_log_levels`](GrpcServerLayerBuilder::access_log_levels) changes them), with
//!   `rpc.method`, `rpc.response.status_code`, `duration_ms`, the request and response bytes,
//!   `client.address` and `user_agent.original`.
//!
//! A call dropped before its end is recorded as `CANCELLED`. With
//! [`legacy_semconv`](GrpcServerLayerBuilder::legacy_semconv) the pre-1.38 attribute names
//! are used instead (`rpc.system`, `rpc.service`, `rpc.method` as the method alone,
//! `rpc.grpc.status_code` as a number).

mod body;
mod call;
mod client;
mod code;
mod future;
mod method;
#[cfg(feature = "metrics")]
mod metrics;
mod server;

pub use body::{RequestBody, ResponseBody};
pub use client::{GrpcClient, GrpcClientLayer, GrpcClientLayerBuilder};
pub use code::{Code, CodeSet};
pub use future::ResponseFuture;
pub use method::OTHER_METHOD;
#[cfg(feature = "metrics")]
pub use metrics::{
    RPC_CLIENT_CALL_DURATION, RPC_CLIENT_RESPONSES_PER_RPC, RPC_SERVER_ACTIVE_CALLS,
    RPC_SERVER_CALL_DURATION, RPC_SERVER_REQUESTS_PER_RPC, RPC_SERVER_RESPONSES_PER_RPC,
    describe_grpc_metrics,
};
pub use server::{GrpcServer, GrpcServerLayer, GrpcServerLayerBuilder};

use http::HeaderName;
use opentelemetry::global::BoxedTracer;
use sightline_propagation::Propagator;

/// Configuration shared by every clone of a gRPC layer and the services it makes.
pub(crate) struct Shared {
    /// Server (`true`) or client middleware.
    pub(crate) server: bool,
    pub(crate) tracer: Option<BoxedTracer>,
    pub(crate) propagator: Propagator,
    pub(crate) request_id_header: Option<HeaderName>,
    pub(crate) access_log: bool,
    pub(crate) access_log_levels: crate::access::AccessLogLevels,
    pub(crate) message_counts: bool,
    pub(crate) trace_health_checks: bool,
    pub(crate) error_codes: CodeSet,
    pub(crate) legacy_semconv: bool,
    pub(crate) attach_context: bool,
    pub(crate) random_trace_ids: bool,
    pub(crate) methods: method::MethodTable,
    /// Metadata recorded on the span (`rpc.request.metadata.<key>`, ...).
    pub(crate) metadata: crate::headers::HeaderCapture,
    /// The client's `server.address` and `server.port`.
    pub(crate) target: Option<(std::sync::Arc<str>, u16)>,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Option<metrics::LabelStyle>,
}

impl Shared {
    pub(crate) fn metrics_enabled(&self) -> bool {
        #[cfg(feature = "metrics")]
        return self.metrics.is_some();
        #[cfg(not(feature = "metrics"))]
        false
    }
}
