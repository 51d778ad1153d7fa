//! What a request carries from its arrival to the end of its response, and the one place
//! where it ends.

use std::sync::Arc;
use std::time::Instant;

use bytes::Buf;
use http::StatusCode;
use opentelemetry::Context;
use opentelemetry::trace::Span as _;

use super::Shared;
use super::route::{RouteInfo, RouteSlot};
use crate::core::access::{AccessClass, Peer, access_event};
use crate::core::classify::{ErrorKind, HttpError, Outcome, Side};
use crate::core::lifecycle::{Call, OnError};
use crate::core::propagate;
use crate::core::semconv::METHODS;
use crate::core::span::{self, ServerSpans};
use crate::request_id::RequestId;

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

impl RouteRef {
    /// The template as an `http.route` value; `None` when unmatched.
    pub(crate) fn http_route(&self) -> Option<&Arc<str>> {
        match self {
            Self::Uncached(route) => Some(route),
            Self::Cached(slot) => slot.get().and_then(RouteInfo::http_route),
            Self::Unmatched => None,
        }
    }
}

/// Per-request state, moved from the [`ResponseFuture`](super::ResponseFuture) into the
/// [`ResponseBody`](super::ResponseBody).
pub(crate) struct RequestState {
    pub(super) shared: Arc<Shared>,
    pub(super) start: Instant,
    pub(super) method: usize,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(super) scheme: &'static str,
    pub(super) route: RouteRef,
    pub(super) spans: ServerSpans,
    pub(super) request_id: Option<RequestId>,
    pub(super) peer: Peer,
    pub(super) request_bytes: Option<u64>,
    pub(super) status: Option<StatusCode>,
    pub(super) response_bytes: u64,
    /// A probe: no span, no access line.
    pub(super) probe: bool,
    /// The `tenant` label value, when the layer has a tenant label.
    #[cfg(feature = "metrics")]
    pub(super) tenant: Option<metrics::SharedString>,
    /// The inner service panicked: with its message when it had one and may be recorded.
    pub(super) panicked: Option<Option<String>>,
}

impl RequestState {
    pub(super) fn route_info(&self) -> Option<&RouteInfo> {
        match &self.route {
            RouteRef::Cached(slot) => slot.get(),
            RouteRef::Uncached(_) => None,
            RouteRef::Unmatched => Some(&self.shared.unmatched),
        }
    }

    /// The `http.route` label value.
    pub(super) fn route_str(&self) -> &str {
        match &self.route {
            RouteRef::Uncached(route) => route,
            _ => self
                .route_info()
                .map_or(super::UNMATCHED_ROUTE, RouteInfo::template),
        }
    }

    /// Sets `traceresponse` to the server span's identity, when it has a valid one.
    fn insert_traceresponse(&self, headers: &mut http::HeaderMap) {
        use sightline_propagation::{SpanId, TraceFlags, TraceId, Traceparent};

        let Some(span) = &self.spans.otel else {
            return;
        };
        let ids = span.span_context();
        if !ids.is_valid() {
            return;
        }
        let value = Traceparent::new(
            TraceId(ids.trace_id().to_bytes()),
            SpanId(ids.span_id().to_bytes()),
            TraceFlags(self.spans.trace_flags),
        )
        .encode();
        if let Ok(value) = http::HeaderValue::from_str(value.as_str()) {
            headers.insert(http::HeaderName::from_static("traceresponse"), value);
        }
    }

    fn log_access(&self, duration_ms: f64, error: HttpError) {
        let status = self.status.map_or(0, |s| s.as_u16());
        let class = match status {
            500.. => AccessClass::ServerError,
            400..=499 => AccessClass::ClientError,
            _ if error != HttpError::None => AccessClass::ClientError,
            _ => AccessClass::Success,
        };
        let Some(level) = self.shared.access.levels.level(class) else {
            return;
        };
        let (client, user_agent) = self.peer.texts();
        // A string, recorded as it is (a `Display` value would go through `fmt`).
        let client = client.as_deref();
        access_event!(
            level,
            parent: &self.spans.span,
            http.request.method = METHODS[self.method],
            http.route = self.route_str(),
            http.response.status_code = status,
            duration_ms,
            http.response.body.size = self.response_bytes,
            http.request.body.size = self.request_bytes,
            client.address = client,
            user_agent.original = user_agent.as_deref(),
            error.type = error.as_str(),
            "request completed"
        );
    }
}

impl Call for RequestState {
    fn span(&self) -> Option<&tracing::Span> {
        Some(&self.spans.span)
    }

    fn context(&self) -> Option<&Context> {
        self.spans.cx.as_ref()
    }

    fn on_head(&mut self, parts: &mut http::response::Parts) {
        self.status = Some(parts.status);
        propagate::return_request_id(
            self.shared.common.request_id_header.as_ref(),
            self.request_id.as_ref(),
            &mut parts.headers,
        );
        if self.shared.options.traceresponse {
            self.insert_traceresponse(&mut parts.headers);
        }
        self.shared
            .common
            .capture
            .record_response_head(parts, self.spans.otel.as_mut());
    }

    fn on_data(&mut self, data: &impl Buf) {
        self.response_bytes += data.remaining() as u64;
    }

    fn catches_panics(&self) -> bool {
        self.shared.options.catch_panics
    }

    fn on_panic(&mut self, message: Option<&str>) {
        let record = self.shared.options.record_panic_message;
        self.panicked = Some(message.filter(|_| record).map(str::to_owned));
    }

    fn finish(&mut self, outcome: Outcome) {
        let elapsed = self.start.elapsed();
        let error = HttpError::of(Side::Server, self.status, outcome);

        #[cfg(feature = "metrics")]
        super::metrics::record(
            self,
            error,
            elapsed.as_secs_f64(),
            self.spans.otel.as_ref().map(|span| span.span_context()),
        );

        if let Some(mut otel) = self.spans.otel.take() {
            if let Some(message) = self.panicked.take() {
                use opentelemetry::trace::Span as _;
                use opentelemetry_semantic_conventions::attribute;
                let mut attrs = vec![opentelemetry::KeyValue::new(
                    attribute::EXCEPTION_TYPE,
                    "panic",
                )];
                if let Some(message) = message {
                    attrs.push(opentelemetry::KeyValue::new(
                        attribute::EXCEPTION_MESSAGE,
                        message,
                    ));
                }
                otel.add_event("exception", attrs);
            }
            span::end_http(otel, self.status, error);
        }

        if !self.probe && self.shared.logs_access_for(self.route_str()) {
            // Whole microseconds: a binary fraction of a millisecond prints as 0.45517399999999997.
            self.log_access(elapsed.as_micros() as f64 / 1e3, error);
        }
    }
}

/// An error of the inner service passes through; the request ends with `error.type` `_OTHER`.
impl<E> OnError<E> for RequestState {
    fn error_kind(_: &E) -> ErrorKind {
        ErrorKind::Other
    }
}
