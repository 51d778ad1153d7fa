//! The life of a call, whatever the protocol: one response future and one response body that
//! carry the call's state from the request to the end of the response stream, and end it
//! exactly once.
//!
//! A call ends when its response body ends: at the last data frame (when the body says it is
//! at its end: hyper stops polling once `Content-Length` bytes are out, so a trailing `None`
//! may never come), at the trailers, at a body error, or, when none of these happens, when the
//! future or the body is dropped ([`Tracked`]'s `Drop`, which ends it as cancelled).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use bytes::Buf;
use http::{HeaderMap, Response};
use http_body::Body;
use opentelemetry::Context;
use pin_project_lite::pin_project;

use super::classify::{ErrorKind, Outcome};

/// The `Body` impl of a body wrapper over an inner body `B` (a pin-projected `inner` field):
/// `poll_frame` runs `$poll` with the projection as `$this`; the end and the size hint are the
/// inner body's, as the wrapper only observes its frames.
macro_rules! body_wrapper {
    (impl<$($generic:ident $(: $bound:path)?),*> for $ty:ty, |$this:ident, $cx:ident| $poll:block) => {
        impl<$($generic $(: $bound)?),*> ::http_body::Body for $ty {
            type Data = B::Data;
            type Error = B::Error;

            fn poll_frame(
                self: ::std::pin::Pin<&mut Self>,
                $cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<Option<Result<::http_body::Frame<B::Data>, B::Error>>> {
                let $this = self.project();
                $poll
            }

            fn is_end_stream(&self) -> bool {
                self.inner.is_end_stream()
            }

            fn size_hint(&self) -> ::http_body::SizeHint {
                self.inner.size_hint()
            }
        }
    };
}

pub(crate) use body_wrapper;

/// The per-call state of a middleware: what it does at each step of a call.
pub(crate) trait Call {
    /// The `tracing` span the inner service is called and polled in.
    fn span(&self) -> Option<&tracing::Span> {
        None
    }

    /// The OpenTelemetry context attached while the inner service is called and polled.
    fn context(&self) -> Option<&Context> {
        None
    }

    /// The response head arrived; the middleware may add headers to it.
    fn on_head(&mut self, parts: &mut http::response::Parts);

    /// A data frame of the response went through.
    fn on_data(&mut self, _data: &impl Buf) {}

    /// The trailers went through (the stream ends right after).
    fn on_trailers(&mut self, _trailers: &HeaderMap) {}

    /// Ends the call: metrics, span, access log. [`Tracked`] calls it exactly once.
    fn finish(&mut self, outcome: Outcome);

    /// Whether a panic of the inner service's future becomes an answer (a server's 500)
    /// rather than unwinding through the connection.
    fn catches_panics(&self) -> bool {
        false
    }

    /// The inner future panicked with `message` (when the payload was a string): the answer
    /// is the empty response [`Self::panic_response`] makes, shown to [`Self::on_head`].
    fn on_panic(&mut self, _message: Option<&str>) {}

    /// The head of the answer to a panic: `500 Internal Server Error`, no body.
    fn panic_response(&self) -> http::response::Parts {
        let (mut parts, ()) = Response::new(()).into_parts();
        parts.status = http::StatusCode::INTERNAL_SERVER_ERROR;
        parts.headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from_static("0"),
        );
        parts
    }
}

/// A panic payload's message, when it is a string (what `panic!` with a message makes).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// How a middleware sees an error of its inner service.
pub(crate) trait OnError<E>: Call {
    /// What kind of failure `error` is.
    fn error_kind(error: &E) -> ErrorKind;
}

/// A call's state until the call ends: finishing takes it, and dropping it unfinished ends the
/// call as cancelled, so no path leaks a span or an in-flight gauge.
pub(crate) struct Tracked<C: Call>(Option<Box<C>>);

impl<C: Call> Tracked<C> {
    // Boxed: the state is a few hundred bytes, and futures and bodies are moved often.
    pub(crate) fn new(call: Box<C>) -> Self {
        Self(Some(call))
    }

    pub(crate) fn get(&self) -> Option<&C> {
        self.0.as_deref()
    }

