//! The `metrics` recorder that aggregates for OTLP: counters and gauges in atomics, histograms
//! in explicit buckets, every handle lock-free once registered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use metrics::{
    Counter, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, SharedString, Unit,
};
use metrics_util::registry::{Registry, Storage};

use super::snapshot::{Data, HistogramPoint, Kind, Metric, NumberPoint, Snapshot, Value};

/// The OpenTelemetry SDK's default explicit bucket boundaries, for histograms given none.
pub const DEFAULT_BUCKETS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

/// A [`metrics::Recorder`] that aggregates what it records the way OpenTelemetry's metrics
/// SDK does, for [`MetricExporter`](crate::MetricExporter) to push over OTLP.
///
/// - a counter is a monotonic cumulative sum of integers;
/// - a gauge only ever incremented and decremented is an up-down counter (a non-monotonic
///   sum: `http.server.active_requests`, say); a gauge that was `set` is a gauge;
/// - a histogram counts its values in explicit buckets (per metric name, or
///   [`DEFAULT_BUCKETS`]) and keeps their sum, minimum and maximum.
///
/// Units from `describe_*` are written in UCUM (`Unit::Seconds` is `s`); [`Self::unit`]
/// gives a metric a unit the facade cannot name, such as `{request}`.
///
/// Recording costs a few atomic operations; only registration takes a (sharded) lock, and
/// handles kept by the caller skip it.
///
/// ```
/// use sightline_otlp::MetricRecorder;
///
/// let recorder = MetricRecorder::new()
///     .buckets("http.server.request.duration", &[0.005, 0.01, 0.1, 1.0])
///     .unit("http.server.active_requests", "{request}");
/// let reader = recorder.reader();
/// metrics::with_local_recorder(&recorder, || {
///     metrics::histogram!("http.server.request.duration", "http.route" => "/users/{id}")
///         .record(0.02);
/// });
/// assert_eq!(reader.metric_names(), ["http.server.request.duration"]);
/// ```
#[derive(Debug, Clone)]
pub struct MetricRecorder {
    shared: Arc<Shared>,
}

/// A handle on a [`MetricRecorder`]'s data: what an exporter collects from. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MetricReader {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    registry: Registry<Key, Cells>,
    /// By metric name; read at registration-free times only (describe, collect).
    descriptions: Mutex<HashMap<String, Description>>,
    start: SystemTime,
}

#[derive(Debug, Default, Clone)]
struct Description {
    /// From `describe_*`.
    unit: Option<Unit>,
    /// From [`MetricRecorder::unit`]; wins over `unit`.
    ucum: Option<String>,
    text: String,
}

/// Creates each metric's cell: a histogram's buckets come from its name. Read once per
/// registration, never when recording.
#[derive(Debug)]
struct Cells {
    buckets: Mutex<HashMap<String, Arc<[f64]>>>,
    /// By name prefix; the longest matching prefix wins, after an exact name.
    prefix_buckets: Mutex<Vec<(String, Arc<[f64]>)>>,
    default_buckets: Arc<[f64]>,
}

impl Storage<Key> for Cells {
    type Counter = Arc<AtomicU64>;
    type Gauge = Arc<GaugeCell>;
    type Histogram = Arc<BucketCell>;

    fn counter(&self, _: &Key) -> Self::Counter {
        Arc::new(AtomicU64::new(0))
    }

    fn gauge(&self, _: &Key) -> Self::Gauge {
        Arc::new(GaugeCell::default())
    }

    fn histogram(&self, key: &Key) -> Self::Histogram {
        let name = key.name();
        if let Some(bounds) = lock(&self.buckets).get(name) {
            return Arc::new(BucketCell::new(Arc::clone(bounds)));
        }
        let prefixes = lock(&self.prefix_buckets);
        let bounds = prefixes
            .iter()
            .filter(|(prefix, _)| name.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(&self.default_buckets, |(_, bounds)| bounds);
        Arc::new(BucketCell::new(Arc::clone(bounds)))
    }
}

/// A gauge: an `f64` in an atomic, and whether it was ever `set` (then it is an OTLP gauge;
/// otherwise an up-down counter).
#[derive(Debug, Default)]
pub(crate) struct GaugeCell {
    bits: AtomicU64,
    set: AtomicBool,
}

impl GaugeCell {
    fn add(&self, delta: f64) {
        let _ = self
            .bits
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + delta).to_bits())
            });
    }

    fn value(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Acquire))
    }
}

impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        self.add(value);
    }

    fn decrement(&self, value: f64) {
        self.add(-value);
    }

    fn set(&self, value: f64) {
        self.set.store(true, Ordering::Relaxed);
        self.bits.store(value.to_bits(), Ordering::Release);
    }
}

/// An explicit-bucket histogram: one counter per bucket, the sum, the minimum and maximum.
#[derive(Debug)]
pub(crate) struct BucketCell {
    bounds: Arc<[f64]>,
    /// `bounds.len() + 1` buckets: bucket `i` holds values in `(bounds[i-1], bounds[i]]`.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
}

