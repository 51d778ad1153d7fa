//! What the response bodies of every middleware share: watching a stream for its end.
//!
//! A call ends when its response body ends, whatever the protocol: at the last data frame
//! (when the body says it is at its end: hyper stops polling once `Content-Length` bytes are
//! out, so a trailing `None` may never come), at the trailers, at a body error, or, when
//! none of these happens, when the body is dropped (the state's `Drop`).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use http::HeaderMap;
use http_body::{Body, Frame};

/// The per-call state a response body carries until the stream ends.
pub(crate) trait StreamState {
    /// A data frame went through.
    fn data(&mut self, _data: &impl Buf) {}

    /// The trailers went through (the stream ends right after).
    fn trailers(&mut self, _trailers: &HeaderMap) {}

    /// The stream ended: `completed`, or with a body error.
    fn end(&mut self, completed: bool);
}

/// The state to keep for a new response body: `None` when the body is empty from the start
/// (HEAD, 204, a gRPC trailers-only answer), which may never be polled, so the call ends now.
pub(crate) fn track<B: Body, S: StreamState>(inner: &B, mut state: Box<S>) -> Option<Box<S>> {
    if inner.is_end_stream() {
        state.end(true);
        None
    } else {
        Some(state)
    }
}

/// What `Body::poll_frame` returns.
type Polled<B> = Poll<Option<Result<Frame<<B as Body>::Data>, <B as Body>::Error>>>;

/// Polls `inner` for a frame, shows it to the state, and ends the state (taking it) when the
/// stream ends.
pub(crate) fn poll_tracked<B: Body, S: StreamState>(
    mut inner: Pin<&mut B>,
    state: &mut Option<Box<S>>,
    cx: &mut Context<'_>,
) -> Polled<B> {
    let polled = inner.as_mut().poll_frame(cx);
    let Some(tracked) = state.as_mut() else {
        return polled;
    };
    let ended = match &polled {
        Poll::Pending => return polled,
        Poll::Ready(None) => Some(true),
        Poll::Ready(Some(Err(_))) => Some(false),
        Poll::Ready(Some(Ok(frame))) => {
            if let Some(data) = frame.data_ref() {
                tracked.data(data);
            }
            if let Some(trailers) = frame.trailers_ref() {
                tracked.trailers(trailers);
                Some(true)
            } else {
                inner.is_end_stream().then_some(true)
            }
        }
    };
    if let Some(completed) = ended
        && let Some(mut tracked) = state.take()
    {
        tracked.end(completed);
    }
    polled
}
