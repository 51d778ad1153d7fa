//! Runtime and process metrics beside the RED metrics, in the same registry: the Tokio
//! runtime's stable metrics and the process's (`metrics-process`, named as Prometheus' own
//! clients name them). Sampled on the metrics thread's tick, never per scrape or request.

use std::time::Duration;

use metrics::Unit;

const WORKERS: &str = "tokio.workers";
const ALIVE_TASKS: &str = "tokio.alive_tasks";
const GLOBAL_QUEUE_DEPTH: &str = "tokio.global_queue_depth";
const BUSY_TIME: &str = "tokio.worker.busy_time";
const PARKS: &str = "tokio.worker.parks";

/// What is sampled: the runtime `build` ran in (when there was one) and the process.
#[derive(Clone)]
pub(crate) struct RuntimeMetrics {
    runtime: Option<tokio::runtime::Handle>,
    process: metrics_process::Collector,
}

impl RuntimeMetrics {
    pub(crate) fn new() -> Self {
        Self {
            runtime: tokio::runtime::Handle::try_current().ok(),
            process: metrics_process::Collector::default(),
        }
    }

    /// Describes the metrics to the installed recorder.
    pub(crate) fn describe(&self) {
        self.process.describe();
        metrics::describe_gauge!(WORKERS, Unit::Count, "Worker threads of the Tokio runtime.");
        metrics::describe_gauge!(
            ALIVE_TASKS,
            Unit::Count,
            "Tasks alive in the Tokio runtime (spawned, not yet finished)."
        );
        metrics::describe_gauge!(
            GLOBAL_QUEUE_DEPTH,
            Unit::Count,
            "Tasks waiting in the Tokio runtime's global (injection) queue."
        );
        metrics::describe_gauge!(
            BUSY_TIME,
            Unit::Seconds,
            "Time the Tokio runtime's workers have spent busy since it started, summed over workers."
        );
        metrics::describe_counter!(
            PARKS,
            Unit::Count,
            "Times the Tokio runtime's workers parked (went idle), summed over workers."
        );
    }

    /// Reads every value once.
    pub(crate) fn sample(&self) {
        self.process.collect();
        let Some(runtime) = &self.runtime else {
            return;
        };
        let m = runtime.metrics();
        let workers = m.num_workers();
        metrics::gauge!(WORKERS).set(workers as f64);
        metrics::gauge!(ALIVE_TASKS).set(m.num_alive_tasks() as f64);
        metrics::gauge!(GLOBAL_QUEUE_DEPTH).set(m.global_queue_depth() as f64);
        let busy: Duration = (0..workers).map(|w| m.worker_total_busy_duration(w)).sum();
        metrics::gauge!(BUSY_TIME).set(busy.as_secs_f64());
        let parks: u64 = (0..workers).map(|w| m.worker_park_count(w)).sum();
        metrics::counter!(PARKS).absolute(parks);
    }
}