impl BucketCell {
    fn new(bounds: Arc<[f64]>) -> Self {
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self {
            bounds,
            counts,
            sum: AtomicU64::new(0.0f64.to_bits()),
            min: AtomicU64::new(f64::INFINITY.to_bits()),
            max: AtomicU64::new(f64::NEG_INFINITY.to_bits()),
        }
    }

    /// The bucket counts, their total, the sum, and the minimum and maximum (none while empty).
    fn read(&self) -> (Vec<u64>, u64, f64, Option<(f64, f64)>) {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .collect();
        // The count is the buckets' total, so the two always agree (OTLP requires it) even
        // while values are being recorded.
        let count = counts.iter().sum();
        let sum = f64::from_bits(self.sum.load(Ordering::Acquire));
        let extremes = (count > 0).then(|| {
            (
                f64::from_bits(self.min.load(Ordering::Acquire)),
                f64::from_bits(self.max.load(Ordering::Acquire)),
            )
        });
        (counts, count, sum, extremes)
    }
}

/// Replaces the `f64` in `cell` with `value` when `better(value, current)`.
fn replace_if(cell: &AtomicU64, value: f64, better: impl Fn(f64, f64) -> bool) {
    let mut current = cell.load(Ordering::Relaxed);
    // Almost every value is neither a new minimum nor a new maximum: one load, no write.
    while better(value, f64::from_bits(current)) {
        match cell.compare_exchange_weak(
            current,
            value.to_bits(),
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

impl HistogramFn for BucketCell {
    fn record(&self, value: f64) {
        if value.is_nan() {
            return;
        }
        // Bounds are few (about 15): a linear scan beats a binary search at this size.
        let bucket = self
            .bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(1, Ordering::AcqRel);
        let _ = self
            .sum
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
        replace_if(&self.min, value, |new, old| new < old);
        replace_if(&self.max, value, |new, old| new > old);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Default for MetricRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricRecorder {
    /// A recorder whose histograms use [`DEFAULT_BUCKETS`] until [`Self::buckets`] says
    /// otherwise.
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                registry: Registry::new(Cells {
                    buckets: Mutex::new(HashMap::new()),
                    prefix_buckets: Mutex::new(Vec::new()),
                    default_buckets: Arc::from(&DEFAULT_BUCKETS[..]),
                }),
                descriptions: Mutex::new(HashMap::new()),
                start: SystemTime::now(),
            }),
        }
    }

    /// The explicit bucket boundaries of the histogram `name`, in increasing order (values
    /// that are not finite are left out, and the rest sorted). Histograms registered
    /// before this call keep the boundaries they had.
    pub fn buckets(self, name: &str, bounds: &[f64]) -> Self {
        let mut bounds: Vec<f64> = bounds.iter().copied().filter(|b| b.is_finite()).collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        lock(&self.shared.registry.storage().buckets).insert(name.to_owned(), Arc::from(bounds));
        self
    }

    /// The explicit bucket boundaries of every histogram whose name starts with `prefix`
    /// (the longest matching prefix wins; a [name](Self::buckets) wins over any prefix).
    pub fn buckets_for_prefix(self, prefix: &str, bounds: &[f64]) -> Self {
        let mut bounds: Vec<f64> = bounds.iter().copied().filter(|b| b.is_finite()).collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        lock(&self.shared.registry.storage().prefix_buckets)
            .push((prefix.to_owned(), Arc::from(bounds)));
        self
    }

    /// The UCUM unit of the metric `name`, over what `describe_*` says: for units the
    /// facade has no name for, such as `{request}`.
    pub fn unit(self, name: &str, unit: &str) -> Self {
        lock(&self.shared.descriptions)
            .entry(name.to_owned())
            .or_default()
            .ucum = Some(unit.to_owned());
        self
    }

    /// A handle for collecting what this recorder holds.
    pub fn reader(&self) -> MetricReader {
        MetricReader {
            shared: Arc::clone(&self.shared),
        }
    }

    fn describe(&self, key: &KeyName, unit: Option<Unit>, text: SharedString) {
        let mut descriptions = lock(&self.shared.descriptions);
        let entry = descriptions.entry(key.as_str().to_owned()).or_default();
        if unit.is_some() {
            entry.unit = unit;
        }
        entry.text = text.into_owned();
    }
}

impl metrics::Recorder for MetricRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(&key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(&key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(&key, unit, description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.shared
            .registry
            .get_or_create_counter(key, |cell| Counter::from_arc(Arc::clone(cell)))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.shared
            .registry
            .get_or_create_gauge(key, |cell| Gauge::from_arc(Arc::clone(cell)))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.shared
            .registry
            .get_or_create_histogram(key, |cell| Histogram::from_arc(Arc::clone(cell)))
    }
}

/// The UCUM form of a facade unit, as OpenTelemetry writes units.
fn ucum(unit: Unit) -> &'static str {
    match unit {
        Unit::Count => "1",
        Unit::Percent => "%",
        Unit::Seconds => "s",
        Unit::Milliseconds => "ms",
        Unit::Microseconds => "us",
        Unit::Nanoseconds => "ns",
        Unit::Tebibytes => "TiBy",
        Unit::Gibibytes => "GiBy",
        Unit::Mebibytes => "MiBy",
        Unit::Kibibytes => "KiBy",
        Unit::Bytes => "By",
        Unit::TerabitsPerSecond => "Tbit/s",
        Unit::GigabitsPerSecond => "Gbit/s",
        Unit::MegabitsPerSecond => "Mbit/s",
        Unit::KilobitsPerSecond => "kbit/s",
        Unit::BitsPerSecond => "bit/s",
        Unit::CountPerSecond => "1/s",
    }
}

fn labels(key: &Key) -> Vec<(String, String)> {
    key.labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect()
}

impl MetricReader {
    /// When the recorder was made: the start of every cumulative point.
    pub fn start(&self) -> SystemTime {
        self.shared.start
    }

    /// The names of the metrics recorded so far, sorted, each once.
    pub fn metric_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        let registry = &self.shared.registry;
        registry.visit_counters(|key, _| names.push(key.name().to_owned()));
        registry.visit_gauges(|key, _| names.push(key.name().to_owned()));
        registry.visit_histograms(|key, _| names.push(key.name().to_owned()));
        names.sort();
        names.dedup();
        names
    }

    /// Everything recorded, as cumulative values since the recorder was made, at `now`.
    pub(crate) fn collect(&self, now: SystemTime) -> Snapshot {
        let registry = &self.shared.registry;
        let mut counters: Vec<(Key, u64)> = Vec::new();
        registry
            .visit_counters(|key, cell| counters.push((key.clone(), cell.load(Ordering::Acquire))));
        let mut gauges: Vec<(Key, f64, bool)> = Vec::new();
        registry.visit_gauges(|key, cell| {
            gauges.push((key.clone(), cell.value(), cell.set.load(Ordering::Relaxed)));
        });
        let mut histograms: Vec<(Key, Arc<BucketCell>)> = Vec::new();
        registry.visit_histograms(|key, cell| histograms.push((key.clone(), Arc::clone(cell))));

        let start = self.shared.start;
        let mut builder = Builder::default();
        for (key, value) in counters {
            let point = NumberPoint {
                attributes: labels(&key),
                start,
                value: Value::Int(i64::try_from(value).unwrap_or(i64::MAX)),
            };
            builder.metric(key.name(), Kind::Counter).push_number(point);
        }
        for (key, value, was_set) in gauges {
            let point = NumberPoint {
                attributes: labels(&key),
                start,
                value: Value::Double(value),
            };
            let kind = if was_set {
                Kind::Gauge
            } else {
                Kind::UpDownCounter
            };
            builder.metric(key.name(), kind).push_number(point);
        }
        for (key, cell) in histograms {
            let (bucket_counts, count, sum, extremes) = cell.read();
            let point = HistogramPoint {
                attributes: labels(&key),
                start,
                count,
                sum,
                bucket_counts,
                bounds: Arc::clone(&cell.bounds),
                extremes,
            };
            builder
                .metric(key.name(), Kind::Histogram)
                .push_histogram(point);
        }
        let mut metrics = builder.metrics;

        let descriptions = lock(&self.shared.descriptions);
        for metric in &mut metrics {
            if let Some(description) = descriptions.get(&metric.name) {
                metric.description.clone_from(&description.text);
                metric.unit = match (&description.ucum, description.unit) {
                    (Some(ucum), _) => ucum.clone(),
                    (None, Some(unit)) => ucum(unit).to_owned(),
                    (None, None) => String::new(),
                };
            }
            metric.sort_points();
        }
        drop(descriptions);
        metrics.sort_by(|a, b| a.name.cmp(&b.name));
        Snapshot { time: now, metrics }
    }
}

/// The metrics of a snapshot under construction, found by name and kind.
#[derive(Default)]
struct Builder {
    metrics: Vec<Metric>,
    index: HashMap<(String, Kind), usize>,
}

impl Builder {
    /// The metric `name` of `kind`, created if needed (a name recorded as two kinds becomes
    /// two metrics).
    fn metric(&mut self, name: &str, kind: Kind) -> &mut Data {
        let metrics = &mut self.metrics;
        let index = *self
            .index
            .entry((name.to_owned(), kind))
            .or_insert_with(|| {
                metrics.push(Metric {
                    name: name.to_owned(),
                    description: String::new(),
                    unit: String::new(),
                    data: kind.empty(),
                });
                metrics.len() - 1
            });
        &mut metrics[index].data
    }
}
