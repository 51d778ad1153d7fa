//! RED metrics of the server middleware, through the `metrics` facade.
//!
//! Handles are cached: a request on a known route, method and status records into a
//! histogram handle found by a lock-free probe of a small per-route table, without building a
//! `metrics::Key` (which allocates its label list) or touching the recorder's registry.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use metrics::{Gauge, Histogram, Label, SharedString, Unit};
use opentelemetry_semantic_conventions::{attribute, metric};

use crate::semconv::METHODS;

/// Slots in a per-route histogram table; a route seeing more (method, status) combinations
/// than this falls back to an uncached (allocating) registration for the extra ones.
const SLOTS: usize = 16;

/// Bucket boundaries, in seconds, that the HTTP and RPC semantic conventions advise for
/// duration histograms.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// `http.server.request.duration`: exposed to Prometheus as
/// `http_server_request_duration_seconds`.
pub const HTTP_SERVER_REQUEST_DURATION: &str = metric::HTTP_SERVER_REQUEST_DURATION;

/// `http.server.active_requests`: exposed to Prometheus as `http_server_active_requests`.
pub const HTTP_SERVER_ACTIVE_REQUESTS: &str = metric::HTTP_SERVER_ACTIVE_REQUESTS;

/// Describes the server metrics (unit and help text) to the installed recorder.
///
/// Call once after installing a recorder; the Prometheus exporter uses the unit to name the
/// histogram `http_server_request_duration_seconds`.
pub fn describe_server_metrics() {
    metrics::describe_histogram!(
        HTTP_SERVER_REQUEST_DURATION,
        Unit::Seconds,
        "Duration of HTTP server requests, from the request head to the end of the response body."
    );
    metrics::describe_gauge!(
        HTTP_SERVER_ACTIVE_REQUESTS,
        Unit::Count,
        "Number of HTTP server requests in flight."
    );
}

/// A small lock-free map from a non-zero `u32` key to a lazily made handle.
pub(crate) struct HandleCache<T> {
    keys: [AtomicU32; SLOTS],
    values: [OnceLock<T>; SLOTS],
}

impl<T> Default for HandleCache<T> {
    fn default() -> Self {
        Self {
            keys: Default::default(),
            values: Default::default(),
        }
    }
}

impl<T> HandleCache<T> {
    /// The handle for `key` (non-zero), made with `make` the first time; `None` when full.
    pub(crate) fn get_or_insert_with(&self, key: u32, make: impl FnOnce() -> T) -> Option<&T> {
        debug_assert_ne!(key, 0);
        let start = (key as usize).wrapping_mul(0x9e37_79b9) % SLOTS;
        for probe in 0..SLOTS {
            let slot = (start + probe) % SLOTS;
            let current = self.keys[slot].load(Ordering::Acquire);
            let claimed = current == key
                || (current == 0
                    && match self.keys[slot].compare_exchange(
                        0,
                        key,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => true,
                        Err(other) => other == key,
                    });
            if claimed {
                return Some(self.values[slot].get_or_init(make));
            }
        }
        None
    }
}

/// Why a request ended, as far as the metrics care.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ErrorClass {
    /// No error, or an error told by a 5xx status (the status is the error type).
    None = 0,
    /// The inner service or the response body failed.
    Other = 1,
    /// The client went away before the response ended.
    Cancelled = 2,
}

/// The labels of one finished request.
pub(crate) struct RequestLabels<'a> {
    pub(crate) method: usize,
    pub(crate) route: &'a str,
    pub(crate) route_shared: Option<&'a std::sync::Arc<str>>,
    pub(crate) scheme: &'static str,
    pub(crate) status: Option<&'static str>,
    pub(crate) status_code: u16,
    pub(crate) error_type: Option<&'static str>,
    pub(crate) error_class: ErrorClass,
}

impl RequestLabels<'_> {
    fn cache_key(&self) -> u32 {
        1 + (self.method as u32
            | u32::from(self.scheme == "https") << 4
            | (self.error_class as u32) << 5
            | u32::from(self.status_code) << 8)
    }

    fn to_labels(&self) -> Vec<Label> {
        let route: SharedString = match self.route_shared {
            Some(shared) => SharedString::from(std::sync::Arc::clone(shared)),
            None => SharedString::from_owned(self.route.to_owned()),
        };
        let mut labels = Vec::with_capacity(5);
        labels.push(Label::from_static_parts(
            attribute::HTTP_REQUEST_METHOD,
            METHODS[self.method],
        ));
        labels.push(Label::new(attribute::HTTP_ROUTE, route));
        if let Some(status) = self.status {
            labels.push(Label::from_static_parts(
                attribute::HTTP_RESPONSE_STATUS_CODE,
                status,
            ));
        }
        labels.push(Label::from_static_parts(attribute::URL_SCHEME, self.scheme));
        if let Some(error_type) = self.error_type {
            labels.push(Label::from_static_parts(attribute::ERROR_TYPE, error_type));
        }
        labels
    }

    fn register(&self) -> Histogram {
        metrics::histogram!(HTTP_SERVER_REQUEST_DURATION, self.to_labels())
    }
}

/// Records one finished request's duration, through `cache` when it has room.
pub(crate) fn record_duration(
    cache: &HandleCache<Histogram>,
    labels: &RequestLabels<'_>,
    secs: f64,
) {
    match cache.get_or_insert_with(labels.cache_key(), || labels.register()) {
        Some(histogram) => histogram.record(secs),
        None => labels.register().record(secs),
    }
}

/// The in-flight gauges, one per (method, scheme).
#[derive(Default)]
pub(crate) struct ActiveRequests {
    gauges: [[OnceLock<Gauge>; 2]; METHODS.len()],
}

impl ActiveRequests {
    pub(crate) fn gauge(&self, method: usize, scheme: &'static str) -> &Gauge {
        let https = usize::from(scheme == "https");
        self.gauges[method][https].get_or_init(|| {
            metrics::gauge!(
                HTTP_SERVER_ACTIVE_REQUESTS,
                attribute::HTTP_REQUEST_METHOD => METHODS[method],
                attribute::URL_SCHEME => scheme,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_returns_same_handle_and_reports_full() {
        let cache: HandleCache<u32> = HandleCache::default();
        for key in 1..=SLOTS as u32 {
            assert_eq!(
                cache.get_or_insert_with(key, || key * 10),
                Some(&(key * 10))
            );
        }
        for key in 1..=SLOTS as u32 {
            assert_eq!(cache.get_or_insert_with(key, || 0), Some(&(key * 10)));
        }
        assert_eq!(cache.get_or_insert_with(SLOTS as u32 + 1, || 0), None);
    }
}
