//! OTLP metrics for the `metrics` facade: a recorder that aggregates as the OpenTelemetry
//! SDK would, an exporter, and a thread that pushes on an interval.

mod encode;
mod export;
mod recorder;
mod snapshot;
#[cfg(test)]
mod tests;

pub use export::{
    DEFAULT_EXPORT_INTERVAL, DEFAULT_EXPORT_TIMEOUT, MetricExporter, PeriodicExport,
    PeriodicExportBuilder,
};
pub use recorder::{DEFAULT_BUCKETS, MetricReader, MetricRecorder};
pub use snapshot::Temporality;
