//! The metric exporter, and the thread that runs it on an interval.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};

use super::recorder::MetricReader;
use super::snapshot::{DeltaState, Temporality};
use crate::config::{ConfigError, ExporterConfig, Signal};
use crate::transport::{PartialSuccess, Sender};

/// The default of `OTEL_METRIC_EXPORT_INTERVAL`: 60 seconds.
pub const DEFAULT_EXPORT_INTERVAL: Duration = Duration::from_secs(60);

/// The default of `OTEL_METRIC_EXPORT_TIMEOUT`: 30 seconds.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// Pushes what a [`MetricRecorder`](crate::MetricRecorder) holds to an OTLP receiver, by
/// OTLP/gRPC or OTLP/HTTP (`MetricsService/Export`, `/v1/metrics`).
///
/// Give it an [`ExporterConfig`] for [`Signal::Metrics`]; [`PeriodicExport`] calls it on an
/// interval. Build it inside a Tokio runtime: the connection lives there.
///
/// ```no_run
/// use std::time::Duration;
/// use sightline_otlp::{MetricExporter, MetricRecorder, PeriodicExport};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let recorder = MetricRecorder::new();
/// let export = PeriodicExport::start(
///     recorder.reader(),
///     MetricExporter::from_env()?, // OTEL_EXPORTER_OTLP_METRICS_* or OTEL_EXPORTER_OTLP_*
///     Duration::from_secs(60),
/// )?;
/// metrics::set_global_recorder(recorder)?;
/// metrics::counter!("jobs.done").increment(1);
/// // At the end: one last export, then the thread stops.
/// tokio::task::spawn_blocking(move || export.shutdown()).await??;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MetricExporter {
    sender: Sender,
    scope: InstrumentationScope,
    temporality: Temporality,
    delta: Mutex<DeltaState>,
    runtime: tokio::runtime::Handle,
}

impl MetricExporter {
    /// An exporter configured by `config`. Fails on a configuration it cannot honour, or
    /// outside a Tokio runtime; never connects here.
    pub fn new(config: &ExporterConfig) -> Result<Self, ConfigError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        Ok(Self {
            sender: Sender::new(config)?,
            scope: InstrumentationScope::builder("metrics").build(),
            temporality: Temporality::Cumulative,
            delta: Mutex::new(DeltaState::default()),
            runtime,
        })
    }

    /// An exporter configured by the `OTEL_EXPORTER_OTLP_*` environment for metrics.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::new(&ExporterConfig::from_env(Signal::Metrics)?)
    }

    /// The resource every export describes (service name and the like).
    pub fn with_resource(mut self, resource: &Resource) -> Self {
        self.sender.resource.set(resource);
        self
    }

    /// The instrumentation scope of the exported metrics; `metrics` (the facade they came
    /// through) by default.
    pub fn with_scope(mut self, scope: InstrumentationScope) -> Self {
        self.scope = scope;
        self
    }

    /// Cumulative (the default) or delta counters and histograms.
    pub fn with_temporality(mut self, temporality: Temporality) -> Self {
        self.temporality = temporality;
        self
    }

    /// Collects everything `reader` holds and sends it; on failure the data points sent in
    /// vain are counted in [`DROPPED`](crate::DROPPED) (`signal="metrics"`). With cumulative
    /// temporality the next export carries their totals again.
    pub async fn export(&self, reader: &MetricReader) -> OTelSdkResult {
        self.export_within(reader, None).await
    }

    /// [`Self::export`], given up after `timeout` (the data points then count as dropped).
    async fn export_within(
        &self,
        reader: &MetricReader,
        timeout: Option<Duration>,
    ) -> OTelSdkResult {
        let mut snapshot = reader.collect(SystemTime::now());
        if self.temporality != Temporality::Cumulative {
            snapshot = self
                .delta
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .relative(snapshot);
        }
        if snapshot.metrics.is_empty() {
            return Ok(());
        }
        let resource = &self.sender.resource;
        let parts = self
            .sender
            .encode_parts(&snapshot.metrics, &|metrics, buf| {
                super::encode::encode_request(
                    &resource.message,
                    &resource.schema_url,
                    &self.scope,
                    snapshot.time,
                    metrics,
                    buf,
                );
            });
        let send = self
            .sender
            .send_parts::<ExportMetricsServiceResponse>(parts);
        let result = match timeout {
            Some(timeout) => tokio::time::timeout(timeout, send)
                .await
                .unwrap_or(Err(OTelSdkError::Timeout(timeout))),
            None => send.await,
        };
        if result.is_err() {
            metrics::counter!(crate::DROPPED, "signal" => "metrics", "reason" => "export_failed")
                .increment(snapshot.points() as u64);
        }
        result
    }
}

/// `ExportMetricsServiceResponse`, declared here so that the crate needs neither
/// `opentelemetry-proto`'s nor the SDK's `metrics` feature for one small message.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ExportMetricsServiceResponse {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<ExportMetricsPartialSuccess>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ExportMetricsPartialSuccess {
    #[prost(int64, tag = "1")]
    rejected_data_points: i64,
    #[prost(string, tag = "2")]
    error_message: String,
}

impl PartialSuccess for ExportMetricsServiceResponse {
    const SIGNAL: &'static str = "metrics";

    fn rejected(&self) -> Option<(i64, &str)> {
        let partial = self.partial_success.as_ref()?;
        Some((partial.rejected_data_points, partial.error_message.as_str()))
    }
}

