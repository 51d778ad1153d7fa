//! The client middleware: a CLIENT span, trace-context injection, request-ID forwarding and
//! `http.client.request.duration` for every outgoing request, in one layer.
//!
//! It wraps any [`Service`](tower_service::Service) taking an `http::Request<B>` and answering
//! an `http::Response<B2>`: `hyper_util`'s legacy client, a tonic channel, or any tower stack.
//!
//! ```no_run
//! use http_body_util::Empty;
//! use bytes::Bytes;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use sightline_http::client::ClientLayer;
//! use tower::{ServiceBuilder, ServiceExt as _};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let hyper_client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
//! let client = ServiceBuilder::new()
//!     .layer(
//!         ClientLayer::builder()
//!             .tracer(opentelemetry::global::tracer("checkout"))
//!             .build(),
//!     )
//!     .service(hyper_client);
//!
//! let request = http::Request::get("http://inventory.internal/items/42")
//!     .body(Empty::new())?;
//! let response = client.oneshot(request).await?;
//! // The call ends when the response body ends: read (or drop) it.
//! # drop(response);
//! # Ok(())
//! # }
//! ```
//!
//! # What happens to a call
//!
//! When the request is sent ([`Client::call`](tower_service::Service::call)), with the
//! current OpenTelemetry context ([`opentelemetry::Context::current`]) as the parent; inside a
//! handler behind [`ServerLayer`](crate::server::ServerLayer) that is the server span:
//!
//! 1. With a tracer configured, an OpenTelemetry span of kind CLIENT starts, named
//!    `{method}` (`HTTP` for methods the semantic conventions do not know), with
//!    `http.request.method` (`_OTHER` plus `http.request.method_original` for unknown
//!    methods), `server.address`, `server.port` (from the URI authority, or the `Host`
//!    header; 80 or 443 by scheme when absent) and `url.full` (userinfo removed, values of
//!    sensitive query parameters replaced by `REDACTED`).
//! 2. The context is injected into the request headers with the **client span's id**, never
//!    the caller's: W3C `traceparent` and `tracestate` by default (B3 when the
//!    [`Propagator`](sightline_propagation::Propagator) says so), and the current
//!    [`Baggage`](sightline_propagation::Baggage) as `baggage`. Without a tracer, the current
//!    context (if any) is injected as it is.
//! 3. The current [`RequestId`](crate::RequestId) is sent as `x-request-id`, unless the
//!    request already has one. The server layer keeps it in the OpenTelemetry context it
//!    attaches (with a tracer and `attach_context` on, the defaults once a tracer is set);
//!    elsewhere, put it there yourself with `Context::current().with_value(request_id)`.
//!
//! When the response head arrives, the span gets `http.response.status_code` and
//! `network.protocol.version`. The call **ends when the response body ends** (last data
//! frame, trailers, body error, or the body dropped). Then, exactly once:
//!
//! - a 4xx or 5xx answer sets the span status to Error and `error.type` to the status code;
//! - `http.client.request.duration` records the time since the call started, labelled by
//!   `http.request.method`, `server.address`, `server.port`, `http.response.status_code` and
//!   `error.type` (feature `metrics`);
//! - the span ends.
//!
//! An error from the inner service (connection refused, DNS, timeout...) passes through
//! untouched and ends the call with status Error and `error.type` `timeout` when the error
//! or one of its sources is a timeout by its type (an [`std::io::ErrorKind::TimedOut`],
//! tower's `Elapsed`, tonic's `TimeoutExpired` or a `DEADLINE_EXCEEDED` status), `_OTHER`
//! otherwise. The sources are reached through a boxed error (tower's `BoxError`, what most
//! stacks return) or an `io::Error`; an error's text is never read. A future or body dropped before the
//! end is the caller's cancellation, not a failure of the call: the span ends without error
//! status, with `error.type` `cancelled` (as on the server side).
//!
//! Put timeouts **inside** this layer (`ServiceBuilder::new().layer(client_layer)
//! .layer(TimeoutLayer::new(..))`) to see them as `timeout`; a timeout outside it drops the
//! call, which is recorded as cancelled.
//!
//! # With reqwest
//!
//! `reqwest::Client` is not a tower `Service`, and `reqwest-middleware` is not in Sightline's
//! dependency set. The recommended route is the one above: `hyper_util`'s legacy client (which
//! reqwest itself is built on) wrapped with
//! `ServiceBuilder::new().layer(client_layer).service(hyper_client)`. Code that must keep
//! reqwest can adapt it with a small [`tower::service_fn`](https://docs.rs/tower/latest/tower/fn.service_fn.html)
//! that turns the `http::Request` into a `reqwest::Request` (`reqwest::Request::try_from`)
//! and the `reqwest::Response` back into an `http::Response` (`http::Response::from`),
//! then wrap that service with this layer (a sketch, not compiled: reqwest is not a
//! dependency of this crate):
//!
//! ```text
//! let reqwest_client = reqwest::Client::new();
//! let service = tower::service_fn(move |req: http::Request<reqwest::Body>| {
//!     let client = reqwest_client.clone();
//!     async move {
//!         let req = reqwest::Request::try_from(req)?;
//!         let res = client.execute(req).await?;
//!         Ok::<_, reqwest::Error>(http::Response::from(res))
//!     }
//! });
//! let traced = ServiceBuilder::new().layer(client_layer).service(service);
//! ```

