//! Traces, RED metrics, request IDs and correlated JSON logs for axum and tonic services,
//! server side and client side, in one builder.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use sightline::Sightline;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let sightline = Sightline::builder().service_name("checkout").build()?;
//! let app = Router::new()
//!     .route("/users/{id}", get(|| async { "{}" }))
//!     .route("/metrics", sightline.metrics_handler())
//!     .layer(sightline.http_server_layer());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! [`SightlineBuilder::build`] sets up, with defaults right for a service behind Prometheus
//! and an OpenTelemetry Collector:
//!
//! - **traces**: an OpenTelemetry tracer provider; OTLP export with a batch processor when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
//!   [`SightlineBuilder::otlp_endpoint`]) is set, over gRPC or, with
//!   `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`, HTTP, through [`sightline_otlp`]'s
//!   exporters. Without an endpoint spans still get IDs, so log lines still correlate.
//!   `OTEL_EXPORTER_OTLP_HEADERS` adds metadata (an API key, say) and
//!   `OTEL_EXPORTER_OTLP_TIMEOUT` bounds an export; `https://` endpoints need the `otlp-tls`
//!   feature (the system's roots, plus `OTEL_EXPORTER_OTLP_CERTIFICATE`; client certificates
//!   for mutual TLS);
//!   `OTEL_EXPORTER_OTLP_COMPRESSION=gzip` compresses either protocol. Export runs on its own
//!   thread with a bounded queue:
//!   a slow or dead collector loses spans, never blocks a request, and every span (or log
//!   record) lost is counted in `sightline_telemetry_dropped_total`;
//! - **metrics**: a Prometheus recorder for the `metrics` facade (semantic-convention
//!   duration buckets, an upkeep thread so histogram memory stays bounded without scrapes);
//! - **logs**: a global `tracing` subscriber writing JSON lines ([`sightline_logging`]) to
//!   stdout through a non-blocking writer, filtered by `RUST_LOG` (default `info`), with
//!   `tracing` spans bridged to OpenTelemetry so that handlers' spans join the trace; with an
//!   OTLP endpoint, the same events exported as OTLP log records carrying the trace and span
//!   ids their JSON lines print ([`SightlineBuilder::otlp_logs`]);
//! - **the server layer** ([`Sightline::http_server_layer`], or
//!   [`Sightline::http_server_layer_builder`] to configure one): trace context, server span,
//!   request ID, RED metrics and access log for every request;
//! - **the gRPC layers** ([`Sightline::grpc_server_layer`] for a tonic server,
//!   [`Sightline::grpc_client_layer`] for a channel): the same, per the RPC semantic
//!   conventions, with the status read from the trailers at the end of the stream;
//! - **the HTTP client layer** ([`Sightline::http_client_layer`]): a client span per call and
//!   the context injected into the outgoing headers.
//!
//! # Features
//!
//! | feature | default? | what it does |
//! |---|---|---|
//! | `prometheus` | yes | Prometheus exposition of the RED metrics |
//! | `otlp` | yes | OTLP trace export over gRPC and HTTP/protobuf ([`sightline_otlp`]) |
//! | `otlp-logs` | yes | OTLP log export of the `tracing` events ([`SightlineBuilder::otlp_logs`]) |
//! | `otlp-metrics` | yes | OTLP metrics: the RED metrics and the application's `metrics` calls pushed every interval ([`SightlineBuilder::otlp_metrics`], `OTEL_METRICS_EXPORTER=otlp`) |
//! | `otlp-tls` | no | OTLP export to `https://` endpoints over both protocols (rustls; system roots, `OTEL_EXPORTER_OTLP_CERTIFICATE`, mutual TLS) |
//! | `otlp-http` | no | kept for compatibility: OTLP/HTTP is part of `otlp` |
//! | `jaeger` | no | Jaeger's `uber-trace-id` as a propagation format |
//! | `axum` | yes | [`Sightline::metrics_handler`]; route templates from axum's `MatchedPath` |
//! | `grpc` | yes | [`Sightline::grpc_server_layer`] and [`Sightline::grpc_client_layer`] for tonic |

