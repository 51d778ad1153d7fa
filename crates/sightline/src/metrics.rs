//! The Prometheus exposition: the recorder with the semantic conventions' buckets, built
//! without side effects, installed last.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use sightline_http::server::{DURATION_BUCKETS, HTTP_SERVER_REQUEST_DURATION};

use crate::error::{Error, Global};

/// How often histogram samples are folded into buckets when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The name of the counter of log lines the non-blocking writer dropped.
const DROPPED_LINES: &str = "sightline.logging.dropped_lines";

pub(crate) struct Exposition {
    renderer: Renderer,
    stop: Arc<AtomicBool>,
    upkeep: Option<std::thread::JoinHandle<()>>,
}

impl Exposition {
    pub(crate) fn renderer(&self) -> Renderer {
        self.renderer.clone()
    }
}

/// What `/metrics` needs: the exposition handle and the log writer whose drops it reports.
#[derive(Clone)]
pub(crate) struct Renderer {
    handle: PrometheusHandle,
    log_writer: Option<sightline_logging::NonBlocking>,
}

impl Renderer {
    /// Copies the writer's drop count into its counter (the writer counts with an atomic;
    /// the count is published here rather than on the logging hot path).
    fn publish_dropped_lines(&self) {
        if let Some(writer) = &self.log_writer {
            metrics::counter!(DROPPED_LINES).absolute(writer.dropped_lines());
        }
    }

    pub(crate) fn render(&self) -> String {
        self.publish_dropped_lines();
        self.handle.render()
    }
}

impl Drop for Exposition {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.upkeep.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// The RPC histograms' buckets: durations as for HTTP, message counts in powers of two.
#[cfg(feature = "grpc")]
fn grpc_buckets(
    builder: PrometheusBuilder,
) -> Result<PrometheusBuilder, metrics_exporter_prometheus::BuildError> {
    use sightline_http::grpc::{
        RPC_CLIENT_CALL_DURATION, RPC_CLIENT_RESPONSES_PER_RPC, RPC_SERVER_CALL_DURATION,
        RPC_SERVER_REQUESTS_PER_RPC, RPC_SERVER_RESPONSES_PER_RPC,
    };
    const MESSAGE_BUCKETS: [f64; 11] = [
        0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0,
    ];
    let mut builder = builder;
    for name in [RPC_SERVER_CALL_DURATION, RPC_CLIENT_CALL_DURATION] {
        builder =
            builder.set_buckets_for_metric(Matcher::Full(name.to_owned()), &DURATION_BUCKETS)?;
    }
    for name in [
        RPC_SERVER_REQUESTS_PER_RPC,
        RPC_SERVER_RESPONSES_PER_RPC,
        RPC_CLIENT_RESPONSES_PER_RPC,
    ] {
        builder =
            builder.set_buckets_for_metric(Matcher::Full(name.to_owned()), &MESSAGE_BUCKETS)?;
    }
    Ok(builder)
}

/// The recorder, built but not installed.
pub(crate) struct Prometheus {
    recorder: PrometheusRecorder,
}

/// The recorder with its exposition and upkeep thread, ready to install.
pub(crate) struct Ready {
    recorder: PrometheusRecorder,
    exposition: Exposition,
}

impl Prometheus {
    /// The recorder with the semantic conventions' buckets.
    pub(crate) fn recorder() -> Result<Self, Error> {
        let buckets_error = |_| Error::Config(crate::error::ConfigError::HistogramBuckets);
        let builder = PrometheusBuilder::new()
            .with_recommended_naming(true)
            .set_buckets_for_metric(
                Matcher::Full(HTTP_SERVER_REQUEST_DURATION.to_owned()),
                &DURATION_BUCKETS,
            )
            .map_err(buckets_error)?
            .set_buckets_for_metric(
                Matcher::Full(sightline_http::client::HTTP_CLIENT_REQUEST_DURATION.to_owned()),
                &DURATION_BUCKETS,
            )
            .map_err(buckets_error)?;
        #[cfg(feature = "grpc")]
        let builder = grpc_buckets(builder).map_err(buckets_error)?;
        Ok(Self {
            recorder: builder.build_recorder(),
        })
    }

    /// Starts the upkeep thread. `log_writer`'s dropped lines are published with every
    /// scrape and every upkeep.
    pub(crate) fn with_upkeep(
        self,
        log_writer: Option<sightline_logging::NonBlocking>,
    ) -> Result<Ready, Error> {
        let renderer = Renderer {
            handle: self.recorder.handle(),
            log_writer,
        };
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
                        renderer.publish_dropped_lines();
                        renderer.handle.run_upkeep();
                    }
                })
                .map_err(Error::Io)?
        };
        Ok(Ready {
            recorder: self.recorder,
            exposition: Exposition {
                renderer,
                stop,
                upkeep: Some(upkeep),
            },
        })
    }
}

impl Ready {
    /// Installs the global `metrics` recorder and describes Sightline's metrics to it.
    pub(crate) fn install(self) -> Result<Exposition, Error> {
        metrics::set_global_recorder(self.recorder)
            .map_err(|_| Error::AlreadyInstalled(Global::MetricsRecorder))?;
        sightline_http::server::describe_server_metrics();
        sightline_http::client::describe_client_metrics();
        #[cfg(feature = "grpc")]
        sightline_http::grpc::describe_grpc_metrics();
        metrics::describe_counter!(
            "sightline.propagation.rejected",
            metrics::Unit::Count,
            "Trace context headers that were present but malformed, by header."
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
            "Spans and log records lost before reaching the collector, by signal and reason \
             (queue_full: the export queue was full; export_failed: the collector did not accept them)."
        );
        Ok(self.exposition)
    }
}
