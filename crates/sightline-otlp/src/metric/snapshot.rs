//! What one collection holds: metrics by name, their points, and the conversion to delta
//! temporality.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

/// The aggregation temporality an exporter asks for
/// (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`).
///
/// Up-down counters and gauges are cumulative under every preference, as the specification
/// says; the preference decides counters and histograms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Temporality {
    /// Every point is the total since the process started (what Prometheus expects).
    #[default]
    Cumulative,
    /// Counters and histograms report what changed since the previous export.
    Delta,
    /// The specification's `lowmemory`: for synchronous instruments, which are all that the
    /// `metrics` facade has, the same as [`Temporality::Delta`].
    LowMemory,
}

impl Temporality {
    /// The value of `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` (case-insensitive),
    /// or `None` for anything else.
    ///
    /// ```
    /// use sightline_otlp::Temporality;
    ///
    /// assert_eq!(Temporality::parse("Delta"), Some(Temporality::Delta));
    /// assert_eq!(Temporality::parse("weekly"), None);
    /// ```
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "cumulative" => Some(Self::Cumulative),
            "delta" => Some(Self::Delta),
            "lowmemory" => Some(Self::LowMemory),
            _ => None,
        }
    }
}

/// Which instrument a metric came from, as OTLP tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Counter,
    UpDownCounter,
    Gauge,
    Histogram,
}

impl Kind {
    pub(crate) fn empty(self) -> Data {
        match self {
            Self::Counter => Data::Sum {
                monotonic: true,
                cumulative: true,
                points: Vec::new(),
            },
            Self::UpDownCounter => Data::Sum {
                monotonic: false,
                cumulative: true,
                points: Vec::new(),
            },
            Self::Gauge => Data::Gauge { points: Vec::new() },
            Self::Histogram => Data::Histogram {
                cumulative: true,
                points: Vec::new(),
            },
        }
    }
}

/// Everything one collection found, at `time`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Snapshot {
    pub(crate) time: SystemTime,
    pub(crate) metrics: Vec<Metric>,
}

impl Snapshot {
    /// The number of data points, what a failed export loses.
    pub(crate) fn points(&self) -> usize {
        self.metrics.iter().map(|m| m.data.len()).sum()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Metric {
    pub(crate) name: String,
    pub(crate) description: String,
    /// UCUM, or empty.
    pub(crate) unit: String,
    pub(crate) data: Data,
}

impl Metric {
    /// Points in label order, so exports are stable from one collection to the next.
    pub(crate) fn sort_points(&mut self) {
        match &mut self.data {
            Data::Sum { points, .. } | Data::Gauge { points } => {
                points.sort_by(|a, b| a.attributes.cmp(&b.attributes));
            }
            Data::Histogram { points, .. } => {
                points.sort_by(|a, b| a.attributes.cmp(&b.attributes));
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Data {
    Sum {
        monotonic: bool,
        cumulative: bool,
        points: Vec<NumberPoint>,
    },
    Gauge {
        points: Vec<NumberPoint>,
    },
    Histogram {
        cumulative: bool,
        points: Vec<HistogramPoint>,
    },
}

impl Data {
    pub(crate) fn push_number(&mut self, point: NumberPoint) {
        match self {
            Self::Sum { points, .. } | Self::Gauge { points } => points.push(point),
            Self::Histogram { .. } => {}
        }
    }

    pub(crate) fn push_histogram(&mut self, point: HistogramPoint) {
        if let Self::Histogram { points, .. } = self {
            points.push(point);
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Sum { points, .. } | Self::Gauge { points } => points.len(),
            Self::Histogram { points, .. } => points.len(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    Int(i64),
    Double(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NumberPoint {
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) start: SystemTime,
    pub(crate) value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistogramPoint {
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) start: SystemTime,
    pub(crate) count: u64,
    pub(crate) sum: f64,
    pub(crate) bucket_counts: Vec<u64>,
    pub(crate) bounds: Arc<[f64]>,
    /// Minimum and maximum; none when empty or not known (delta points).
    pub(crate) extremes: Option<(f64, f64)>,
}

/// What the previous export sent of one counter or histogram series.
#[derive(Debug)]
enum Previous {
    Counter(i64),
    Histogram {
        count: u64,
        sum: f64,
        bucket_counts: Vec<u64>,
    },
}

type SeriesKey = (String, bool, Vec<(String, String)>);

/// Turns cumulative snapshots into delta ones by remembering what was last exported.
#[derive(Debug, Default)]
pub(crate) struct DeltaState {
    previous: HashMap<SeriesKey, Previous>,
    last_export: Option<SystemTime>,
}

impl DeltaState {
    /// `snapshot` with counters and histograms made relative to the previous call. The first
    /// call reports everything since the recorder started.
    pub(crate) fn relative(&mut self, mut snapshot: Snapshot) -> Snapshot {
        let since = self.last_export;
        for metric in &mut snapshot.metrics {
            match &mut metric.data {
                Data::Sum {
                    monotonic: true,
                    cumulative,
                    points,
                } => {
                    *cumulative = false;
                    for point in points {
                        let Value::Int(total) = point.value else {
                            continue;
                        };
                        let key = (metric.name.clone(), false, point.attributes.clone());
                        let before = match self.previous.insert(key, Previous::Counter(total)) {
                            Some(Previous::Counter(before)) if before <= total => before,
                            _ => 0,
                        };
                        point.value = Value::Int(total - before);
                        if let Some(since) = since {
                            point.start = since;
                        }
                    }
                }
                Data::Histogram { cumulative, points } => {
                    *cumulative = false;
                    for point in points {
                        let key = (metric.name.clone(), true, point.attributes.clone());
                        let now = Previous::Histogram {
                            count: point.count,
                            sum: point.sum,
                            bucket_counts: point.bucket_counts.clone(),
                        };
                        if let Some(Previous::Histogram {
                            count,
                            sum,
                            bucket_counts,
                        }) = self.previous.insert(key, now)
                            && bucket_counts.len() == point.bucket_counts.len()
                        {
                            point.count = point.count.saturating_sub(count);
                            point.sum -= sum;
                            for (bucket, before) in
                                point.bucket_counts.iter_mut().zip(bucket_counts)
                            {
                                *bucket = bucket.saturating_sub(before);
                            }
                            // The extremes of the interval alone are not known.
                            point.extremes = None;
                        }
                        if let Some(since) = since {
                            point.start = since;
                        }
                    }
                }
                // Up-down counters and gauges stay cumulative.
                Data::Sum { .. } | Data::Gauge { .. } => {}
            }
        }
        self.last_export = Some(snapshot.time);
        snapshot
    }
}
