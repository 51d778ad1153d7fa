//! What a request carries from its arrival to the end of its response, and the one place
//! where it ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::{HeaderValue, StatusCode};
use opentelemetry::global::BoxedSpan;
use opentelemetry::trace::{Span as _, Status};
use opentelemetry::{Context, KeyValue};
use opentelemetry_semantic_conventions::attribute;

use super::Shared;
use super::route::{RouteInfo, RouteSlot};
use crate::request_id::RequestId;
use crate::semconv::{self, METHODS};

/// The route of a request, as resolved when it arrived.
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
pub(crate) enum RouteRef {
    /// The service's cached route (its slot is filled).
    Cached(Arc<RouteSlot>),
    /// A template other than the cached one.
    Uncached(Arc<str>),
    /// No route matched.
    Unmatched,
}

/// How a request ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Outcome {
    /// The response body reached its end.
    Completed,
    /// The inner service or the response body returned an error.
    Failed,
    /// The future or body was dropped before the end: the client went away.
    Cancelled,
}

/// Per-request state, moved from the [`ResponseFuture`](super::ResponseFuture) into the
/// [`ResponseBody`](super::ResponseBody). Dropping it unfinished ends the request as
/// cancelled, so no path leaks a span or an in-flight gauge.
pub(crate) struct RequestState {
    pub(crate) shared: Arc<Shared>,
    pub(crate) start: Instant,
    pub(crate) method: usize,
    pub(crate) scheme: &'static str,
    pub(crate) route: RouteRef,
    pub(crate) otel_span: Option<BoxedSpan>,
    /// The server span as an OpenTelemetry context, attached while the inner service runs.
    pub(crate) otel_cx: Option<Context>,
    pub(crate) span: tracing::Span,
    pub(crate) request_id: Option<RequestId>,
    pub(crate) client_addr: Option<SocketAddr>,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) request_bytes: Option<u64>,
    pub(crate) status: Option<StatusCode>,
    /// The trace flags children and callers see (the server span's, plus `random` on a new
    /// trace).
    pub(crate) trace_flags: u8,
    pub(crate) response_bytes: u64,
    pub(crate) finished: bool,
}

impl RequestState {
    fn route_info(&self) -> Option<&RouteInfo> {
        match &self.route {
            RouteRef::Cached(slot) => slot.get(),
            RouteRef::Uncached(_) => None,
            RouteRef::Unmatched => Some(&self.shared.unmatched),
        }
    }

    /// The `http.route` label value.
    pub(crate) fn route_str(&self) -> &str {
        match &self.route {
            RouteRef::Uncached(route) => route,
            _ => self
                .route_info()
                .map_or(super::UNMATCHED_ROUTE, RouteInfo::template),
        }
    }

    /// Ends the request: metrics, span, access log. Runs at most once.
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let elapsed = self.start.elapsed();
        let status = self.status;
        let server_error = status.is_some_and(|s| s.is_server_error());
        let error_type: Option<&'static str> = match outcome {
            _ if server_error => status.map(semconv::status_str),
            Outcome::Completed => None,
            Outcome::Failed => Some("_OTHER"),
            Outcome::Cancelled => Some("cancelled"),
        };

        #[cfg(feature = "metrics")]
        self.record_metrics(outcome, server_error, error_type, elapsed.as_secs_f64());

        if let Some(mut span) = self.otel_span.take() {
            if let Some(status) = status {
                span.set_attribute(KeyValue::new(
                    attribute::HTTP_RESPONSE_STATUS_CODE,
                    i64::from(status.as_u16()),
                ));
            }
            if let Some(error_type) = error_type {
                span.set_attribute(KeyValue::new(attribute::ERROR_TYPE, error_type));
            }
            if server_error || outcome == Outcome::Failed {
                span.set_status(Status::error(""));
            }
            span.end_with_timestamp(SystemTime::now());
        }

        if self.shared.logs_access_for(self.route_str()) {
            // Whole microseconds: a binary fraction of a millisecond prints as 0.45517399999999997.
            self.log_access(elapsed.as_micros() as f64 / 1e3, error_type);
        }
    }

    #[cfg(feature = "metrics")]
    fn record_metrics(
        &self,
        outcome: Outcome,
        server_error: bool,
        error_type: Option<&'static str>,
        secs: f64,
    ) {
        use super::metrics::{ErrorClass, RequestLabels, record_duration};

        let Some(active) = &self.shared.active_requests else {
            return;
        };
        active.gauge(self.method, self.scheme).decrement(1.0);

        let error_class = match outcome {
            _ if server_error => ErrorClass::None,
            Outcome::Completed => ErrorClass::None,
            Outcome::Failed => ErrorClass::Other,
            Outcome::Cancelled => ErrorClass::Cancelled,
        };
        let info = self.route_info();
        let labels = RequestLabels {
            method: self.method,
            route: self.route_str(),
            route_shared: match &self.route {
                RouteRef::Uncached(route) => Some(route),
                _ => info.and_then(RouteInfo::http_route),
            },
            scheme: self.scheme,
            status: self.status.map(semconv::status_str),
            status_code: self.status.map_or(0, |s| s.as_u16()),
            error_type,
            error_class,
        };
        match info {
            Some(info) => record_duration(&info.histograms, &labels, secs),
            None => {
                let uncached = super::metrics::HandleCache::default();
                record_duration(&uncached, &labels, secs);
            }
        }
    }

    fn log_access(&self, duration_ms: f64, error_type: Option<&'static str>) {
        let status = self.status.map_or(0, |s| s.as_u16());
        let levels = &self.shared.access_log_levels;
        let level = match status {
            500.. => levels.server_error,
            400..=499 => levels.client_error,
            _ if error_type.is_some() => levels.client_error,
            _ => levels.success,
        };
        let Some(level) = level else {
            return;
        };
        let method = METHODS[self.method];
        let route = self.route_str();
        let bytes = self.response_bytes;
        let request_bytes = self.request_bytes;
        let client = self
            .client_addr
            .as_ref()
            .map(|a| crate::text_cache::ip(a.ip()));
        // Displayed (unquoted in text formats) as before, but not formatted again.
        let client = client.as_deref().map(tracing::field::display);
        let user_agent = self.user_agent.as_ref().map(crate::headers::header_text);
        let user_agent = user_agent.as_deref();
        // One callsite per level: a `tracing` callsite has a fixed level. Field names are
        // those of the span attributes and metric labels, so a line, a span and a series join.
        macro_rules! access {
            ($level:expr) => {
                tracing::event!(
                    target: "sightline_http::access",
                    parent: &self.span,
                    $level,
                    http.request.method = method,
                    http.route = route,
                    http.response.status_code = status,
                    duration_ms,
                    http.response.body.size = bytes,
                    http.request.body.size = request_bytes,
                    client.address = client,
                    user_agent.original = user_agent,
                    error.type = error_type,
                    "request completed"
                )
            };
        }
        match level {
            tracing::Level::ERROR => access!(tracing::Level::ERROR),
            tracing::Level::WARN => access!(tracing::Level::WARN),
            tracing::Level::INFO => access!(tracing::Level::INFO),
            tracing::Level::DEBUG => access!(tracing::Level::DEBUG),
            _ => access!(tracing::Level::TRACE),
        }
    }
}

impl Drop for RequestState {
    fn drop(&mut self) {
        self.finish(Outcome::Cancelled);
    }
}
