//! OTLP exporters for the OpenTelemetry Rust SDK: spans and log records encoded straight
//! from the SDK's data into the protobuf wire format, sent by OTLP/gRPC (tonic) or
//! OTLP/HTTP (hyper), configured from code or from the `OTEL_EXPORTER_OTLP_*` environment;
//! and batch processors that count every span or record they lose. With the feature
//! `metrics`, the same for the `metrics` facade: a recorder that aggregates as the
//! OpenTelemetry SDK does and a thread that pushes it ([`MetricRecorder`],
//! [`PeriodicExport`]).
//!
//! Use it with any `SdkTracerProvider` or `SdkLoggerProvider`; nothing else from Sightline
//! is needed:
//!
//! ```no_run
//! use opentelemetry::trace::{Tracer as _, TracerProvider as _};
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//! use sightline_otlp::{ExporterConfig, Protocol, Signal, SpanExporter};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ExporterConfig::from_env(Signal::Traces)?
//!     .protocol(Protocol::Grpc)
//!     .base_endpoint("http://127.0.0.1:4317");
//! let provider = SdkTracerProvider::builder()
//!     .with_batch_exporter(SpanExporter::new(&config)?)
//!     .build();
//! provider.tracer("example").in_span("work", |_cx| {});
//! provider.shutdown()?;
//! # Ok(()) }
//! ```
//!
//! Why our own encoder: `opentelemetry-otlp` converts every span into owned proto structs
//! and then encodes those, about 28,000 instructions per exported span on our load
//! benchmark; encoding once from borrowed data cuts that by about 20,000 (docs/adr/0007).
//! The bytes are those of `opentelemetry-proto`'s conversion, field for field: unit and
//! property tests compare them with the SDK's own conversion.
//!
//! # Lost telemetry is counted
//!
//! [`counting_batch_span_processor`] and [`counting_batch_log_processor`] wrap the SDK's
//! batch processors so that a span or record dropped because the queue is full or the
//! export failed is counted once in the `metrics` counter [`DROPPED`]
//! (`sightline_telemetry_dropped_total{signal, reason}` in Prometheus).
//!
//! # Features
//!
//! | feature | default? | what it does |
//! |---|---|---|
//! | `logs` | yes | [`LogExporter`] and the counting log processor |
//! | `metrics` | no | OTLP metrics for the `metrics` facade: [`MetricRecorder`], [`MetricExporter`], [`PeriodicExport`] |
//! | `tls` | no | `https://` collectors over both transports (rustls with ring, the system's roots, `OTEL_EXPORTER_OTLP_CERTIFICATE`, client certificates for mutual TLS) |
//!
//! The crate's own events (a partial success, say) have the target `sightline_otlp`: a log
//! bridge that exports `tracing` events must leave that target out, as Sightline's does.

mod config;
mod drops;
mod exporter;
mod grpc;
mod http;
mod limits;
#[cfg(feature = "logs")]
mod logs;
#[cfg(feature = "metrics")]
mod metric;
#[cfg(feature = "tls")]
mod tls;
mod traces;
mod transport;
mod wire;

pub use config::{
    Compression, ConfigError, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_TIMEOUT, ExporterConfig, Protocol,
    Setting, Signal,
};
pub use drops::{
    BatchSettings, CountingSpanExporter, CountingSpanProcessor, DROPPED, DropBudget,
    counting_batch_span_processor,
};
#[cfg(feature = "logs")]
pub use drops::{CountingLogExporter, CountingLogProcessor, counting_batch_log_processor};
pub use exporter::SpanExporter;
pub use limits::TruncatingSpanProcessor;
#[cfg(feature = "logs")]
pub use logs::{LogExporter, LogRecordLimits};
#[cfg(feature = "metrics")]
pub use metric::{
    DEFAULT_BUCKETS, DEFAULT_EXPORT_INTERVAL, DEFAULT_EXPORT_TIMEOUT, MetricExporter, MetricReader,
    MetricRecorder, PeriodicExport, PeriodicExportBuilder, Temporality,
};

/// The `user-agent` of every export.
const USER_AGENT: &str = concat!("sightline-otlp/", env!("CARGO_PKG_VERSION"));

/// The `tracing` target of this crate's own events; a log bridge must not export them.
pub const TRACING_TARGET: &str = "sightline_otlp";
