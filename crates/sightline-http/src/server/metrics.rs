//! RED metrics of the server middleware, through the `metrics` facade.
//!
//! Handles are cached: a request on a known route, method and status records into a
//! histogram handle found by a lock-free probe of a small per-route table, without building a
//! `metrics::Key` (which allocates its label list) or touching the recorder's registry. A
//! route seeing more (method, status) combinations than the table holds takes the handle
//! from the process-wide registry for the extra ones.

use std::sync::{Arc, OnceLock};

use http::StatusCode;
use metrics::{Gauge, Label, SharedString, Unit};
use opentelemetry::trace::SpanContext;
use opentelemetry_semantic_conventions::{attribute, metric};

use super::state::RequestState;
use crate::core::classify::HttpError;
use crate::core::intern;
use crate::core::semconv::{self, METHODS};
use crate::exemplars::DurationHistogram;

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

pub use crate::core::budget::METRIC_OVERFLOW;

/// The labels of one finished request.
struct RequestLabels<'a> {
    method: usize,
    route: &'a str,
    route_shared: Option<&'a Arc<str>>,
    scheme: &'static str,
    status: Option<StatusCode>,
    error: HttpError,
    tenant: Option<&'a SharedString>,
    budget: &'a crate::core::budget::SeriesBudget,
}

impl RequestLabels<'_> {
    fn cache_key(&self) -> u32 {
        1 + (self.method as u32
            | u32::from(self.scheme == "https") << 4
            | self.error.class() << 5
            | u32::from(self.status.map_or(0, |s| s.as_u16())) << 8)
    }

    fn histogram(&self) -> DurationHistogram {
        let route: SharedString = match self.route_shared {
            Some(shared) => SharedString::from(Arc::clone(shared)),
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
                semconv::status_str(status),
            ));
        }
        labels.push(Label::from_static_parts(attribute::URL_SCHEME, self.scheme));
        if let Some(error_type) = self.error.as_str() {
            labels.push(Label::from_static_parts(attribute::ERROR_TYPE, error_type));
        }
        if let Some(tenant) = self.tenant {
            labels.push(Label::new("tenant", tenant.clone()));
        }
        self.budget.histogram(labels)
    }
}

/// Records a finished request: the in-flight gauge goes down and the duration is recorded,
/// through the route's handle cache when it has one; a sampled `span` is the duration's
/// exemplar.
pub(super) fn record(
    state: &RequestState,
    error: HttpError,
    secs: f64,
    span: Option<&SpanContext>,
) {
    let Some(active) = &state.shared.active_requests else {
        return;
    };
    active.gauge(state.method, state.scheme).decrement(1.0);
    let info = state.route_info();
    let labels = RequestLabels {
        method: state.method,
        route: state.route_str(),
        route_shared: state.route.http_route(),
        scheme: state.scheme,
        status: state.status,
        error,
        tenant: state.tenant.as_ref(),
        budget: &state.shared.series_budget,
    };
    // A tenant label multiplies the series: those requests take the registry's path.
    let info = if labels.tenant.is_some() { None } else { info };
    let cached = info.and_then(|info| {
        info.histograms
            .get_or_insert_with(labels.cache_key(), || labels.histogram())
    });
    match cached {
        Some(histogram) => histogram.record(secs, span),
        None => labels.histogram().record(secs, span),
    }
}

/// The in-flight gauges, one per (method, scheme).
#[derive(Default)]
pub(super) struct ActiveRequests {
    gauges: [[OnceLock<Gauge>; 2]; METHODS.len()],
}

impl ActiveRequests {
    pub(super) fn gauge(&self, method: usize, scheme: &'static str) -> &Gauge {
        let https = usize::from(scheme == "https");
        self.gauges[method][https].get_or_init(|| {
            intern::gauge(
                HTTP_SERVER_ACTIVE_REQUESTS,
                vec![
                    Label::from_static_parts(attribute::HTTP_REQUEST_METHOD, METHODS[method]),
                    Label::from_static_parts(attribute::URL_SCHEME, scheme),
                ],
            )
        })
    }
}
