use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::state::{CallState, Outcome};

pin_project! {
    /// Response body of [`Client`](super::Client): where a call ends.
    ///
    /// Ends the call (span, duration) at the end of the stream, on a body error, or when
    /// dropped early.
    ///
    /// ```
    /// use http_body_util::BodyExt as _;
    /// use sightline_http::client::ClientLayer;
    /// use tower::{ServiceBuilder, ServiceExt as _};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let client = ServiceBuilder::new()
    ///     .layer(ClientLayer::builder().build())
    ///     .service_fn(|_req: http::Request<String>| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello")))
    ///     });
    /// let response = client.oneshot(http::Request::new(String::new())).await.unwrap();
    /// // `response.into_body()` is a `ResponseBody`; reading it to the end ends the call
    /// let bytes = response.into_body().collect().await.unwrap().to_bytes();
    /// assert_eq!(&bytes[..], b"hello");
    /// # }
    /// ```
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        state: Option<Box<CallState>>,
    }
}

impl<B: Body> ResponseBody<B> {
    pub(crate) fn new(inner: B, state: Box<CallState>) -> Self {
        let state = crate::body::track(&inner, state);
        Self { inner, state }
    }
}

impl crate::body::StreamState for CallState {
    fn end(&mut self, completed: bool) {
        self.finish(if completed {
            Outcome::Completed
        } else {
            Outcome::Failed("_OTHER")
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