//!
//! # What `build` does, in order
//!
//! 1. Reads the environment and checks every setting ([`Error::Config`],
//!    [`Error::Exporter`]): a wrong value with a fallback (`RUST_LOG`) is one line on stderr.
//! 2. Builds each part without touching a global: exporters, tracer and logger providers,
//!    the log writer, the subscriber, the metrics recorders (Prometheus, OTLP, or both behind
//!    one fan-out).
//! 3. Installs the globals: the `metrics` recorder (and starts the OTLP metrics push), then
//!    the `tracing` subscriber, then the
//!    OpenTelemetry tracer provider. A global installed by someone else is an
//!    [`Error::AlreadyInstalled`], and nothing of Sightline's is left installed.

mod builder;
mod console;
#[cfg(feature = "debug")]
mod debug;
mod error;
mod layers;
#[cfg(feature = "otlp-logs")]
mod logs;
#[cfg(feature = "prometheus")]
mod openmetrics;
mod otel_env;
mod parts;
#[cfg(any(feature = "prometheus", feature = "otlp-metrics"))]
mod recorders;
mod resolve;
#[cfg(all(
    feature = "runtime-metrics",
    any(feature = "prometheus", feature = "otlp-metrics")
))]
mod runtime_metrics;
mod sampling;
mod sightline;

pub use builder::{HistogramMatch, OtlpProtocol, SightlineBuilder};
pub use error::{ConfigError, Error, Global};
#[cfg(feature = "prometheus")]
pub use metrics_exporter_prometheus;
#[cfg(feature = "prometheus")]
pub use recorders::prometheus_builder;
pub use sampling::{AdaptiveSampling, DEFAULT_KEEP_SLOWER_THAN, KeepPolicy};
pub use sightline::{Sightline, shutdown_signal};

/// The middleware crate: the layers' types, builders and configuration.
pub use sightline_http as middleware;
#[doc(hidden)]
pub use sightline_http as http;
pub use sightline_http::client::{ClientLayer, ClientLayerBuilder};
/// The gRPC middlewares ([`Sightline::grpc_server_layer`], [`Sightline::grpc_client_layer`]).
#[cfg(feature = "grpc")]
pub use sightline_http::grpc;
pub use sightline_http::request_id::RequestId;
pub use sightline_http::server::{ServerLayer, ServerLayerBuilder};
pub use sightline_http::{ServerSpan, server_span};

// The versions Sightline is built with, so an application matches them without guessing.
pub use ::metrics;
pub use opentelemetry;
pub use opentelemetry_sdk;
pub use sightline_logging as logging;
/// The OTLP exporters, usable with any tracer or logger provider.
#[cfg(feature = "otlp")]
pub use sightline_otlp as otlp;
pub use sightline_propagation as propagation;
pub use tracing;
pub use tracing_opentelemetry;
pub use tracing_subscriber;
#[cfg(feature = "reqwest")]
pub use {reqwest_middleware, sightline_http::reqwest::ClientMiddleware};

/// The longest string attribute value of an exported span, in characters, when neither
/// `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` (or `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`) nor
/// [`SightlineBuilder::attribute_value_length_limit`] says otherwise: a longer one is cut and
/// ends with `…[truncated]`. The specification has no default limit; one client's 390 KB
/// `User-Agent` is reason enough for one.
pub const DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT: usize = 8192;

/// The name of the instrumentation scope of Sightline's spans.
pub const INSTRUMENTATION_SCOPE: &str = "sightline";

/// What ends an attribute value cut to Sightline's default limit, as in the JSON lines.
#[cfg(feature = "otlp")]
const TRUNCATED: &str = "…[truncated]";
