//! The `metrics` recorders: the Prometheus exposition, the OTLP push, or both behind one
//! fan-out; built without side effects, installed first, with the semantic conventions'
//! buckets and units.

#[cfg(feature = "prometheus")]
use std::sync::Arc;
#[cfg(feature = "prometheus")]
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[cfg(feature = "prometheus")]
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use sightline_http::server::{DURATION_BUCKETS, HTTP_SERVER_REQUEST_DURATION};

use crate::error::{Error, Global};

/// How often histogram samples are folded into buckets when nobody scrapes.
#[cfg(feature = "prometheus")]
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The name of the counter of log lines the non-blocking writer dropped.
const DROPPED_LINES: &str = "sightline.logging.dropped_lines";

/// The counter of trace context headers that were present but malformed.
const PROPAGATION_REJECTED: &str = "sightline.propagation.rejected";

/// The RPC histograms' message-count buckets: powers of two.
#[cfg(feature = "grpc")]
const MESSAGE_BUCKETS: [f64; 11] = [
    0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0,
];

/// Every histogram of Sightline's with its explicit bucket boundaries, the same for both
/// exporters.
fn histogram_buckets() -> Vec<(&'static str, &'static [f64])> {
    #[cfg_attr(not(feature = "grpc"), allow(unused_mut))]
    let mut buckets: Vec<(&'static str, &'static [f64])> = vec![
        (HTTP_SERVER_REQUEST_DURATION, &DURATION_BUCKETS),
        (
            sightline_http::client::HTTP_CLIENT_REQUEST_DURATION,
            &DURATION_BUCKETS,
        ),
    ];
    #[cfg(feature = "grpc")]
    {
        use sightline_http::grpc::{
            RPC_CLIENT_CALL_DURATION, RPC_CLIENT_RESPONSES_PER_RPC, RPC_SERVER_CALL_DURATION,
            RPC_SERVER_REQUESTS_PER_RPC, RPC_SERVER_RESPONSES_PER_RPC,
        };
        buckets.extend([
            (RPC_SERVER_CALL_DURATION, &DURATION_BUCKETS[..]),
            (RPC_CLIENT_CALL_DURATION, &DURATION_BUCKETS[..]),
            (RPC_SERVER_REQUESTS_PER_RPC, &MESSAGE_BUCKETS[..]),
            (RPC_SERVER_RESPONSES_PER_RPC, &MESSAGE_BUCKETS[..]),
            (RPC_CLIENT_RESPONSES_PER_RPC, &MESSAGE_BUCKETS[..]),
        ]);
    }
    buckets
}

/// The semantic conventions' units that the facade's `Unit` cannot name (it has `Count`
/// where OpenTelemetry writes `{request}`), for OTLP; Prometheus names leave them out.
#[cfg(feature = "otlp-metrics")]
fn annotated_units() -> Vec<(&'static str, &'static str)> {
    #[cfg_attr(not(feature = "grpc"), allow(unused_mut))]
    let mut units = vec![
        (
            sightline_http::server::HTTP_SERVER_ACTIVE_REQUESTS,
            "{request}",
        ),
        (PROPAGATION_REJECTED, "{header}"),
        (DROPPED_LINES, "{line}"),
        (sightline_otlp::DROPPED, "{item}"),
    ];
    #[cfg(feature = "grpc")]
    {
        use sightline_http::grpc::{
            RPC_CLIENT_RESPONSES_PER_RPC, RPC_SERVER_ACTIVE_CALLS, RPC_SERVER_REQUESTS_PER_RPC,
            RPC_SERVER_RESPONSES_PER_RPC,
        };
        units.extend([
            (RPC_SERVER_ACTIVE_CALLS, "{call}"),
            (RPC_SERVER_REQUESTS_PER_RPC, "{count}"),
            (RPC_SERVER_RESPONSES_PER_RPC, "{count}"),
            (RPC_CLIENT_RESPONSES_PER_RPC, "{count}"),
        ]);
    }
    units
}

