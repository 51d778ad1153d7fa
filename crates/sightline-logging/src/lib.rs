//! JSON lines for `tracing`, correlated with traces and requests.
//!
//! [`JsonLayer`] is a [`tracing_subscriber::Layer`] that writes one JSON object per line for
//! every event. Each line carries, as top-level keys, the `trace_id`, `span_id`, `trace_flags`
//! and `request_id` recorded on the nearest enclosing span, so a log backend can join log lines
//! to traces and to requests. It works in any `tracing` application; the Sightline HTTP
//! middleware records those four fields on its per-request span, and with the `opentelemetry`
//! feature a span exported by `tracing-opentelemetry` (an `#[instrument]` span) gives its own
//! trace and span ids without recording any field.
//!
//! # Quick start
//!
//! ```
//! use sightline_logging::JsonLayer;
//! use tracing_subscriber::prelude::*;
//!
//! let mut layer = JsonLayer::builder().service_name("checkout").build();
//! // Lines go to stdout through a background thread; the guard flushes them at exit.
//! let _guard = layer.take_worker_guard();
//! tracing_subscriber::registry().with(layer).init();
//!
//! let span = tracing::info_span!(
//!     "HTTP request",
//!     trace_id = %"4bf92f3577b34da6a3ce929d0e0e4736",
//!     span_id = %"00f067aa0ba902b7",
//!     request_id = %"6f1c1c1e-8d3e-4b5e-9a43-51d6f2d3a8f0",
//! );
//! let _entered = span.enter();
//! tracing::info!(order_id = 42, total = 99.5, "order placed");
//! ```
//!
//! prints (one line, wrapped here):
//!
//! ```text
//! {"timestamp":"2026-11-25T11:39:19.123456Z","level":"INFO","target":"rust_out",
//!  "message":"order placed","service.name":"checkout",
//!  "trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7",
//!  "request_id":"6f1c1c1e-8d3e-4b5e-9a43-51d6f2d3a8f0","fields":{"order_id":42,"total":99.5},
//!  "span":{"name":"HTTP request"},"spans":[{"name":"HTTP request"}]}
//! ```
//!
//! # Line schema
//!
//! The keys, their order and their value types are a stable schema, documented with examples
//! in [docs/logging.md](https://github.com/sightline-rs/sightline/blob/main/docs/logging.md).
//! Key names can be changed with [`FieldNames`]; the span fields read as ids with
//! [`SpanFieldNames`]. How the ids of an event are found is described in [`correlation`].
//!
//! # Writers
//!
//! By default lines go to standard output through [`NonBlocking`]: a bounded buffer drained by
//! a background thread, which drops (and counts, and reports) lines rather than block a
//! request when the output cannot keep up. Any [`MakeWriter`](tracing_subscriber::fmt::MakeWriter)
//! can be used instead with [`JsonLayerBuilder::writer`].
//!
//! # Feature flags
//!
//! | feature | default? | what it enables |
//! |---|---|---|
//! | `derive` | yes | `#[derive(Redact)]` for structs that log themselves with per-field redaction ([`redact`]) |
//! | `opentelemetry` | no | lines inside spans exported by `tracing-opentelemetry` carry those spans' trace and span ids, with no id fields recorded |
//! | `otlp` | no | `otlp::OtlpLogLayer`: `tracing` events as OpenTelemetry log records carrying the ids their JSON lines print (implies `opentelemetry`) |

/// Builder setters that take a name: `fn $name(self, impl Into<String>) -> Self`.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[must_use]
        pub fn $name(mut self, key: impl Into<String>) -> Self {
            self.$name = key.into();
            self
        }
    )*};
}

pub mod correlation;
mod escape;
mod layer;
mod non_blocking;
#[cfg(feature = "opentelemetry")]
mod otel;
#[cfg(feature = "otlp")]
pub mod otlp;
mod record;
pub mod redact;
mod time;

pub use correlation::SpanFieldNames;
pub use layer::{DEFAULT_MAX_VALUE_BYTES, FieldNames, JsonLayer, JsonLayerBuilder};
pub use non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
