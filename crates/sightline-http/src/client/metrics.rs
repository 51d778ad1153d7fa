//! `http.client.request.duration` through the `metrics` facade.
//!
//! Handles are cached lock-free per (method, status, error class) in a small table per layer;
//! an entry also remembers the server address and port it was made for, so a layer calling
//! one upstream (the common case) records without building a `metrics::Key`. Calls to other
//! upstreams, or past the table's capacity, take their handle from the process-wide registry
//! (building a `metrics::Key`, which allocates).

use std::sync::Arc;

use http::StatusCode;
use metrics::{Label, SharedString, Unit};
use opentelemetry::trace::SpanContext;
use opentelemetry_semantic_conventions::{attribute, metric};

use crate::core::classify::HttpError;
use crate::core::intern::HandleCache;
use crate::core::semconv::{self, METHODS};
use crate::exemplars::DurationHistogram;

/// `http.client.request.duration`: exposed to Prometheus as
/// `http_client_request_duration_seconds`.
///
/// ```
/// assert_eq!(sightline_http::client::HTTP_CLIENT_REQUEST_DURATION, "http.client.request.duration");
/// ```
pub const HTTP_CLIENT_REQUEST_DURATION: &str = metric::HTTP_CLIENT_REQUEST_DURATION;

/// Describes the client metrics (unit and help text) to the installed recorder.
///
/// Call once after installing a recorder; use
/// [`DURATION_BUCKETS`](crate::server::DURATION_BUCKETS) as the histogram's buckets.
///
/// ```
/// sightline_http::client::describe_client_metrics();
/// ```
pub fn describe_client_metrics() {
    metrics::describe_histogram!(
        HTTP_CLIENT_REQUEST_DURATION,
        Unit::Seconds,
        "Duration of HTTP client requests, from sending the request to the end of the response body."
    );
}

/// The labels of one finished call.
pub(crate) struct CallLabels<'a> {
    pub(crate) method: usize,
    pub(crate) server_address: Option<&'a Arc<str>>,
    pub(crate) server_port: u16,
    pub(crate) status: Option<StatusCode>,
    pub(crate) error: HttpError,
}

impl CallLabels<'_> {
    fn cache_key(&self) -> u32 {
        1 + (self.method as u32
            | self.error.class() << 4
            | u32::from(self.status.map_or(0, |s| s.as_u16())) << 8)
    }

    fn register(&self, budget: &crate::core::budget::SeriesBudget) -> DurationHistogram {
        let mut labels = Vec::with_capacity(5);
        labels.push(Label::from_static_parts(
            attribute::HTTP_REQUEST_METHOD,
            METHODS[self.method],
        ));
        if let Some(address) = self.server_address {
            labels.push(Label::new(
                attribute::SERVER_ADDRESS,
                SharedString::from(Arc::clone(address)),
            ));
        }
        let mut port = itoa::Buffer::new();
        labels.push(Label::new(
            attribute::SERVER_PORT,
            port.format(self.server_port).to_owned(),
        ));
        if let Some(status) = self.status {
            labels.push(Label::from_static_parts(
                attribute::HTTP_RESPONSE_STATUS_CODE,
                semconv::status_str(status),
            ));
        }
        if let Some(error_type) = self.error.as_str() {
            labels.push(Label::from_static_parts(attribute::ERROR_TYPE, error_type));
        }
        // Every upstream host is a series: the budget bounds a client of many hosts.
        budget.histogram(labels)
    }
}

/// A cached histogram handle and the upstream it was made for.
pub(crate) struct Entry {
    server_address: Option<Arc<str>>,
    server_port: u16,
    histogram: DurationHistogram,
}

/// The per-layer handle cache, and the histogram's series budget.
pub(crate) struct Histograms {
    cache: HandleCache<Entry>,
    budget: crate::core::budget::SeriesBudget,
}

impl Default for Histograms {
    fn default() -> Self {
        Self {
            cache: HandleCache::default(),
            budget: crate::core::budget::SeriesBudget::new(
                HTTP_CLIENT_REQUEST_DURATION,
                crate::core::budget::DEFAULT_LIMIT,
            ),
        }
    }
}

impl Histograms {
    /// Records a finished call; a sampled `span` is the duration's exemplar.
    pub(crate) fn record(&self, labels: &CallLabels<'_>, secs: f64, span: Option<&SpanContext>) {
        let entry = self.cache.get_or_insert_with(labels.cache_key(), || Entry {
            server_address: labels.server_address.cloned(),
            server_port: labels.server_port,
            histogram: labels.register(&self.budget),
        });
        match entry {
            Some(entry)
                if entry.server_port == labels.server_port
                    && entry.server_address.as_deref() == labels.server_address.map(|a| &**a) =>
            {
                entry.histogram.record(secs, span);
            }
            _ => labels.register(&self.budget).record(secs, span),
        }
    }
}
