//! What an outgoing call carries from the request to the end of its response stream, and the
//! one place where it ends.

use std::sync::Arc;

use bytes::Buf;
use opentelemetry::Context;

use super::Shared;
use crate::core::classify::{self, ErrorKind, Outcome};
use crate::core::lifecycle::{Call, OnError};
use crate::grpc::call::GrpcCall;
use crate::grpc::code::Code;

/// Per-call state, moved from the [`ResponseFuture`](super::ResponseFuture) into the
/// [`ResponseBody`](super::ResponseBody).
pub(crate) struct ClientCall {
    pub(super) shared: Arc<Shared>,
    pub(super) call: GrpcCall,
    /// The caller's context with the client span, attached while the inner service runs.
    pub(super) cx: Option<Context>,
}

impl Call for ClientCall {
    fn context(&self) -> Option<&Context> {
        self.cx.as_ref()
    }

    fn on_head(&mut self, parts: &mut http::response::Parts) {
        self.call.on_head(parts, &self.shared.common.capture);
    }

    fn on_data(&mut self, data: &impl Buf) {
        self.call.on_data(data, self.shared.grpc.message_counts);
    }

    fn on_trailers(&mut self, trailers: &http::HeaderMap) {
        self.call.on_trailers(trailers, &self.shared.common.capture);
    }

    fn finish(&mut self, outcome: Outcome) {
        let settled = self
            .call
            .settle(&self.shared.grpc, outcome, |kind| match kind {
                ErrorKind::Timeout => Code::DeadlineExceeded,
                ErrorKind::Cancelled => Code::Cancelled,
                // A transport failure: what tonic reports as `UNAVAILABLE`.
                ErrorKind::Other => Code::Unavailable,
            });
        #[cfg(feature = "metrics")]
        if let Some(labels) = &self.shared.metrics {
            let grpc = &self.shared.grpc;
            let messages = grpc
                .message_counts
                .then_some((0, self.call.response_messages.count));
            labels.record(
                self.call.info(grpc),
                settled.code,
                settled.error,
                settled.elapsed.as_secs_f64(),
                messages,
            );
        }
        self.call.end_span(&self.shared.grpc, &settled);
    }
}

/// A failed call is classified by its error's type.
impl<E> OnError<E> for ClientCall
where
    E: std::fmt::Debug + std::fmt::Display + 'static,
{
    fn error_kind(error: &E) -> ErrorKind {
        classify::error_kind(error)
    }
}