    fn get_mut(&mut self) -> Option<&mut C> {
        self.0.as_deref_mut()
    }

    /// Hands the call to a new owner (the future's state moves to the body).
    fn take(&mut self) -> Self {
        Self(self.0.take())
    }

    /// Ends the call now, unless it already ended.
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        if let Some(mut call) = self.0.take() {
            call.finish(outcome);
        }
    }

    /// Enters the call's `tracing` span and attaches its OpenTelemetry context.
    pub(crate) fn enter(&self) -> Scope<'_> {
        let call = self.get();
        Scope {
            _entered: call.and_then(Call::span).map(tracing::Span::enter),
            _attached: call.and_then(Call::context).cloned().map(Context::attach),
        }
    }
}

impl<C: Call> Drop for Tracked<C> {
    fn drop(&mut self) {
        self.finish(Outcome::Cancelled);
    }
}

/// The span entered and the context attached while the inner service runs.
pub(crate) struct Scope<'a> {
    // Fields drop in order: the context is detached before the span is exited, the reverse
    // of how they were set up.
    _attached: Option<opentelemetry::ContextGuard>,
    _entered: Option<tracing::span::Entered<'a>>,
}

pin_project! {
    /// The response future of every middleware: polls the inner future in the call's scope,
    /// shows the response head to the call and hands it to the [`ResponseBody`].
    pub(crate) struct ResponseFuture<F, C: Call> {
        #[pin]
        inner: F,
        // Taken once, when `inner` resolves; dropping it earlier ends the call as cancelled.
        call: Tracked<C>,
    }
}

impl<F, C: Call> ResponseFuture<F, C> {
    pub(crate) fn new(inner: F, call: Tracked<C>) -> Self {
        Self { inner, call }
    }

    pub(crate) fn inner(&self) -> &F {
        &self.inner
    }
}

impl<F, B, E, C> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
    C: OnError<E>,
{
    type Output = Result<Response<ResponseBody<B, C>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        assert!(
            this.call.get().is_some(),
            "ResponseFuture polled after completion"
        );
        let catches = this.call.get().is_some_and(Call::catches_panics);
        let polled = {
            let _scope = this.call.enter();
            if catches {
                // The future is never polled again after a panic, so a state it left broken
                // is never observed: asserting unwind safety is sound here.
                let inner = this.inner;
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx)))
            } else {
                Ok(this.inner.poll(cx))
            }
        };
        let result = match polled {
            Ok(polled) => ready!(polled),
            Err(payload) => {
                let mut call = this.call.take();
                let Some(state) = call.get_mut() else {
                    std::panic::resume_unwind(payload);
                };
                state.on_panic(panic_message(&*payload));
                let mut parts = state.panic_response();
                state.on_head(&mut parts);
                return Poll::Ready(Ok(Response::from_parts(parts, ResponseBody::empty(call))));
            }
        };
        let mut call = this.call.take();
        Poll::Ready(match result {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                if let Some(state) = call.get_mut() {
                    state.on_head(&mut parts);
                }
                Ok(Response::from_parts(parts, ResponseBody::new(body, call)))
            }
            Err(error) => {
                call.finish(Outcome::Failed(C::error_kind(&error)));
                Err(error)
            }
        })
    }
}

pin_project! {
    /// The response body of every middleware: where a call ends. `inner` is `None` for the
    /// empty answer to a panic.
    pub(crate) struct ResponseBody<B, C: Call> {
        #[pin]
        inner: Option<B>,
        call: Tracked<C>,
    }
}

impl<B: Body, C: Call> ResponseBody<B, C> {
    /// A body empty from the start (HEAD, 204, a gRPC trailers-only answer) may never be
    /// polled, so its call ends now.
    fn new(inner: B, mut call: Tracked<C>) -> Self {
        if inner.is_end_stream() {
            call.finish(Outcome::Completed);
        }
        Self {
            inner: Some(inner),
            call,
        }
    }
}

impl<B, C: Call> ResponseBody<B, C> {
    /// The empty body of the answer to a panic; the call ends now.
    fn empty(mut call: Tracked<C>) -> Self {
        call.finish(Outcome::Completed);
        Self { inner: None, call }
    }