/// Describes Sightline's metrics to the global recorder.
fn describe() {
    sightline_http::server::describe_server_metrics();
    sightline_http::client::describe_client_metrics();
    #[cfg(feature = "grpc")]
    sightline_http::grpc::describe_grpc_metrics();
    metrics::describe_counter!(
        PROPAGATION_REJECTED,
        metrics::Unit::Count,
        "Trace context headers that were present but malformed, by header."
    );
    metrics::describe_counter!(
        sightline_http::server::METRIC_OVERFLOW,
        metrics::Unit::Count,
        "Recordings folded into a metric's otel_metric_overflow=\"true\" series because the \
         metric reached its series limit, by metric."
    );
    metrics::describe_counter!(
        crate::sampling::TRACES,
        metrics::Unit::Count,
        "Traces decided when their local root ended, by decision (sampled: picked by the head \
         sampler; kept_error and kept_slow: not picked but kept; dropped)."
    );
    metrics::describe_gauge!(
        crate::sampling::SAMPLING_RATIO,
        "The head sampler's current probability of sampling a new trace (by route for the \
         adaptive sampler)."
    );
    metrics::describe_counter!(
        DROPPED_LINES,
        metrics::Unit::Count,
        "JSON log lines dropped because the writer's buffer was full."
    );
    #[cfg(feature = "otlp")]
    metrics::describe_counter!(
        sightline_otlp::DROPPED,
        metrics::Unit::Count,
        "Spans, log records and metric points lost before reaching the collector, by signal \
         and reason (queue_full: the export queue was full; export_failed: the collector did \
         not accept them)."
    );
}

/// The runtime and process metrics sampler, or nothing without the feature.
#[cfg(feature = "runtime-metrics")]
type Runtime = crate::runtime_metrics::RuntimeMetrics;
#[cfg(not(feature = "runtime-metrics"))]
type Runtime = ();

/// Publishes the log writer's drop count (kept in an atomic off the logging hot path) into
/// its counter, before each scrape and each push.
#[derive(Clone, Default)]
pub(crate) struct DroppedLines(Option<sightline_logging::NonBlocking>);

impl DroppedLines {
    fn publish(&self) {
        if let Some(writer) = &self.0 {
            metrics::counter!(DROPPED_LINES).absolute(writer.dropped_lines());
        }
    }
}

/// The Prometheus exposition: what `/metrics` renders, kept up by a thread.
#[cfg(feature = "prometheus")]
pub(crate) struct Exposition {
    renderer: Renderer,
    stop: Arc<AtomicBool>,
    upkeep: Option<std::thread::JoinHandle<()>>,
}

#[cfg(feature = "prometheus")]
impl Exposition {
    pub(crate) fn renderer(&self) -> Renderer {
        self.renderer.clone()
    }
}

/// What `/metrics` needs: the exposition handle, the log writer whose drops it reports, and
/// the service's identity for `target_info`.
#[cfg(feature = "prometheus")]
#[derive(Clone)]
pub(crate) struct Renderer {
    handle: PrometheusHandle,
    dropped_lines: DroppedLines,
    target_labels: Arc<str>,
}

#[cfg(feature = "prometheus")]
impl Renderer {
    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        self.dropped_lines.publish();
        crate::openmetrics::text_with_target_info(self.handle.render(), &self.target_labels)
    }

    /// The OpenMetrics exposition, with exemplars.
    pub(crate) fn render_openmetrics(&self) -> String {
        self.dropped_lines.publish();
        let text = self.handle.render();
        let exemplars = crate::openmetrics::ExemplarIndex::collect();
        crate::openmetrics::openmetrics(&text, &exemplars, &self.target_labels)
    }

    /// The exposition the scraper's `Accept` asks for, with its content type.
    #[cfg(feature = "axum")]
    pub(crate) fn negotiate(&self, accept: Option<&http::HeaderValue>) -> (&'static str, String) {
        if crate::openmetrics::wants_openmetrics(accept) {
            (
                crate::openmetrics::OPENMETRICS_CONTENT_TYPE,
                self.render_openmetrics(),
            )
        } else {
            (crate::openmetrics::TEXT_CONTENT_TYPE, self.render())
        }
    }
}

