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
    pub(crate) fn new(inner: B, state: Box<RequestState>) -> Self {
        let state = crate::body::track(&inner, state);
        Self { inner, state }
    }
}

impl crate::body::StreamState for RequestState {
    fn data(&mut self, data: &impl Buf) {
        self.response_bytes += data.remaining() as u64;
    }

    fn end(&mut self, completed: bool) {
        self.finish(if completed {
            Outcome::Completed
        } else {
            Outcome::Failed
        });
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
        let this = self.project();
        crate::body::poll_tracked(this.inner, this.state, cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
