//! A metric's series budget: past its limit, new label sets are folded into one series
//! labelled `otel_metric_overflow="true"`, counted, and a warning names the metric once.

use std::collections::HashSet;
use std::hash::{Hash as _, Hasher as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use metrics::Label;

use crate::exemplars::DurationHistogram;

/// The name of the counter of recordings folded into an overflow series.
pub const METRIC_OVERFLOW: &str = "sightline.metrics.overflow";

/// The default number of series of a metric, as in the OpenTelemetry SDK.
pub(crate) const DEFAULT_LIMIT: usize = 2000;

/// The series budget of one histogram of one layer.
#[derive(Debug)]
pub(crate) struct SeriesBudget {
    metric: &'static str,
    limit: usize,
    seen: Mutex<HashSet<u64>>,
    warned: AtomicBool,
}

impl SeriesBudget {
    pub(crate) fn new(metric: &'static str, limit: usize) -> Self {
        Self {
            metric,
            limit: limit.max(1),
            seen: Mutex::new(HashSet::new()),
            warned: AtomicBool::new(false),
        }
    }

    /// Whether `labels` may have a series of their own.
    fn admit(&self, labels: &[Label]) -> bool {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for label in labels {
            label.key().hash(&mut hasher);
            label.value().hash(&mut hasher);
        }
        let key = hasher.finish();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(&key) {
            return true;
        }
        // One series of the budget is the overflow series itself.
        if seen.len() + 1 < self.limit {
            seen.insert(key);
            return true;
        }
        drop(seen);
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                metric = self.metric,
                limit = self.limit,
                "a metric reached its series limit; new label sets are folded into the \
                 otel_metric_overflow=\"true\" series"
            );
        }
        false
    }

    /// The histogram of `labels`, or the overflow series once the budget is spent.
    pub(crate) fn histogram(&self, labels: Vec<Label>) -> DurationHistogram {
        let labels = if self.admit(&labels) {
            labels
        } else {
            metrics::counter!(METRIC_OVERFLOW, "metric" => self.metric).increment(1);
            vec![Label::from_static_parts("otel_metric_overflow", "true")]
        };
        DurationHistogram::register(self.metric, labels)
    }
}
