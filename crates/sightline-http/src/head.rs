//! What the attribute hooks and the route extractor see of a request or a response: its head,
//! borrowed.

use std::borrow::Cow;
use std::sync::Arc;

use http::{Extensions, HeaderMap, Method, Request, StatusCode, Uri, Version};
use opentelemetry::KeyValue;

/// A request's head, as an attribute hook or a route extractor sees it.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    method: &'a Method,
    uri: &'a Uri,
    version: Version,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
}

impl<'a> RequestHead<'a> {
    pub(crate) fn of<B>(req: &'a Request<B>) -> Self {
        Self {
            method: req.method(),
            uri: req.uri(),
            version: req.version(),
            headers: req.headers(),
            extensions: req.extensions(),
        }
    }

    /// The method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The URI (for a server, usually only the path and query).
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The extensions (what earlier layers or the router put there).
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }
}

/// A response's head, as an attribute hook sees it.
#[derive(Debug, Clone, Copy)]
pub struct ResponseHead<'a> {
    status: StatusCode,
    version: Version,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
}

impl<'a> ResponseHead<'a> {
    pub(crate) fn of(parts: &'a http::response::Parts) -> Self {
        Self {
            status: parts.status,
            version: parts.version,
            headers: &parts.headers,
            extensions: &parts.extensions,
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The extensions.
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }
}

pub(crate) type RequestHook = Arc<dyn Fn(&RequestHead<'_>, &mut Vec<KeyValue>) + Send + Sync>;
pub(crate) type ResponseHook = Arc<dyn Fn(&ResponseHead<'_>, &mut Vec<KeyValue>) + Send + Sync>;
pub(crate) type RouteExtractor =
    Arc<dyn Fn(&RequestHead<'_>) -> Option<Cow<'static, str>> + Send + Sync>;

/// The attribute hooks of a layer.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) request: Option<RequestHook>,
    pub(crate) response: Option<ResponseHook>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("request", &self.request.is_some())
            .field("response", &self.response.is_some())
            .finish()
    }
}