#[cfg(feature = "prometheus")]
impl Drop for Exposition {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.upkeep.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// The Prometheus recorder with the semantic conventions' buckets.
#[cfg(feature = "prometheus")]
fn prometheus_recorder(
    buckets: &[(crate::HistogramMatch, Vec<f64>)],
) -> Result<PrometheusRecorder, Error> {
    let mut builder = prometheus_builder()?;
    for (histograms, bounds) in buckets {
        let matcher = match histograms {
            crate::HistogramMatch::Name(name) => Matcher::Full(name.clone()),
            crate::HistogramMatch::Prefix(prefix) => Matcher::Prefix(prefix.clone()),
        };
        builder = builder
            .set_buckets_for_metric(matcher, bounds)
            .map_err(|_| Error::Config(crate::error::ConfigError::HistogramBuckets))?;
    }
    Ok(builder.build_recorder())
}

/// A `metrics-exporter-prometheus` builder set up as Sightline's own exposition is: the
/// recommended naming (`http_server_request_duration_seconds`) and the semantic conventions'
/// buckets for Sightline's histograms. For an application that installs its own recorder
/// (with [`SightlineBuilder::prometheus(false)`](crate::SightlineBuilder::prometheus)) and
/// adds its own settings (global labels, its buckets, its listener) before installing it.
///
/// ```no_run
/// # fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let handle = sightline::prometheus_builder()?
///     .add_global_label("app", "checkout")
///     .install_recorder()?;
/// let sightline = sightline::Sightline::builder().prometheus(false).build()?;
/// # drop((handle, sightline));
/// # Ok(()) }
/// ```
#[cfg(feature = "prometheus")]
pub fn prometheus_builder() -> Result<PrometheusBuilder, Error> {
    let buckets_error = |_| Error::Config(crate::error::ConfigError::HistogramBuckets);
    let mut builder = PrometheusBuilder::new().with_recommended_naming(true);
    for (name, buckets) in histogram_buckets() {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)
            .map_err(buckets_error)?;
    }
    Ok(builder)
}

/// The bucket bounds of the histograms that carry exemplars (the duration histograms), as
/// the exposition buckets them: the application's by full name, else Sightline's.
#[cfg(feature = "prometheus")]
struct ExemplarBounds(Vec<(String, Vec<f64>)>);

#[cfg(feature = "prometheus")]
impl ExemplarBounds {
    fn new(buckets: &[(crate::HistogramMatch, Vec<f64>)]) -> Self {
        use metrics_exporter_prometheus::formatting::sanitize_metric_name;
        let mut bounds: Vec<(String, Vec<f64>)> = buckets
            .iter()
            .filter_map(|(histograms, bounds)| match histograms {
                crate::HistogramMatch::Name(name) => {
                    Some((sanitize_metric_name(name), bounds.clone()))
                }
                crate::HistogramMatch::Prefix(_) => None,
            })
            .collect();
        bounds.extend(
            histogram_buckets()
                .into_iter()
                .map(|(name, b)| (sanitize_metric_name(name), b.to_vec())),
        );
        Self(bounds)
    }

    fn of(&self, metric: &str) -> Option<Vec<f64>> {
        let metric = metrics_exporter_prometheus::formatting::sanitize_metric_name(metric);
        self.0
            .iter()
            .find(|(name, _)| *name == metric)
            .map(|(_, bounds)| bounds.clone())
    }
}

