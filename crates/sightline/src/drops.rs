//! Telemetry that is lost, counted: spans and log records refused because the export queue is
//! full, and those whose export failed (a dead or refusing collector).
//!
//! The SDK's batch processors drop silently when their bounded queue is full (they log once,
//! and the total only at shutdown). So the facade puts a counting processor in front of each
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
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

/// The metric of lost spans and log records.
pub(crate) const DROPPED: &str = "sightline.telemetry.dropped";

/// How many spans or records may be between the processor and the exporter.
#[derive(Debug)]
pub(crate) struct Budget {
    in_flight: AtomicUsize,
    capacity: usize,
    signal: &'static str,
}

impl Budget {
    pub(crate) fn new(signal: &'static str, capacity: usize) -> Arc<Self> {
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
pub(crate) struct CountingSpanProcessor<P> {
    pub(crate) inner: P,
    pub(crate) budget: Arc<Budget>,
}

impl<P: SpanProcessor> SpanProcessor for CountingSpanProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        // Unsampled spans are never exported: nothing to count.
        if !span.span_context.is_sampled() || self.budget.admit() {
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
pub(crate) struct CountingSpanExporter<E> {
    pub(crate) inner: E,
    pub(crate) budget: Arc<Budget>,
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

#[cfg(feature = "otlp-logs")]
pub(crate) use logs::{CountingLogExporter, CountingLogProcessor};

#[cfg(feature = "otlp-logs")]
mod logs {
    use super::*;
    use opentelemetry::InstrumentationScope;
    use opentelemetry_sdk::logs::{LogBatch, LogExporter, LogProcessor, SdkLogRecord};

    /// A log processor that admits records to `inner` within the budget.
    #[derive(Debug)]
    pub(crate) struct CountingLogProcessor<P> {
        pub(crate) inner: P,
        pub(crate) budget: Arc<Budget>,
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
    pub(crate) struct CountingLogExporter<E> {
        pub(crate) inner: E,
        pub(crate) budget: Arc<Budget>,
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
        let budget = Budget::new("spans", 2);
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
