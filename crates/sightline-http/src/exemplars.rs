//! Exemplars: for every bucket of the duration histograms (HTTP and gRPC, server and
//! client), the trace and span of the last sampled request whose duration fell into it, so
//! that a latency bucket on a dashboard links to a trace.
//!
//! The `metrics` facade has no exemplars, so they are kept here, beside the histogram
//! handles the middlewares already cache: one set of cells per series, made when the series'
//! handle is registered, and written without a lock or an allocation when a sampled request
//! ends. An exposition reads them with [`collect`] and writes them on its histogram buckets
//! (the `sightline` facade does so on `/metrics` in OpenMetrics). Nothing is kept until
//! [`enable`] is called, and unsampled requests never become exemplars.
//!
//! ```
//! // Exemplars on the semantic conventions' duration buckets.
//! sightline_http::exemplars::enable(|_metric| {
//!     Some(sightline_http::server::DURATION_BUCKETS.to_vec())
//! });
//! assert!(sightline_http::exemplars::is_enabled());
//! for series in sightline_http::exemplars::collect() {
//!     println!("{} {:?}: {} exemplars", series.metric, series.labels, series.buckets.len());
//! }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::{Histogram, Label};
use opentelemetry::trace::{SpanContext, SpanId, TraceId};

/// Most series with exemplar cells; past it, new series record no exemplars. Each metric's
/// series budget already bounds its series, so this only bounds a process of many metrics.
const MAX_SERIES: usize = 65_536;

/// Picks the bucket boundaries of a metric's exemplars: the same as its histogram's.
type Bounds = dyn Fn(&str) -> Option<Vec<f64>> + Send + Sync;

static ENABLED: AtomicBool = AtomicBool::new(false);
static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

struct Registry {
    bounds: Arc<Bounds>,
    /// By metric, then by label set.
    series: HashMap<&'static str, HashMap<Vec<Label>, Arc<Cells>>>,
    len: usize,
}

/// Turns exemplars on for the histograms registered from now on. `bounds` gives a metric's
/// bucket boundaries (the same as its histogram's, so that each exemplar lands on the bucket
/// that counted it); `None` keeps no exemplars for that metric. Calling it again replaces
/// `bounds` for series registered later.
///
/// ```
/// sightline_http::exemplars::enable(|metric| {
///     (metric == sightline_http::server::HTTP_SERVER_REQUEST_DURATION)
///         .then(|| vec![0.1, 0.5, 1.0])
/// });
/// ```
pub fn enable(bounds: impl Fn(&str) -> Option<Vec<f64>> + Send + Sync + 'static) {
    let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    match registry.as_mut() {
        Some(registry) => registry.bounds = Arc::new(bounds),
        None => {
            *registry = Some(Registry {
                bounds: Arc::new(bounds),
                series: HashMap::new(),
                len: 0,
            });
        }
    }
    ENABLED.store(true, Ordering::Release);
}

/// Whether [`enable`] has been called.
///
/// ```
/// let _ = sightline_http::exemplars::is_enabled();
/// ```
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// A sampled request's trace and span, its duration and when it ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exemplar {
    /// The request's trace.
    pub trace_id: TraceId,
    /// The request's span (the server or client span).
    pub span_id: SpanId,
    /// The recorded value, in the histogram's unit (seconds).
    pub value: f64,
    /// When it was recorded.
    pub timestamp: SystemTime,
}

/// The exemplars of one series: its metric, its labels as recorded, and per bucket that has
/// one, the bucket's upper bound (`f64::INFINITY` for the last) and its latest exemplar.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SeriesExemplars {
    /// The metric's name, as recorded (`http.server.request.duration`).
    pub metric: &'static str,
    /// The series' labels, as recorded (keys with dots, values unescaped).
    pub labels: Vec<(String, String)>,
    /// `(upper bound, exemplar)` of each bucket that has one, in increasing bound order.
    pub buckets: Vec<(f64, Exemplar)>,
}

