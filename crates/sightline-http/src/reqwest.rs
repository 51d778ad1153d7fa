//! Outgoing `reqwest` calls: a [`reqwest_middleware::Middleware`] that runs each call through
//! the [`ClientLayer`], so a `reqwest` call gets exactly what a tower client gets: a CLIENT
//! span (child of the current context), the context injected in the configured formats, the
//! request ID forwarded, `http.client.request.duration`, and the call ending when the
//! response body has been read (docs/adr/0013-reqwest-middleware.md).
//!
//! ```
//! use sightline_http::client::ClientLayer;
//! use sightline_http::reqwest::ClientMiddleware;
//!
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(ClientMiddleware::new(
//!         ClientLayer::builder()
//!             .tracer(opentelemetry::global::tracer("checkout"))
//!             .build(),
//!     ))
//!     .build();
//! # drop(client);
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use http::Extensions;
use reqwest::ResponseBuilderExt as _;
use reqwest_middleware::{Middleware, Next};
use tower_layer::Layer as _;
use tower_service::Service;

use crate::client::ClientLayer;

/// A `reqwest-middleware` middleware made of a [`ClientLayer`]; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct ClientMiddleware {
    layer: ClientLayer,
}

impl ClientMiddleware {
    /// The middleware of `layer` (its tracer, propagation formats, request-ID header,
    /// captured headers and metrics).
    pub fn new(layer: ClientLayer) -> Self {
        Self { layer }
    }
}

impl From<ClientLayer> for ClientMiddleware {
    fn from(layer: ClientLayer) -> Self {
        Self::new(layer)
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Middleware for ClientMiddleware {
    // `async_trait`'s expansion, written out: this crate does not need the macro for one impl.
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        req: reqwest::Request,
        extensions: &'life1 mut Extensions,
        next: Next<'life2>,
    ) -> BoxFuture<'async_trait, reqwest_middleware::Result<reqwest::Response>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            // The conversions keep everything but the per-request timeout: carried across.
            let timeout = req.timeout().copied();
            let req = http::Request::<reqwest::Body>::try_from(req)?;
            let mut service = self.layer.layer(NextService {
                next: Some((next, extensions)),
                timeout,
            });
            let response = service.call(req).await?;
            let (parts, body) = response.into_parts();
            Ok(reqwest::Response::from(http::Response::from_parts(
                parts,
                reqwest::Body::wrap(body),
            )))
        })
    }
}

/// The rest of the `reqwest-middleware` chain as the tower service the layer wraps; it is
/// called once.
struct NextService<'a> {
    next: Option<(Next<'a>, &'a mut Extensions)>,
    timeout: Option<Duration>,
}

impl<'a> Service<http::Request<reqwest::Body>> for NextService<'a> {
    type Response = http::Response<reqwest::Body>;
    type Error = reqwest_middleware::Error;
    type Future = BoxFuture<'a, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<reqwest::Body>) -> Self::Future {
        let next = self.next.take();
        let timeout = self.timeout;
        Box::pin(async move {
            let Some((next, extensions)) = next else {
                return Err(reqwest_middleware::Error::middleware(CalledTwice));
            };
            let mut req = reqwest::Request::try_from(req)?;
            *req.timeout_mut() = timeout;
            let response = next.run(req, extensions).await?;
            Ok(into_http(response))
        })
    }
}

/// `response` as an `http::Response`, keeping its URL (which `reqwest`'s own conversion
/// drops) for the caller's `Response::url`.
fn into_http(response: reqwest::Response) -> http::Response<reqwest::Body> {
    let url = response.url().clone();
    let (parts, body) = http::Response::from(response).into_parts();
    let mut builder = http::Response::builder()
        .status(parts.status)
        .version(parts.version);
    if let Some(extensions) = builder.extensions_mut() {
        extensions.extend(parts.extensions);
    }
    if let Some(headers) = builder.headers_mut() {
        *headers = parts.headers;
    }
    builder
        .url(url)
        .body(body)
        .unwrap_or_else(|_| http::Response::new(reqwest::Body::from(Vec::new())))
}

/// The next middleware was asked to run twice (a bug of the chain, not of the call).
#[derive(Debug)]
struct CalledTwice;

impl std::fmt::Display for CalledTwice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the rest of the middleware chain was called twice")
    }
}

impl std::error::Error for CalledTwice {}