enum Command {
    Flush(mpsc::Sender<OTelSdkResult>),
    Shutdown(mpsc::Sender<OTelSdkResult>),
}

/// Runs a [`MetricExporter`] every interval on a thread of its own
/// (`OTEL_METRIC_EXPORT_INTERVAL`), each export bounded by a timeout
/// (`OTEL_METRIC_EXPORT_TIMEOUT`). A slow or dead collector delays only this thread, never a
/// request.
///
/// [`Self::shutdown`] (or dropping it) exports one last time and stops the thread; call it
/// while the exporter's Tokio runtime is still running, from `spawn_blocking` in async code.
#[derive(Debug)]
pub struct PeriodicExport {
    commands: Mutex<Option<mpsc::Sender<Command>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Settings of a [`PeriodicExport`] before it starts.
///
/// ```no_run
/// use std::time::Duration;
/// use sightline_otlp::{MetricExporter, MetricRecorder, PeriodicExport};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let recorder = MetricRecorder::new();
/// let export = PeriodicExport::builder(recorder.reader(), MetricExporter::from_env()?)
///     .interval(Duration::from_secs(15))
///     .timeout(Duration::from_secs(5))
///     .before_each_export(|| metrics::gauge!("queue.depth").set(3.0))
///     .start()?;
/// # drop(export);
/// # Ok(()) }
/// ```
pub struct PeriodicExportBuilder {
    reader: MetricReader,
    exporter: MetricExporter,
    interval: Duration,
    timeout: Duration,
    before: Option<Box<dyn Fn() + Send>>,
}

impl std::fmt::Debug for PeriodicExportBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeriodicExportBuilder")
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl PeriodicExportBuilder {
    /// Time between exports; [`DEFAULT_EXPORT_INTERVAL`] by default, and for zero.
    pub fn interval(mut self, interval: Duration) -> Self {
        if !interval.is_zero() {
            self.interval = interval;
        }
        self
    }

    /// The longest one export may take, retries included; [`DEFAULT_EXPORT_TIMEOUT`] by
    /// default.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs `hook` on the export thread before each collection: to publish values kept
    /// elsewhere (an atomic, a queue's length) into their metrics.
    pub fn before_each_export(mut self, hook: impl Fn() + Send + 'static) -> Self {
        self.before = Some(Box::new(hook));
        self
    }

    /// Starts the thread; the first export is one interval from now.
    pub fn start(self) -> std::io::Result<PeriodicExport> {
        let (commands, inbox) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sightline-otlp-metrics".into())
            .spawn(move || run(&self, &inbox))?;
        Ok(PeriodicExport {
            commands: Mutex::new(Some(commands)),
            thread: Mutex::new(Some(thread)),
        })
    }
}

impl PeriodicExport {
    /// Settings to change before starting: interval, timeout, a hook.
    pub fn builder(reader: MetricReader, exporter: MetricExporter) -> PeriodicExportBuilder {
        PeriodicExportBuilder {
            reader,
            exporter,
            interval: DEFAULT_EXPORT_INTERVAL,
            timeout: DEFAULT_EXPORT_TIMEOUT,
            before: None,
        }
    }

    /// Starts exporting every `interval` with the default timeout; the first export is one
    /// interval from now. An interval of zero is taken as [`DEFAULT_EXPORT_INTERVAL`].
    pub fn start(
        reader: MetricReader,
        exporter: MetricExporter,
        interval: Duration,
    ) -> std::io::Result<Self> {
        Self::builder(reader, exporter).interval(interval).start()
    }

    /// Exports now and waits for the result.
    pub fn force_flush(&self) -> OTelSdkResult {
        self.ask(Command::Flush)
    }

    /// Exports one last time and stops the thread. Later calls return `AlreadyShutdown`.
    pub fn shutdown(&self) -> OTelSdkResult {
        let result = self.ask(Command::Shutdown);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        self.commands
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        result
    }

    fn ask(&self, command: impl FnOnce(mpsc::Sender<OTelSdkResult>) -> Command) -> OTelSdkResult {
        let (reply, answer) = mpsc::channel();
        let sent = self
            .commands
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|commands| commands.send(command(reply)).is_ok());
        if !sent {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        answer.recv().unwrap_or(Err(OTelSdkError::AlreadyShutdown))
    }
}

impl Drop for PeriodicExport {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn run(settings: &PeriodicExportBuilder, inbox: &mpsc::Receiver<Command>) {
    let mut next = Instant::now() + settings.interval;
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        match inbox.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {
                next += settings.interval;
                let _ = export_once(settings);
            }
            Ok(Command::Flush(reply)) => {
                let _ = reply.send(export_once(settings));
            }
            Ok(Command::Shutdown(reply)) => {
                let _ = reply.send(export_once(settings));
                return;
            }
            // The handle is gone without a shutdown: nothing more to do.
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn export_once(settings: &PeriodicExportBuilder) -> OTelSdkResult {
    if let Some(before) = &settings.before {
        before();
    }
    let exporter = &settings.exporter;
    // A runtime that is shutting down makes Tokio's timers panic: that is one failed
    // export, not a dead thread.
    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        exporter
            .runtime
            .block_on(exporter.export_within(&settings.reader, Some(settings.timeout)))
    }));
    let result = attempt.unwrap_or_else(|_| {
        Err(OTelSdkError::InternalFailure(
            "the exporter's Tokio runtime has stopped".into(),
        ))
    });
    if let Err(e) = &result {
        tracing::warn!(target: crate::TRACING_TARGET, error = %e, "OTLP metrics export failed");
    }
    result
}