/// Every series' exemplars, read without stopping the writers (a cell being written at that
/// instant is left out of this read).
///
/// ```
/// let series = sightline_http::exemplars::collect();
/// assert!(series.iter().all(|s| !s.buckets.is_empty()));
/// ```
pub fn collect() -> Vec<SeriesExemplars> {
    let registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(registry) = registry.as_ref() else {
        return Vec::new();
    };
    registry
        .series
        .iter()
        .flat_map(|(metric, series)| series.iter().map(move |s| (metric, s)))
        .filter_map(|(metric, (labels, cells))| {
            let buckets: Vec<_> = cells
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, slot)| {
                    let bound = cells.bounds.get(i).copied().unwrap_or(f64::INFINITY);
                    slot.read().map(|exemplar| (bound, exemplar))
                })
                .collect();
            (!buckets.is_empty()).then(|| SeriesExemplars {
                metric,
                labels: labels
                    .iter()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect(),
                buckets,
            })
        })
        .collect()
}

/// The cells of one series: a slot per bucket, the last for values past every bound.
struct Cells {
    bounds: Box<[f64]>,
    slots: Box<[Slot]>,
}

impl Cells {
    fn new(bounds: Vec<f64>) -> Self {
        Self {
            slots: (0..=bounds.len()).map(|_| Slot::default()).collect(),
            bounds: bounds.into_boxed_slice(),
        }
    }

    fn offer(&self, value: f64, span: &SpanContext) {
        // Buckets are `(previous, bound]`, as in the exposition.
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.slots[bucket].write(value, span);
    }
}

/// One exemplar, written under a sequence lock: a writer that finds the slot busy skips
/// (another request is putting an equally good exemplar there), and a reader retries or
/// gives up rather than waiting.
#[derive(Default)]
struct Slot {
    /// Even when stable, odd while written; 0 until the first write.
    sequence: AtomicU64,
    trace_high: AtomicU64,
    trace_low: AtomicU64,
    span: AtomicU64,
    value: AtomicU64,
    unix_nanos: AtomicU64,
}

impl Slot {
    fn write(&self, value: f64, span: &SpanContext) {
        let sequence = self.sequence.load(Ordering::Relaxed);
        if sequence & 1 == 1
            || self
                .sequence
                .compare_exchange(sequence, sequence + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let trace = u128::from_be_bytes(span.trace_id().to_bytes());
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.trace_high
            .store((trace >> 64) as u64, Ordering::Relaxed);
        self.trace_low.store(trace as u64, Ordering::Relaxed);
        self.span.store(
            u64::from_be_bytes(span.span_id().to_bytes()),
            Ordering::Relaxed,
        );
        self.value.store(value.to_bits(), Ordering::Relaxed);
        self.unix_nanos.store(nanos, Ordering::Relaxed);
        self.sequence.store(sequence + 2, Ordering::Release);
    }

    fn read(&self) -> Option<Exemplar> {
        for _ in 0..4 {
            let before = self.sequence.load(Ordering::Acquire);
            if before == 0 {
                return None;
            }
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let trace = u128::from(self.trace_high.load(Ordering::Relaxed)) << 64
                | u128::from(self.trace_low.load(Ordering::Relaxed));
            let span = self.span.load(Ordering::Relaxed);
            let value = f64::from_bits(self.value.load(Ordering::Relaxed));
            let nanos = self.unix_nanos.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.sequence.load(Ordering::Relaxed) == before {
                return Some(Exemplar {
                    trace_id: TraceId::from_bytes(trace.to_be_bytes()),
                    span_id: SpanId::from_bytes(span.to_be_bytes()),
                    value,
                    timestamp: UNIX_EPOCH + Duration::from_nanos(nanos),
                });
            }
        }
        None
    }
}

/// A duration histogram's handle with its series' exemplar cells (when exemplars are on).
pub(crate) struct DurationHistogram {
    histogram: Histogram,
    exemplars: Option<Arc<Cells>>,
}

impl DurationHistogram {
    /// The series `labels` of `metric`, registered once per process (see
    /// [`intern::histogram`](crate::core::intern)), with the series' cells (shared by every
    /// handle of the series) when exemplars are on.
    pub(crate) fn register(metric: &'static str, labels: Vec<Label>) -> Self {
        let exemplars = if is_enabled() {
            cells(metric, &labels)
        } else {
            None
        };
        Self {
            histogram: crate::core::intern::histogram(metric, labels),
            exemplars,
        }
    }

