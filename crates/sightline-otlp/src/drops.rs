//! Telemetry that is lost, counted: spans and log records refused because the export queue is
//! full, and those whose export failed (a dead or refusing collector).
//!
//! The SDK's batch processors drop silently when their bounded queue is full (they log once,
//! and the total only at shutdown). So [`counting_batch_span_processor`] puts a counting processor in front of each
//! batch processor and a counting exporter behind it, sharing a budget of the queue's size:
//! a span or record is handed on only while fewer than that many are between the two (queued
//! or being exported); otherwise it is dropped here and counted. Since the batch processor's
//! queue never holds more than what is between the two, it never drops on its own, and every
//! loss is counted once in `sightline.telemetry.dropped{signal, reason}`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor,
};

/// The counter of lost spans and log records, through the `metrics` facade
/// (`sightline_telemetry_dropped_total` in Prometheus), labelled `signal` and `reason`.
pub const DROPPED: &str = "sightline.telemetry.dropped";

/// How many spans or records may be between a counting processor and its counting exporter.
#[derive(Debug)]
pub struct DropBudget {
    in_flight: AtomicUsize,
    capacity: usize,
    signal: &'static str,
}

impl DropBudget {
    /// A budget of `capacity` places for `signal` (the `signal` label: `spans`, `logs`).
    pub fn new(signal: &'static str, capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            capacity,
            signal,
        })
    }

    /// Takes a place in the queue, or counts a drop.
    fn admit(&self) -> bool {
        let admitted = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            self.dropped("queue_full", 1);
        }
        admitted
    }

    /// Takes `spans` places for a whole trace, leaving `reserve` places free for traces of a
    /// higher priority; or takes none, and counts the trace and its spans as dropped
    /// (`queue_full`): a trace is exported whole or not at all.
    ///
    /// ```
    /// let budget = sightline_otlp::DropBudget::new("spans", 4);
    /// assert!(budget.admit_trace(2, 2));
    /// assert!(!budget.admit_trace(1, 2), "only the reserve is left");
    /// assert!(budget.admit_trace(2, 0));
    /// assert_eq!(budget.fill(), 1.0);
    /// ```
    pub fn admit_trace(&self, spans: usize, reserve: usize) -> bool {
        let limit = self.capacity.saturating_sub(reserve);
        let admitted = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n + spans <= limit).then_some(n + spans)
            })
            .is_ok();
        if !admitted {
            self.dropped("queue_full", spans);
            metrics::counter!(DROPPED, "signal" => "traces", "reason" => "queue_full").increment(1);
        }
        admitted
    }

    /// How full the queue is, from 0 to 1.
    ///
    /// ```
    /// let budget = sightline_otlp::DropBudget::new("spans", 8);
    /// assert_eq!(budget.fill(), 0.0);
    /// ```
    pub fn fill(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let fill = self.in_flight.load(Ordering::Relaxed) as f64 / self.capacity.max(1) as f64;
        fill.min(1.0)
    }

    /// The queue's size.
    ///
    /// ```
    /// assert_eq!(sightline_otlp::DropBudget::new("spans", 2048).capacity(), 2048);
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Gives back the places of an exported (or failed) batch.
    fn exported(&self, count: usize, result: &OTelSdkResult) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(count))
            });
        if result.is_err() {
            self.dropped("export_failed", count);
        }
    }

    fn dropped(&self, reason: &'static str, count: usize) {
        metrics::counter!(DROPPED, "signal" => self.signal, "reason" => reason)
            .increment(count as u64);
    }
}

/// A span processor that admits spans to `inner` within the budget.
#[derive(Debug)]
pub struct CountingSpanProcessor<P> {
    inner: P,
    budget: Arc<DropBudget>,
    /// Whether spans take their place here; `false` when a processor in front admits whole
    /// traces ([`DropBudget::admit_trace`]).
    admits: bool,
}

impl<P> CountingSpanProcessor<P> {
    /// Admits spans to `inner` while `budget` has room; the exporter behind `inner` must be
    /// a [`CountingSpanExporter`] with the same budget, which gives the places back.
    pub fn new(inner: P, budget: Arc<DropBudget>) -> Self {
        Self {
            inner,
            budget,
            admits: true,
        }
    }

    /// The budget shared with the exporter behind.
    ///
    /// ```no_run
    /// use sightline_otlp::{BatchSettings, SpanExporter, counting_batch_span_processor};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let processor = counting_batch_span_processor(SpanExporter::from_env()?, BatchSettings::SPANS);
    /// assert_eq!(processor.budget().capacity(), BatchSettings::SPANS.max_queue_size);
    /// # Ok(()) }
    /// ```
    pub fn budget(&self) -> &Arc<DropBudget> {
        &self.budget
    }

