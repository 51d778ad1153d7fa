//! What an outgoing call carries from the request to the end of its response body, and the
//! one place where it ends.

use std::sync::Arc;
use std::time::Instant;

use http::StatusCode;
use opentelemetry::trace::Span as _;
use opentelemetry::{Context, KeyValue};
use opentelemetry_semantic_conventions::attribute;

use super::Shared;
use crate::core::classify::{self, ErrorKind, HttpError, Outcome, Side};
use crate::core::lifecycle::{Call, OnError};
use crate::core::semconv;
use crate::core::span;

/// Per-call state, moved from the [`ResponseFuture`](super::ResponseFuture) into the
/// [`ResponseBody`](super::ResponseBody).
pub(crate) struct CallState {
    pub(super) shared: Arc<Shared>,
    pub(super) start: Instant,
    pub(super) method: usize,
    pub(super) server_address: Option<Arc<str>>,
    pub(super) server_port: u16,
    pub(super) span: Option<crate::core::tracer::CallSpan>,
    /// The caller's context with the client span, attached while the inner service runs.
    pub(super) cx: Option<Context>,
    pub(super) status: Option<StatusCode>,
}

impl Call for CallState {
    fn context(&self) -> Option<&Context> {
        self.cx.as_ref()
    }

    fn on_head(&mut self, parts: &mut http::response::Parts) {
        self.status = Some(parts.status);
        if let Some(span) = &mut self.span {
            span.set_attribute(KeyValue::new(
                attribute::NETWORK_PROTOCOL_VERSION,
                semconv::protocol_version(parts.version),
            ));
        }
        self.shared
            .common
            .capture
            .record_response_head(parts, self.span.as_mut());
    }

    fn finish(&mut self, outcome: Outcome) {
        let elapsed = self.start.elapsed();
        let error = HttpError::of(Side::Client, self.status, outcome);

        #[cfg(feature = "metrics")]
        if let Some(histograms) = &self.shared.histograms {
            histograms.record(
                &super::metrics::CallLabels {
                    method: self.method,
                    server_address: self.server_address.as_ref(),
                    server_port: self.server_port,
                    status: self.status,
                    error,
                },
                elapsed.as_secs_f64(),
                self.span.as_ref().map(|span| span.span_context()),
            );
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (elapsed, self.method, self.server_port, &self.server_address);

        if let Some(otel) = self.span.take() {
            span::end_http(otel, self.status, error);
        }
    }
}

/// A failed call is classified by its error's type: `timeout` or `_OTHER`.
impl<E> OnError<E> for CallState
where
    E: std::fmt::Debug + std::fmt::Display + 'static,
{
    fn error_kind(error: &E) -> ErrorKind {
        classify::error_kind(error)
    }
}
