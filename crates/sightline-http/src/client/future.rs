use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use super::body::ResponseBody;
use super::state::{CallState, Outcome, error_type};

pin_project! {
    /// Response future of [`Client`](super::Client).
    ///
    /// Notes the response head and hands the call state to the [`ResponseBody`]; an error
    /// from the inner service ends the call as failed, and dropping the future before the
    /// response ends it as cancelled.
    ///
    /// ```
    /// use sightline_http::client::{ClientLayer, ResponseFuture};
    /// use tower::{Service as _, ServiceBuilder};
    ///
    /// let mut client = ServiceBuilder::new()
    ///     .layer(ClientLayer::builder().build())
    ///     .service_fn(|_req: http::Request<String>| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    ///     });
    /// let future = client.call(http::Request::new(String::new()));
    /// drop(future); // the call ends as cancelled
    /// ```
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
        let result = ready!(this.inner.poll(cx));
        let mut state = this
            .state
            .take()
            .expect("ResponseFuture polled after completion");
        match result {
            Ok(response) => {
                state.response(response.status(), response.version());
                state.capture_response_headers(response.headers());
                let (parts, body) = response.into_parts();
                Poll::Ready(Ok(Response::from_parts(
                    parts,
                    ResponseBody::new(body, state),
                )))
            }
            Err(error) => {
                state.finish(Outcome::Failed(error_type(&error)));
                Poll::Ready(Err(error))
            }
        }
    }
}