    /// Hands every sampled span on, for a processor in front that has already taken its
    /// place with [`DropBudget::admit_trace`].
    ///
    /// ```no_run
    /// use sightline_otlp::{BatchSettings, SpanExporter, counting_batch_span_processor};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let processor = counting_batch_span_processor(SpanExporter::from_env()?, BatchSettings::SPANS)
    ///     .admitted_in_front();
    /// let budget = std::sync::Arc::clone(processor.budget());
    /// // Whole traces take their places before their spans are handed on.
    /// if budget.admit_trace(3, 0) { /* processor.on_end(..) for each of the 3 */ }
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn admitted_in_front(mut self) -> Self {
        self.admits = false;
        self
    }
}

/// How a batch processor queues and exports: the settings of the specification's
/// `OTEL_BSP_*` (spans) and `OTEL_BLRP_*` (log records) variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSettings {
    /// How many spans or records may wait; past it, new ones are dropped and counted.
    /// Defaults to 2048.
    pub max_queue_size: usize,
    /// How often a batch is exported. Defaults to 5 seconds for spans, 1 second for log
    /// records.
    pub scheduled_delay: Duration,
    /// The most spans or records in one export. Defaults to 512.
    pub max_export_batch_size: usize,
}

impl BatchSettings {
    /// The specification's defaults for spans (`OTEL_BSP_*` unset).
    ///
    /// ```
    /// use std::time::Duration;
    /// use sightline_otlp::BatchSettings;
    ///
    /// let spans = BatchSettings::SPANS;
    /// assert_eq!(spans.scheduled_delay, Duration::from_secs(5));
    /// assert_eq!((spans.max_queue_size, spans.max_export_batch_size), (2048, 512));
    /// assert_eq!(BatchSettings::LOGS.scheduled_delay, Duration::from_secs(1));
    /// ```
    pub const SPANS: Self = Self {
        max_queue_size: 2048,
        scheduled_delay: Duration::from_secs(5),
        max_export_batch_size: 512,
    };

    /// The specification's defaults for log records (`OTEL_BLRP_*` unset).
    pub const LOGS: Self = Self {
        max_queue_size: 2048,
        scheduled_delay: Duration::from_secs(1),
        max_export_batch_size: 512,
    };

    /// The queue size at least 1, the batch no larger than the queue (the SDK's rule).
    fn checked(self) -> Self {
        let max_queue_size = self.max_queue_size.max(1);
        Self {
            max_queue_size,
            max_export_batch_size: self.max_export_batch_size.clamp(1, max_queue_size),
            ..self
        }
    }
}

/// A batch span processor with counted drops: `exporter` behind the SDK's
/// [`BatchSpanProcessor`] configured by `settings`, a counting processor in front and a
/// counting exporter behind, sharing one budget of the queue's size. Every span lost to a
/// full queue or a failed export is counted in [`DROPPED`].
///
/// ```no_run
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use sightline_otlp::{BatchSettings, SpanExporter, counting_batch_span_processor};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let processor = counting_batch_span_processor(SpanExporter::from_env()?, BatchSettings::SPANS);
/// let provider = SdkTracerProvider::builder().with_span_processor(processor).build();
/// # drop(provider);
/// # Ok(()) }
/// ```
pub fn counting_batch_span_processor<E>(
    exporter: E,
    settings: BatchSettings,
) -> CountingSpanProcessor<BatchSpanProcessor>
where
    E: SpanExporter + 'static,
{
    let settings = settings.checked();
    let budget = DropBudget::new("spans", settings.max_queue_size);
    let processor =
        BatchSpanProcessor::builder(CountingSpanExporter::new(exporter, Arc::clone(&budget)))
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_scheduled_delay(settings.scheduled_delay)
                    .with_max_queue_size(settings.max_queue_size)
                    .with_max_export_batch_size(settings.max_export_batch_size)
                    .build(),
            )
            .build();
    CountingSpanProcessor::new(processor, budget)
}

