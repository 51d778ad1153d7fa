//! OTLP log export: the logger provider behind the log bridge.
//!
//! The bridge itself, [`sightline_logging::otlp::OtlpLogLayer`], lives in `sightline-logging`
//! (feature `otlp`), on the correlation walk its JSON lines print from, so a record carries
//! the ids and the request ID of its JSON line (docs/adr/0004-otlp-log-bridge.md).

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;

/// The logger provider: the OTLP exporter behind a batch processor on its own thread, with
/// counted drops.
pub(crate) fn logger_provider(
    exporter: sightline_otlp::LogExporter,
    resource: Resource,
    batch: sightline_otlp::BatchSettings,
) -> SdkLoggerProvider {
    // The batch processor's queue is bounded: `emit` only enqueues, and a record the queue
    // cannot take, or the collector does not accept, is dropped and counted, so a slow or
    // dead collector never blocks the caller.
    SdkLoggerProvider::builder()
        .with_resource(resource)
        .with_log_processor(sightline_otlp::counting_batch_log_processor(
            exporter, batch,
        ))
        .build()
}
