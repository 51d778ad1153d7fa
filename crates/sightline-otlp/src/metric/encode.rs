//! `ExportMetricsServiceRequest` in the protobuf wire format.
//!
//! Unlike the span encoder, this one writes each nested message into a scratch buffer and
//! then copies it behind its length: a metrics export happens once per interval, off every
//! request path, so the simpler shape wins over sizing first. Fields are written in tag
//! order, as prost writes them, so the bytes equal `opentelemetry-proto`'s (tested below).

use opentelemetry::InstrumentationScope;

use super::snapshot::{Data, HistogramPoint, Metric, NumberPoint, Value};
use crate::wire::{
    FIXED64, LEN, Scalar, nanos, put_bytes, put_key, put_opt_bytes, put_opt_fixed64,
    put_opt_varint, put_scalar, put_scope, put_varint,
};

/// `AggregationTemporality`: DELTA = 1, CUMULATIVE = 2.
fn temporality(cumulative: bool) -> u64 {
    if cumulative { 2 } else { 1 }
}

/// Writes field `field` as a message whose content `write` produces.
fn put_message(buf: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    write(&mut inner);
    put_bytes(buf, field, &inner);
}

fn put_double(buf: &mut Vec<u8>, field: u32, value: f64) {
    put_key(buf, field, FIXED64);
    buf.extend_from_slice(&value.to_bits().to_le_bytes());
}

/// A `KeyValue` with a string value.
fn put_label(buf: &mut Vec<u8>, field: u32, key: &str, value: &str) {
    put_message(buf, field, |kv| {
        put_opt_bytes(kv, 1, key.as_bytes());
        put_message(kv, 2, |any| put_scalar(any, Scalar::Str(value)));
    });
}

/// Encodes an `ExportMetricsServiceRequest` with one `ResourceMetrics` (the encoded
/// `resource` message) and one `ScopeMetrics` holding `metrics`.
pub(crate) fn encode_request(
    resource: &[u8],
    resource_schema_url: &str,
    scope: &InstrumentationScope,
    time: std::time::SystemTime,
    metrics: &[Metric],
    buf: &mut Vec<u8>,
) {
    let time = nanos(time);
    // ResourceMetrics: resource = 1, scope_metrics = 2, schema_url = 3.
    put_message(buf, 1, |resource_metrics| {
        put_bytes(resource_metrics, 1, resource);
        // ScopeMetrics: scope = 1, metrics = 2, schema_url = 3.
        put_message(resource_metrics, 2, |scope_metrics| {
            put_message(scope_metrics, 1, |s| put_scope(s, scope));
            for metric in metrics {
                put_message(scope_metrics, 2, |m| put_metric(m, metric, time));
            }
            put_opt_bytes(
                scope_metrics,
                3,
                scope.schema_url().unwrap_or_default().as_bytes(),
            );
        });
        put_opt_bytes(resource_metrics, 3, resource_schema_url.as_bytes());
    });
}

// Metric: name = 1, description = 2, unit = 3, gauge = 5, sum = 7, histogram = 9.
fn put_metric(buf: &mut Vec<u8>, metric: &Metric, time: u64) {
    put_opt_bytes(buf, 1, metric.name.as_bytes());
    put_opt_bytes(buf, 2, metric.description.as_bytes());
    put_opt_bytes(buf, 3, metric.unit.as_bytes());
    match &metric.data {
        // Gauge: data_points = 1.
        Data::Gauge { points } => put_message(buf, 5, |gauge| {
            for point in points {
                put_message(gauge, 1, |p| put_number_point(p, point, time));
            }
        }),
        // Sum: data_points = 1, aggregation_temporality = 2, is_monotonic = 3.
        Data::Sum {
            monotonic,
            cumulative,
            points,
        } => put_message(buf, 7, |sum| {
            for point in points {
                put_message(sum, 1, |p| put_number_point(p, point, time));
            }
            put_opt_varint(sum, 2, temporality(*cumulative));
            put_opt_varint(sum, 3, u64::from(*monotonic));
        }),
        // Histogram: data_points = 1, aggregation_temporality = 2.
        Data::Histogram { cumulative, points } => put_message(buf, 9, |histogram| {
            for point in points {
                put_message(histogram, 1, |p| put_histogram_point(p, point, time));
            }
            put_opt_varint(histogram, 2, temporality(*cumulative));
        }),
    }
}

// NumberDataPoint: start_time_unix_nano = 2, time_unix_nano = 3, as_double = 4,
// as_int = 6 (sfixed64), attributes = 7.
fn put_number_point(buf: &mut Vec<u8>, point: &NumberPoint, time: u64) {
    put_opt_fixed64(buf, 2, nanos(point.start));
    put_opt_fixed64(buf, 3, time);
    match point.value {
        Value::Double(value) => put_double(buf, 4, value),
        Value::Int(value) => {
            put_key(buf, 6, FIXED64);
            buf.extend_from_slice(&value.to_le_bytes());
        }
    }
    for (key, value) in &point.attributes {
        put_label(buf, 7, key, value);
    }
}

// HistogramDataPoint: start_time_unix_nano = 2, time_unix_nano = 3, count = 4, sum = 5,
// bucket_counts = 6 (packed fixed64), explicit_bounds = 7 (packed double), attributes = 9,
// min = 11, max = 12.
fn put_histogram_point(buf: &mut Vec<u8>, point: &HistogramPoint, time: u64) {
    put_opt_fixed64(buf, 2, nanos(point.start));
    put_opt_fixed64(buf, 3, time);
    put_opt_fixed64(buf, 4, point.count);
    put_double(buf, 5, point.sum);
    if !point.bucket_counts.is_empty() {
        put_key(buf, 6, LEN);
        put_varint(buf, 8 * point.bucket_counts.len() as u64);
        for count in &point.bucket_counts {
            buf.extend_from_slice(&count.to_le_bytes());
        }
    }
    if !point.bounds.is_empty() {
        put_key(buf, 7, LEN);
        put_varint(buf, 8 * point.bounds.len() as u64);
        for bound in point.bounds.iter() {
            buf.extend_from_slice(&bound.to_bits().to_le_bytes());
        }
    }
    for (key, value) in &point.attributes {
        put_label(buf, 9, key, value);
    }
    if let Some((min, max)) = point.extremes {
        put_double(buf, 11, min);
        put_double(buf, 12, max);
    }
}
