//! What a call carries from its arrival to the end of its response stream, and the one place
//! where it ends.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use opentelemetry::Context;

use super::Shared;
use crate::core::access::{AccessClass, Peer, access_event};
use crate::core::classify::ErrorKind;
use crate::core::config::Common;
use crate::core::lifecycle::OnError;
use crate::core::propagate;
use crate::core::span::ServerSpans;
use crate::grpc::Grpc;
use crate::grpc::call::{CallCore, GrpcCall, RequestCounters, Settled, Side};
use crate::grpc::code::Code;
use crate::grpc::method::MethodInfo;
use crate::request_id::RequestId;

/// What a server's call adds to [`GrpcCall`]: the request's identity, peer and counters, and
/// the `tracing` span and context (the OpenTelemetry span is the call's).
pub(crate) struct ServerSide {
    pub(super) shared: Arc<Shared>,
    pub(super) spans: ServerSpans,
    pub(super) health_check: bool,
    pub(super) request_id: Option<RequestId>,
    pub(super) peer: Peer,
    pub(super) request: Option<Arc<RequestCounters>>,
    /// The method whose in-flight gauge went up (`None`: `_OTHER`, and a pending method counts
    /// as `_OTHER` until it is recognised, so the gauge adds no series for unknown names).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(super) active_at_start: Option<Arc<MethodInfo>>,
}

/// Per-call state, moved from the [`ResponseFuture`](super::ResponseFuture) into the
/// [`ResponseBody`](super::ResponseBody).
pub(crate) type ServerCall = GrpcCall<ServerSide>;

impl Side for ServerSide {
    fn config(&self) -> (&Common, &Grpc) {
        (&self.shared.common, &self.shared.grpc)
    }

    fn catches_panics(&self) -> bool {
        true
    }

    fn span(&self) -> Option<&tracing::Span> {
        Some(&self.spans.span)
    }

    fn context(&self) -> Option<&Context> {
        self.spans.cx.as_ref()
    }

    fn on_head(&mut self, headers: &mut http::HeaderMap) {
        propagate::return_request_id(
            self.shared.common.request_id_header.as_ref(),
            self.request_id.as_ref(),
            headers,
        );
    }

    /// An inner layer's error: what gRPC servers answer for a failed handler.
    fn failed(_: ErrorKind) -> Code {
        Code::Unknown
    }

    /// The gauge went up under the method known at the start.
    #[cfg(feature = "metrics")]
    fn ended(&self, labels: &crate::grpc::metrics::Labels) {
        let active = self.active_at_start.as_deref();
        labels
            .active(active.unwrap_or_else(|| self.shared.grpc.methods.other()))
            .decrement(1.0);
    }

    #[cfg(feature = "metrics")]
    fn request_messages(&self) -> u64 {
        self.request
            .as_ref()
            .map_or(0, |r| r.messages.load(Ordering::Relaxed))
    }

    fn log(&self, call: &CallCore, settled: &Settled) {
        if !self.shared.access.enabled || self.health_check {
            return;
        }
        let code = settled.code;
        let class = match code {
            Code::Ok => AccessClass::Success,
            _ if settled.error => AccessClass::ServerError,
            _ => AccessClass::ClientError,
        };
        let Some(level) = self.shared.access.levels.level(class) else {
            return;
        };
        let info = call.info(&self.shared.grpc);
        let status = code.as_str();
        let (client, user_agent) = self.peer.texts();
        // A string, recorded as it is (a `Display` value would go through `fmt`).
        let client = client.as_deref();
        access_event!(
            level,
            parent: &self.spans.span,
            rpc.system.name = "grpc",
            rpc.method = info.rpc_method,
            rpc.method_original = info.is_other().then_some(call.method.requested()),
            rpc.status_code = status,
            // Whole microseconds: a binary fraction of a millisecond prints as 0.45517399999999997.
            duration_ms = settled.elapsed.as_micros() as f64 / 1e3,
            rpc.request.body.size = self.request.as_ref().map(|r| r.bytes.load(Ordering::Relaxed)),
            rpc.response.body.size = call.response_bytes,
            client.address = client,
            user_agent.original = user_agent.as_deref(),
            error.type = settled.error.then_some(status),
            "call completed"
        );
    }
}

/// An error of the inner service passes through; the call ends as `UNKNOWN`.
impl<E> OnError<E> for ServerCall {
    fn error_kind(_: &E) -> ErrorKind {
        ErrorKind::Other
    }
}
