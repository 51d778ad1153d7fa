//! What an outgoing call carries from the request to the end of its response stream, and the
//! one place where it ends.

use std::sync::Arc;

use opentelemetry::Context;

use super::Shared;
use crate::core::classify::{self, ErrorKind};
use crate::core::config::Common;
use crate::core::lifecycle::OnError;
use crate::grpc::Grpc;
use crate::grpc::call::{GrpcCall, Side};
use crate::grpc::code::Code;

/// What a client's call adds to [`GrpcCall`]: the caller's context with the client span.
pub(crate) struct ClientSide {
    pub(super) shared: Arc<Shared>,
    /// Attached while the inner service runs (`attach_context`).
    pub(super) cx: Option<Context>,
}

/// Per-call state, moved from the [`ResponseFuture`](super::ResponseFuture) into the
/// [`ResponseBody`](super::ResponseBody).
pub(crate) type ClientCall = GrpcCall<ClientSide>;

impl Side for ClientSide {
    fn config(&self) -> (&Common, &Grpc) {
        (&self.shared.common, &self.shared.grpc)
    }

    fn context(&self) -> Option<&Context> {
        self.cx.as_ref()
    }

    fn failed(kind: ErrorKind) -> Code {
        match kind {
            ErrorKind::Timeout => Code::DeadlineExceeded,
            ErrorKind::Cancelled => Code::Cancelled,
            // A transport failure: what tonic reports as `UNAVAILABLE`.
            ErrorKind::Other => Code::Unavailable,
        }
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
