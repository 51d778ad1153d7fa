use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use http::{Response, StatusCode};
use opentelemetry::Context;
use pin_project_lite::pin_project;

use super::body::ResponseBody;
use super::call::{CallState, Outcome};
use super::code::Code;

pin_project! {
    /// Response future of [`GrpcServer`](super::GrpcServer) and
    /// [`GrpcClient`](super::GrpcClient).
    ///
    /// Polls the inner service inside the call's `tracing` span and OpenTelemetry context;
    /// reads a trailers-only status from the response head and hands the call state to the
    /// [`ResponseBody`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        // Taken once, when `inner` resolves; dropping it earlier ends the call as cancelled.
        state: Option<Box<CallState>>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, state: Box<CallState>) -> Self {
        Self {
            inner,
            state: Some(state),
        }
    }
}

impl<F: std::fmt::Debug> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
    E: std::fmt::Debug + std::fmt::Display + 'static,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let state = this
                .state
                .as_ref()
                .expect("ResponseFuture polled after completion");
            let _entered = state.span.enter();
            let _attached = state.otel_cx.clone().map(Context::attach);
            ready!(this.inner.poll(cx))
        };
        let mut state = this
            .state
            .take()
            .expect("ResponseFuture polled after completion");
        match result {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                // A trailers-only response carries its status in the head; a non-200 HTTP
                // status stands for a gRPC code of its own.
                state.code = Code::from_headers(&parts.headers).or_else(|| {
                    (parts.status != StatusCode::OK).then(|| Code::from_http_status(parts.status))
                });
                state.streamed = state.code.is_none();
                state.capture_response_metadata(&parts.headers);
                if state.shared.server
                    && let (Some(name), Some(id)) =
                        (&state.shared.request_id_header, &state.request_id)
                {
                    parts.headers.insert(name, id.header_value().clone());
                }
                let body = ResponseBody::new(body, state);
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
            Err(error) => {
                let code = if state.shared.server {
                    Code::Unknown
                } else if crate::client::state::error_type(&error) == "timeout" {
                    Code::DeadlineExceeded
                } else {
                    // A transport failure: what tonic reports as `UNAVAILABLE`.
                    Code::Unavailable
                };
                state.finish(Outcome::Failed(code));
                Poll::Ready(Err(error))
            }
        }
    }
}