/// The instrumentation scope of the pushed metrics: Sightline, with its version.
#[cfg(feature = "otlp-metrics")]
pub(crate) fn scope() -> opentelemetry::InstrumentationScope {
    opentelemetry::InstrumentationScope::builder(crate::INSTRUMENTATION_SCOPE)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// The OTLP push, configured but not started.
#[cfg(feature = "otlp-metrics")]
pub(crate) struct OtlpPush {
    pub(crate) exporter: sightline_otlp::MetricExporter,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
}

/// The recorders chosen, built but not installed.
pub(crate) struct Recorders {
    #[cfg(feature = "prometheus")]
    prometheus: Option<PrometheusRecorder>,
    /// Exemplars on the exposition's duration buckets, with each metric's bounds.
    #[cfg(feature = "prometheus")]
    exemplars: Option<ExemplarBounds>,
    /// `target_info`'s labels.
    #[cfg(feature = "prometheus")]
    target_labels: Arc<str>,
    #[cfg(feature = "otlp-metrics")]
    otlp: Option<(sightline_otlp::MetricRecorder, OtlpPush)>,
}

/// What stays alive once installed: the exposition and the push thread.
#[derive(Default)]
pub(crate) struct Installed {
    #[cfg(feature = "prometheus")]
    pub(crate) exposition: Option<Exposition>,
    #[cfg(feature = "otlp-metrics")]
    pub(crate) push: Option<sightline_otlp::PeriodicExport>,
}

impl Recorders {
    /// `prometheus` when the exposition is wanted, `otlp` when metrics are pushed.
    pub(crate) fn new(
        prometheus: bool,
        #[cfg(feature = "otlp-metrics")] otlp: Option<OtlpPush>,
        buckets: &[(crate::HistogramMatch, Vec<f64>)],
        exemplars: bool,
        resource: &opentelemetry_sdk::Resource,
    ) -> Result<Self, Error> {
        for (_, bounds) in buckets {
            let increasing = bounds.windows(2).all(|w| w[0] < w[1]);
            if bounds.is_empty() || !increasing || bounds.iter().any(|b| !b.is_finite()) {
                return Err(Error::Config(crate::error::ConfigError::HistogramBuckets));
            }
        }
        #[cfg(not(feature = "prometheus"))]
        let _ = (prometheus, exemplars, resource);
        Ok(Self {
            #[cfg(feature = "prometheus")]
            prometheus: prometheus
                .then(|| prometheus_recorder(buckets))
                .transpose()?,
            #[cfg(feature = "prometheus")]
            exemplars: (prometheus && exemplars).then(|| ExemplarBounds::new(buckets)),
            #[cfg(feature = "prometheus")]
            target_labels: crate::openmetrics::target_labels(resource).into(),
            #[cfg(feature = "otlp-metrics")]
            otlp: otlp.map(|push| {
                let mut recorder = sightline_otlp::MetricRecorder::new();
                for (name, buckets) in histogram_buckets() {
                    recorder = recorder.buckets(name, buckets);
                }
                for (name, unit) in annotated_units() {
                    recorder = recorder.unit(name, unit);
                }
                for (histograms, bounds) in buckets {
                    recorder = match histograms {
                        crate::HistogramMatch::Name(name) => recorder.buckets(name, bounds),
                        crate::HistogramMatch::Prefix(prefix) => {
                            recorder.buckets_for_prefix(prefix, bounds)
                        }
                    };
                }
                (recorder, push)
            }),
        })
    }

    fn is_empty(&self) -> bool {
        #[allow(unused_mut)]
        let mut empty = true;
        #[cfg(feature = "prometheus")]
        {
            empty &= self.prometheus.is_none();
        }
        #[cfg(feature = "otlp-metrics")]
        {
            empty &= self.otlp.is_none();
        }
        empty
    }

    /// Installs the global `metrics` recorder (one of them, or a fan-out to both), describes
    /// Sightline's metrics to it, and starts the upkeep and push threads. `log_writer`'s
    /// dropped lines are published before every scrape, upkeep and push.
    pub(crate) fn install(
        self,
        log_writer: Option<sightline_logging::NonBlocking>,
    ) -> Result<Installed, Error> {
        if self.is_empty() {
            // An application's own recorder, installed before `build`, still learns what
            // Sightline's metrics are.
            describe();
            return Ok(Installed::default());
        }
        let dropped_lines = DroppedLines(log_writer);
        #[cfg(feature = "prometheus")]
        let handle = self.prometheus.as_ref().map(PrometheusRecorder::handle);
        #[cfg(feature = "otlp-metrics")]
        let (otlp_recorder, push) = match self.otlp {
            Some((recorder, push)) => (Some(recorder), Some(push)),
            None => (None, None),
        };
        #[cfg(feature = "otlp-metrics")]
        let reader = otlp_recorder
            .as_ref()
            .map(sightline_otlp::MetricRecorder::reader);

        let installed = match () {
            #[cfg(all(feature = "prometheus", feature = "otlp-metrics"))]
            () if self.prometheus.is_some() && otlp_recorder.is_some() => {
                let fanout = metrics_util::layers::FanoutBuilder::default()
                    .add_recorder(self.prometheus.expect("checked above"))
                    .add_recorder(otlp_recorder.expect("checked above"))
                    .build();
                metrics::set_global_recorder(fanout).map_err(drop)
            }
            #[cfg(feature = "prometheus")]
            () if self.prometheus.is_some() => {
                metrics::set_global_recorder(self.prometheus.expect("checked above")).map_err(drop)
            }
            #[cfg(feature = "otlp-metrics")]
            () if otlp_recorder.is_some() => {
                metrics::set_global_recorder(otlp_recorder.expect("checked above")).map_err(drop)
            }
            () => return Ok(Installed::default()),
        };
        installed.map_err(|_| Error::AlreadyInstalled(Global::MetricsRecorder))?;
        describe();
        // Sampled now, so the first scrape has them, then on every tick.
        #[cfg(feature = "runtime-metrics")]
        let runtime = {
            let runtime = crate::runtime_metrics::RuntimeMetrics::new();
            runtime.describe();
            runtime.sample();
            runtime
        };
        #[cfg(not(feature = "runtime-metrics"))]
        let runtime = ();

        #[cfg(feature = "prometheus")]
        if let Some(bounds) = self.exemplars {
            sightline_http::exemplars::enable(move |metric| bounds.of(metric));
        }
        #[cfg(feature = "prometheus")]
        let exposition = handle
            .map(|handle| {
                let renderer = Renderer {
                    handle,
                    dropped_lines: dropped_lines.clone(),
                    target_labels: self.target_labels,
                };
                start_upkeep(renderer, runtime.clone())
            })
            .transpose()?;
        #[cfg(feature = "otlp-metrics")]
        let push = match (reader, push) {
            (Some(reader), Some(push)) => Some(start_push(reader, push, dropped_lines, runtime)?),
            _ => None,
        };
        #[cfg(not(feature = "otlp-metrics"))]
        let _ = (dropped_lines, runtime);
        Ok(Installed {
            #[cfg(feature = "prometheus")]
            exposition,
            #[cfg(feature = "otlp-metrics")]
            push,
        })
    }
}

#[cfg(feature = "prometheus")]
fn start_upkeep(renderer: Renderer, runtime: Runtime) -> Result<Exposition, Error> {
    #[cfg(not(feature = "runtime-metrics"))]
    let _ = &runtime;
    // metrics-exporter-prometheus keeps histogram samples until upkeep folds them into
    // buckets; without scrapes and without this thread their memory would grow forever.
    let stop = Arc::new(AtomicBool::new(false));
    let upkeep = {
        let renderer = renderer.clone();
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("sightline-metrics-upkeep".into())
            .spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    std::thread::park_timeout(UPKEEP_INTERVAL);
                    renderer.dropped_lines.publish();
                    #[cfg(feature = "runtime-metrics")]
                    runtime.sample();
                    renderer.handle.run_upkeep();
                }
            })
            .map_err(Error::Io)?
    };
    Ok(Exposition {
        renderer,
        stop,
        upkeep: Some(upkeep),
    })
}

#[cfg(feature = "otlp-metrics")]
fn start_push(
    reader: sightline_otlp::MetricReader,
    push: OtlpPush,
    dropped_lines: DroppedLines,
    runtime: Runtime,
) -> Result<sightline_otlp::PeriodicExport, Error> {
    sightline_otlp::PeriodicExport::builder(reader, push.exporter)
        .interval(push.interval)
        .timeout(push.timeout)
        .before_each_export(move || {
            dropped_lines.publish();
            #[cfg(feature = "runtime-metrics")]
            runtime.sample();
            #[cfg(not(feature = "runtime-metrics"))]
            let _ = &runtime;
        })
        .start()
        .map_err(Error::Io)
}