    /// Records `secs`, and makes the call an exemplar of its bucket when its span is sampled.
    pub(crate) fn record(&self, secs: f64, span: Option<&SpanContext>) {
        self.histogram.record(secs);
        if let (Some(cells), Some(span)) = (&self.exemplars, span)
            && span.is_sampled()
        {
            cells.offer(secs, span);
        }
    }
}

fn cells(metric: &'static str, labels: &[Label]) -> Option<Arc<Cells>> {
    let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    let registry = registry.as_mut()?;
    if let Some(cells) = registry.series.get(metric).and_then(|s| s.get(labels)) {
        return Some(Arc::clone(cells));
    }
    if registry.len >= MAX_SERIES {
        return None;
    }
    let bounds = (registry.bounds)(metric)?;
    let cells = Arc::new(Cells::new(bounds));
    registry
        .series
        .entry(metric)
        .or_default()
        .insert(labels.to_vec(), Arc::clone(&cells));
    registry.len += 1;
    Some(cells)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{TraceFlags, TraceState};

    fn span(trace: u128, span: u64, sampled: bool) -> SpanContext {
        SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            if sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            false,
            TraceState::NONE,
        )
    }

    #[test]
    fn each_bucket_keeps_its_latest_sampled_exemplar() {
        let cells = Cells::new(vec![0.1, 1.0]);
        cells.offer(0.05, &span(1, 1, true));
        cells.offer(0.1, &span(2, 2, true)); // on the bound: the first bucket
        cells.offer(0.5, &span(3, 3, true));
        cells.offer(30.0, &span(4, 4, true));
        let read: Vec<_> = cells.slots.iter().map(Slot::read).collect();
        let ids: Vec<_> = read
            .iter()
            .map(|e| e.map(|e| (e.trace_id, e.span_id, e.value)))
            .collect();
        assert_eq!(
            ids,
            vec![
                Some((TraceId::from(2), SpanId::from(2), 0.1)),
                Some((TraceId::from(3), SpanId::from(3), 0.5)),
                Some((TraceId::from(4), SpanId::from(4), 30.0)),
            ]
        );
        let age = SystemTime::now()
            .duration_since(read[0].expect("written").timestamp)
            .expect("in the past");
        assert!(age < Duration::from_secs(60));
    }

    #[test]
    fn an_empty_slot_reads_as_none_and_a_busy_one_is_skipped() {
        let slot = Slot::default();
        assert_eq!(slot.read(), None);
        slot.sequence.store(1, Ordering::Relaxed); // a writer in the middle
        slot.write(1.0, &span(9, 9, true));
        assert_eq!(slot.sequence.load(Ordering::Relaxed), 1, "skipped");
        assert_eq!(slot.read(), None);
    }

    #[test]
    fn unsampled_calls_never_become_exemplars() {
        let cells = Arc::new(Cells::new(vec![1.0]));
        let histogram = DurationHistogram {
            histogram: Histogram::noop(),
            exemplars: Some(Arc::clone(&cells)),
        };
        histogram.record(0.5, Some(&span(7, 7, false)));
        histogram.record(0.5, None);
        assert!(cells.slots.iter().all(|s| s.read().is_none()));
        histogram.record(0.5, Some(&span(7, 7, true)));
        assert_eq!(
            cells.slots[0].read().map(|e| e.trace_id),
            Some(TraceId::from(7))
        );
    }

    #[test]
    fn readers_never_see_a_torn_exemplar() {
        let slot = Arc::new(Slot::default());
        let writer = {
            let slot = Arc::clone(&slot);
            std::thread::spawn(move || {
                for i in 1..=20_000u64 {
                    // Every field carries `i`: a torn read would mix two values.
                    slot.write(
                        i as f64,
                        &span(u128::from(i) << 64 | u128::from(i), i, true),
                    );
                }
            })
        };
        let mut seen = 0;
        while !writer.is_finished() || seen == 0 {
            if let Some(e) = slot.read() {
                let i = e.value as u64;
                assert_eq!(e.span_id, SpanId::from(i));
                assert_eq!(
                    e.trace_id,
                    TraceId::from(u128::from(i) << 64 | u128::from(i))
                );
                seen += 1;
            }
        }
        writer.join().expect("writer");
        assert!(seen > 0);
    }
}