mod layer;
#[cfg(feature = "metrics")]
mod metrics;
mod service;
mod state;

pub use layer::ClientLayerBuilder;
#[cfg(feature = "metrics")]
pub use metrics::{HTTP_CLIENT_REQUEST_DURATION, describe_client_metrics};

use crate::core::config::Common;
use crate::core::middleware::middleware;

/// Configuration shared by every clone of a [`ClientLayer`] and the services it makes.
struct Shared {
    common: Common,
    sensitive_query_params: Vec<Box<str>>,
    #[cfg(feature = "metrics")]
    histograms: Option<metrics::Histograms>,
}

middleware! {
    /// [`Layer`](tower_layer::Layer) that applies the [`Client`] middleware: a CLIENT span,
    /// trace-context injection, request-ID forwarding and `http.client.request.duration` for
    /// every outgoing request.
    ///
    /// Cheap to clone. Build it with [`ClientLayer::builder`].
    ///
    /// ```
    /// use sightline_http::client::ClientLayer;
    /// use tower::ServiceBuilder;
    ///
    /// let layer = ClientLayer::builder()
    ///     .tracer(opentelemetry::global::tracer("checkout"))
    ///     .build();
    /// // any `Service<http::Request<B>, Response = http::Response<B2>>`, here a stub
    /// let client = ServiceBuilder::new().layer(layer).service_fn(|_req: http::Request<String>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    /// });
    /// # drop(client);
    /// ```
    layer: ClientLayer = "sightline_http::client::ClientLayer",
    builder: ClientLayerBuilder,
    /// Middleware that traces, propagates and measures every outgoing request; see the
    /// [module docs](self) for what is recorded and when.
    ///
    /// Made by [`ClientLayer`]. The inner service's error must be
    /// `Debug + Display + 'static` (every `std::error::Error` is, and so is tower's
    /// `Box<dyn Error + Send + Sync>`) so that a failed call can be classified; it is passed on
    /// untouched.
    ///
    /// ```
    /// use sightline_http::client::{Client, ClientLayer};
    /// use tower::ServiceBuilder;
    ///
    /// let client: Client<_> = ServiceBuilder::new()
    ///     .layer(ClientLayer::builder().build())
    ///     .service_fn(|_req: http::Request<String>| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    ///     });
    /// # drop(client);
    /// ```
    service: Client {},
    shared: Shared, call: state::CallState, inner_body: ReqBody, error: [::std::fmt::Debug + ::std::fmt::Display + 'static],
    ///
    /// For example:
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
    future;
    ///
    /// For example:
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
    body;
}
