use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::state::{Outcome, RequestState};

pin_project! {
    /// Response body of [`Server`](super::Server): where a request ends.
    ///
    /// Counts the bytes sent and ends the request (duration, span, access log) at the end of
    /// the stream, on a body error, or when dropped early.
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        state: Option<Box<RequestState>>,
    }
}

impl<B: Body> ResponseBody<B> {
    pub(crate) fn new(inner: B, mut state: Box<RequestState>) -> Self {
        // A body that is empty from the start (HEAD, 204, `()`) may never be polled.
        if inner.is_end_stream() {
            state.finish(Outcome::Completed);
            return Self { inner, state: None };
        }
        Self {
            inner,
            state: Some(state),
        }
    }
}

impl<B: std::fmt::Debug> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        let Some(state) = this.state.as_mut() else {
            return polled;
        };
        let outcome = match &polled {
            Poll::Pending => return polled,
            Poll::Ready(None) => Some(Outcome::Completed),
            Poll::Ready(Some(Err(_))) => Some(Outcome::Failed),
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    state.response_bytes += data.remaining() as u64;
                }
                // hyper stops polling once Content-Length bytes are out, so the end of the
                // stream is detected on the last data frame; a trailing `None` may never come.
                (frame.is_trailers() || this.inner.is_end_stream()).then_some(Outcome::Completed)
            }
        };
        if let Some(outcome) = outcome
            && let Some(mut state) = this.state.take()
        {
            state.finish(outcome);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
