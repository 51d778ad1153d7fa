use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use http::Response;
use opentelemetry::Context;
use pin_project_lite::pin_project;

use super::body::ResponseBody;
use super::state::{Outcome, RequestState};

pin_project! {
    /// Response future of [`Server`](super::Server).
    ///
    /// Polls the inner service inside the request's `tracing` span and OpenTelemetry context;
    /// hands the request state to the [`ResponseBody`] when the response head is ready.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        // Taken once, when `inner` resolves; dropping it earlier ends the request as cancelled.
        // Boxed: the state is a few hundred bytes, and futures and bodies are moved often.
        state: Option<Box<RequestState>>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, state: Box<RequestState>) -> Self {
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
                state.status = Some(parts.status);
                if let (Some(name), Some(id)) = (&state.shared.request_id_header, &state.request_id)
                {
                    parts.headers.insert(name, id.header_value().clone());
                }
                if state.shared.traceresponse {
                    insert_traceresponse(&state, &mut parts.headers);
                }
                if let (true, Some(span)) = (
                    state.shared.headers.captures_response(),
                    state.otel_span.as_mut(),
                ) {
                    use opentelemetry::trace::Span as _;
                    for attribute in state.shared.headers.response(&parts.headers) {
                        span.set_attribute(attribute);
                    }
                }
                let body = ResponseBody::new(body, state);
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
            Err(error) => {
                state.finish(Outcome::Failed);
                Poll::Ready(Err(error))
            }
        }
    }
}

/// Sets `traceresponse` to the server span's identity, when it has a valid one.
fn insert_traceresponse(state: &RequestState, headers: &mut http::HeaderMap) {
    use opentelemetry::trace::Span as _;
    use sightline_propagation::{SpanId, TraceFlags, TraceId, Traceparent};

    let Some(span) = &state.otel_span else {
        return;
    };
    let ids = span.span_context();
    if !ids.is_valid() {
        return;
    }
    let value = Traceparent::new(
        TraceId(ids.trace_id().to_bytes()),
        SpanId(ids.span_id().to_bytes()),
        TraceFlags(state.trace_flags),
    )
    .encode();
    if let Ok(value) = http::HeaderValue::from_str(value.as_str()) {
        headers.insert(http::HeaderName::from_static("traceresponse"), value);
    }
}
