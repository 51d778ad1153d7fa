//! OTLP log export: the logger provider behind the log bridge.
//!
//! The bridge itself, `sightline_logging::otlp::OtlpLogLayer`, lives in `sightline-logging`
//! (feature `otlp`), on the correlation walk its JSON lines print from, so a record carries
//! the ids of its JSON line (docs/adr/0004-otlp-log-bridge.md). This module decides whether
//! logs are exported and builds the provider: our exporter for OTLP/gRPC, the SDK's for HTTP,
//! behind a bounded batch processor.

use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;

use crate::otlp::env;
use crate::{Error, OtlpProtocol};

/// Whether OTLP logs are exported, from the builder's switch, `OTEL_LOGS_EXPORTER` and the
/// endpoint configuration. `Err` when they are switched on with no endpoint anywhere.
///
/// Opt-in: the JSON lines on stdout are the log pipeline by default, and exporting every
/// line a second time costs about 12 µs per request under load (docs/performance.md).
pub(crate) fn enabled(configured: Option<bool>, endpoint: Option<&str>) -> Result<bool, Error> {
    let has_endpoint = endpoint.is_some()
        || env("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT").is_some()
        || env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
    match configured {
        Some(false) => Ok(false),
        Some(true) if !has_endpoint => Err(Error::InvalidConfig(
            "OTLP logs are switched on but no OTLP endpoint is configured".into(),
        )),
        Some(true) => Ok(true),
        None => Ok(has_endpoint
            && env("OTEL_LOGS_EXPORTER").is_some_and(|v| {
                v.split(',')
                    .any(|exporter| exporter.trim().eq_ignore_ascii_case("otlp"))
            })),
    }
}

/// The log exporter the facade built: ours for OTLP/gRPC, the SDK's for HTTP.
#[derive(Debug)]
enum LogExporterKind {
    Grpc(crate::otlp_grpc::GrpcLogExporter),
    #[cfg(feature = "otlp-http")]
    Sdk(opentelemetry_otlp::LogExporter),
}

impl opentelemetry_sdk::logs::LogExporter for LogExporterKind {
    async fn export(
        &self,
        batch: opentelemetry_sdk::logs::LogBatch<'_>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        match self {
            Self::Grpc(e) => e.export(batch).await,
            #[cfg(feature = "otlp-http")]
            Self::Sdk(e) => e.export(batch).await,
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        match self {
            Self::Grpc(e) => e.shutdown_with_timeout(timeout),
            #[cfg(feature = "otlp-http")]
            Self::Sdk(e) => e.shutdown_with_timeout(timeout),
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        match self {
            Self::Grpc(e) => e.set_resource(resource),
            #[cfg(feature = "otlp-http")]
            Self::Sdk(e) => e.set_resource(resource),
        }
    }
}

/// The logger provider: an OTLP exporter behind a batch processor on its own thread.
pub(crate) fn logger_provider(
    resource: Resource,
    endpoint: Option<&str>,
    protocol: Option<OtlpProtocol>,
    timeout: Duration,
    export_interval: Duration,
    queue_size: usize,
) -> Result<SdkLoggerProvider, Error> {
    #[cfg(feature = "otlp-http")]
    use opentelemetry_otlp::{LogExporter, WithExportConfig as _};
    use opentelemetry_sdk::logs::{BatchConfigBuilder, BatchLogProcessor};

    let protocol = crate::otlp::protocol(protocol, "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL")?;
    let exporter = match protocol {
        // Our own encoder and channel, as for spans (ADR 0007).
        OtlpProtocol::Grpc => {
            let transport = crate::otlp_grpc::Transport::from_config(
                crate::otlp_grpc::Signal::Logs,
                endpoint,
                timeout,
            )?;
            LogExporterKind::Grpc(crate::otlp_grpc::GrpcLogExporter::new(transport))
        }
        #[cfg(feature = "otlp-http")]
        OtlpProtocol::HttpProtobuf => {
            let mut builder = LogExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(timeout);
            if let Some(endpoint) = endpoint {
                let base = endpoint.trim_end_matches('/');
                builder = builder.with_endpoint(format!("{base}/v1/logs"));
            }
            LogExporterKind::Sdk(builder.build().map_err(Error::Exporter)?)
        }
        #[cfg(not(feature = "otlp-http"))]
        OtlpProtocol::HttpProtobuf => {
            return Err(Error::InvalidConfig(
                "OTLP over HTTP needs the `otlp-http` feature".into(),
            ));
        }
    };
    // The batch processor's queue is bounded: `emit` only enqueues, and a record the queue
    // cannot take, or the collector does not accept, is dropped and counted (see `drops`), so
    // a slow or dead collector never blocks the caller.
    let budget = crate::drops::Budget::new("logs", queue_size);
    let exporter = crate::drops::CountingLogExporter {
        inner: exporter,
        budget: std::sync::Arc::clone(&budget),
    };
    let processor = BatchLogProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(export_interval)
                .with_max_queue_size(queue_size)
                .build(),
        )
        .build();
    Ok(SdkLoggerProvider::builder()
        .with_resource(resource)
        .with_log_processor(crate::drops::CountingLogProcessor {
            inner: processor,
            budget,
        })
        .build())
}