    pub(crate) fn inner(&self) -> Option<&B> {
        self.inner.as_ref()
    }
}

impl<B: Body, C: Call> Body for ResponseBody<B, C> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Polled<B> {
        let this = self.project();
        match this.inner.as_pin_mut() {
            Some(inner) => poll_tracked(inner, this.call, cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| http_body::SizeHint::with_exact(0), Body::size_hint)
    }
}

/// What polling a body for a frame gives.
type Polled<B> = Poll<Option<Result<http_body::Frame<<B as Body>::Data>, <B as Body>::Error>>>;

/// Polls `inner` for a frame and shows it to the call, ending the call at the end.
fn poll_tracked<B: Body, C: Call>(
    mut inner: Pin<&mut B>,
    call: &mut Tracked<C>,
    cx: &mut TaskContext<'_>,
) -> Polled<B> {
    let polled = inner.as_mut().poll_frame(cx);
    let Some(state) = call.get_mut() else {
        return polled;
    };
    let ended = match &polled {
        Poll::Pending => return polled,
        Poll::Ready(None) => Some(Outcome::Completed),
        Poll::Ready(Some(Err(_))) => Some(Outcome::BodyFailed),
        Poll::Ready(Some(Ok(frame))) => {
            if let Some(data) = frame.data_ref() {
                state.on_data(data);
            }
            if let Some(trailers) = frame.trailers_ref() {
                state.on_trailers(trailers);
                Some(Outcome::Completed)
            } else {
                inner.is_end_stream().then_some(Outcome::Completed)
            }
        }
    };
    if let Some(outcome) = ended {
        call.finish(outcome);
    }
    polled
}

/// A module's public `ResponseFuture<F>` and `ResponseBody<B>`: newtypes over the generic
/// [`ResponseFuture`] and [`ResponseBody`] for the module's call state, so that every public
/// type has one generic parameter (tower-http's `opaque_future!` in spirit).
///
/// `error: [..]` are the bounds the middleware needs on the inner service's error.
macro_rules! response_types {
    (
        call: $call:ty,
        error: [$($bound:tt)*],
        $(#[$future_doc:meta])*
        future;
        $(#[$body_doc:meta])*
        body;
    ) => {
        pin_project_lite::pin_project! {
            $(#[$future_doc])*
            pub struct ResponseFuture<F> {
                #[pin]
                inner: $crate::core::lifecycle::ResponseFuture<F, $call>,
            }
        }

        impl<F> ResponseFuture<F> {
            pub(crate) fn new(
                inner: F,
                call: $crate::core::lifecycle::Tracked<$call>,
            ) -> Self {
                Self {
                    inner: $crate::core::lifecycle::ResponseFuture::new(inner, call),
                }
            }
        }

        impl<F: ::std::fmt::Debug> ::std::fmt::Debug for ResponseFuture<F> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct("ResponseFuture")
                    .field("inner", self.inner.inner())
                    .finish_non_exhaustive()
            }
        }

        impl<F, B, E> ::std::future::Future for ResponseFuture<F>
        where
            F: ::std::future::Future<Output = Result<::http::Response<B>, E>>,
            B: ::http_body::Body,
            E: $($bound)*,
        {
            type Output = Result<::http::Response<ResponseBody<B>>, E>;

            fn poll(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<Self::Output> {
                let polled = ::std::task::ready!(self.project().inner.poll(cx));
                ::std::task::Poll::Ready(polled.map(|response| response.map(|inner| ResponseBody { inner })))
            }
        }

        pin_project_lite::pin_project! {
            $(#[$body_doc])*
            pub struct ResponseBody<B> {
                #[pin]
                inner: $crate::core::lifecycle::ResponseBody<B, $call>,
            }
        }

        impl<B: ::std::fmt::Debug> ::std::fmt::Debug for ResponseBody<B> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct("ResponseBody")
                    .field("inner", &self.inner.inner())
                    .finish_non_exhaustive()
            }
        }

        $crate::core::lifecycle::body_wrapper!(
            impl<B: ::http_body::Body> for ResponseBody<B>,
            |this, cx| { this.inner.poll_frame(cx) }
        );
    };
}

pub(crate) use response_types;