impl<P: SpanProcessor> SpanProcessor for CountingSpanProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        // Unsampled spans are never exported: nothing to count.
        if !span.span_context.is_sampled() || !self.admits || self.budget.admit() {
            self.inner.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// A span exporter that gives back the budget of each batch and counts failed exports.
#[derive(Debug)]
pub struct CountingSpanExporter<E> {
    inner: E,
    budget: Arc<DropBudget>,
}

impl<E> CountingSpanExporter<E> {
    /// Exports through `inner`, giving `budget` back for every span of a batch and counting
    /// the spans of a failed export.
    pub fn new(inner: E, budget: Arc<DropBudget>) -> Self {
        Self { inner, budget }
    }
}

impl<E: SpanExporter> SpanExporter for CountingSpanExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let count = batch.len();
        let result = self.inner.export(batch).await;
        self.budget.exported(count, &result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(feature = "logs")]
pub use logs::{CountingLogExporter, CountingLogProcessor, counting_batch_log_processor};

#[cfg(feature = "logs")]
mod logs {
    use super::*;
    use opentelemetry::InstrumentationScope;
    use opentelemetry_sdk::logs::{
        BatchConfigBuilder, BatchLogProcessor, LogBatch, LogExporter, LogProcessor, SdkLogRecord,
    };

    /// A log processor that admits records to `inner` within the budget.
    #[derive(Debug)]
    pub struct CountingLogProcessor<P> {
        inner: P,
        budget: Arc<DropBudget>,
    }

    impl<P> CountingLogProcessor<P> {
        /// Admits records to `inner` while `budget` has room (see
        /// [`CountingSpanProcessor::new`]).
        pub fn new(inner: P, budget: Arc<DropBudget>) -> Self {
            Self { inner, budget }
        }
    }

    /// A batch log processor with counted drops, as [`counting_batch_span_processor`] is for
    /// spans.
    ///
    /// ```no_run
    /// use opentelemetry_sdk::logs::SdkLoggerProvider;
    /// use sightline_otlp::{BatchSettings, LogExporter, counting_batch_log_processor};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let processor = counting_batch_log_processor(LogExporter::from_env()?, BatchSettings::LOGS);
    /// let provider = SdkLoggerProvider::builder().with_log_processor(processor).build();
    /// # drop(provider);
    /// # Ok(()) }
    /// ```
    pub fn counting_batch_log_processor<E>(
        exporter: E,
        settings: BatchSettings,
    ) -> CountingLogProcessor<BatchLogProcessor>
    where
        E: LogExporter + 'static,
    {
        let settings = settings.checked();
        let budget = DropBudget::new("logs", settings.max_queue_size);
        let processor =
            BatchLogProcessor::builder(CountingLogExporter::new(exporter, Arc::clone(&budget)))
                .with_batch_config(
                    BatchConfigBuilder::default()
                        .with_scheduled_delay(settings.scheduled_delay)
                        .with_max_queue_size(settings.max_queue_size)
                        .with_max_export_batch_size(settings.max_export_batch_size)
                        .build(),
                )
                .build();
        CountingLogProcessor::new(processor, budget)
    }

    impl<P: LogProcessor> LogProcessor for CountingLogProcessor<P> {
        fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
            if self.budget.admit() {
                self.inner.emit(record, scope);
            }
        }

        fn force_flush(&self) -> OTelSdkResult {
            self.inner.force_flush()
        }

        fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
            self.inner.shutdown_with_timeout(timeout)
        }

        fn set_resource(&mut self, resource: &Resource) {
            self.inner.set_resource(resource);
        }
    }

    /// A log exporter that gives back the budget of each batch and counts failed exports.
    #[derive(Debug)]
    pub struct CountingLogExporter<E> {
        inner: E,
        budget: Arc<DropBudget>,
    }

    impl<E> CountingLogExporter<E> {
        /// Exports through `inner`, giving `budget` back (see [`CountingSpanExporter::new`]).
        pub fn new(inner: E, budget: Arc<DropBudget>) -> Self {
            Self { inner, budget }
        }
    }

    impl<E: LogExporter> LogExporter for CountingLogExporter<E> {
        async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
            let count = batch.iter().count();
            let result = self.inner.export(batch).await;
            self.budget.exported(count, &result);
            result
        }

        fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
            self.inner.shutdown_with_timeout(timeout)
        }

        fn set_resource(&mut self, resource: &Resource) {
            self.inner.set_resource(resource);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_admits_up_to_capacity_and_gives_back() {
        let budget = DropBudget::new("spans", 2);
        assert!(budget.admit() && budget.admit());
        assert!(!budget.admit(), "full");
        budget.exported(2, &Ok(()));
        assert!(budget.admit());
        budget.exported(5, &Ok(()));
        assert_eq!(
            budget.in_flight.load(Ordering::Relaxed),
            0,
            "never below zero"
        );
    }
}
