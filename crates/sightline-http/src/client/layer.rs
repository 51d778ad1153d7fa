use std::sync::Arc;

use http::HeaderName;
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::Tracer;
use sightline_propagation::Propagator;

use super::Shared;
use super::service::Client;
use crate::headers::HeaderCaptureConfig;
use crate::request_id::X_REQUEST_ID;
use crate::server::DEFAULT_SENSITIVE_QUERY_PARAMS;

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
#[derive(Clone)]
pub struct ClientLayer {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for ClientLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientLayer")
            .field("tracing", &self.shared.tracer.is_some())
            .field("request_id_header", &self.shared.request_id_header)
            .finish_non_exhaustive()
    }
}

impl ClientLayer {
    /// A builder with every part switched on except OpenTelemetry spans, which need a tracer.
    ///
    /// ```
    /// let layer = sightline_http::client::ClientLayer::builder().build();
    /// # drop(layer);
    /// ```
    pub fn builder() -> ClientLayerBuilder {
        ClientLayerBuilder::default()
    }
}

impl<S> tower_layer::Layer<S> for ClientLayer {
    type Service = Client<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Client {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Builder of a [`ClientLayer`].
///
/// ```
/// use sightline_http::client::ClientLayer;
/// use sightline_propagation::{Format, Propagator};
///
/// let layer = ClientLayer::builder()
///     .tracer(opentelemetry::global::tracer("checkout"))
///     .propagator(
///         Propagator::builder()
///             .inject_formats(&[Format::TraceContext, Format::B3Single])
///             .build(),
///     )
///     .request_id_header(http::HeaderName::from_static("x-correlation-id"))
///     .build();
/// # drop(layer);
/// ```
pub struct ClientLayerBuilder {
    tracer: Option<BoxedTracer>,
    propagator: Propagator,
    request_id_header: Option<HeaderName>,
    metrics: bool,
    sensitive_query_params: Vec<Box<str>>,
    headers: HeaderCaptureConfig,
}

impl std::fmt::Debug for ClientLayerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientLayerBuilder")
            .field("tracing", &self.tracer.is_some())
            .field("propagator", &self.propagator)
            .field("request_id_header", &self.request_id_header)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl Default for ClientLayerBuilder {
    fn default() -> Self {
        Self {
            tracer: None,
            propagator: Propagator::new(),
            request_id_header: Some(X_REQUEST_ID),
            metrics: cfg!(feature = "metrics"),
            sensitive_query_params: DEFAULT_SENSITIVE_QUERY_PARAMS
                .iter()
                .map(|&p| p.into())
                .collect(),
            headers: HeaderCaptureConfig::default(),
        }
    }
}

impl ClientLayerBuilder {
    /// The OpenTelemetry tracer that makes the client spans.
    ///
    /// Defaults to none: no span is made, and the current context (if any) is injected as it
    /// is.
    ///
    /// ```
    /// let layer = sightline_http::client::ClientLayer::builder()
    ///     .tracer(opentelemetry::global::tracer("checkout"))
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn tracer<T>(mut self, tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Send + Sync + 'static,
    {
        self.tracer = Some(BoxedTracer::new(Box::new(tracer)));
        self
    }

    /// Which trace context formats are written to requests.
    ///
    /// Defaults to [`Propagator::new`]: W3C `traceparent`/`tracestate` and `baggage`; add B3
    /// with [`inject_formats`](sightline_propagation::PropagatorBuilder::inject_formats).
    ///
    /// ```
    /// use sightline_propagation::{Format, Propagator};
    ///
    /// let b3_only = Propagator::builder().inject_formats(&[Format::B3Multi]).build();
    /// let layer = sightline_http::client::ClientLayer::builder().propagator(b3_only).build();
    /// # drop(layer);
    /// ```
    pub fn propagator(mut self, propagator: Propagator) -> Self {
        self.propagator = propagator;
        self
    }

    /// The header the current request ID is sent in.
    ///
    /// Defaults to `x-request-id`.
    ///
    /// ```
    /// let layer = sightline_http::client::ClientLayer::builder()
    ///     .request_id_header(http::HeaderName::from_static("x-correlation-id"))
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn request_id_header(mut self, name: HeaderName) -> Self {
        self.request_id_header = Some(name);
        self
    }

    /// Switches request-ID forwarding off.
    ///
    /// ```
    /// let layer = sightline_http::client::ClientLayer::builder().without_request_id().build();
    /// # drop(layer);
    /// ```
    pub fn without_request_id(mut self) -> Self {
        self.request_id_header = None;
        self
    }

    /// Whether to record `http.client.request.duration`.
    ///
    /// Defaults to `true` when the `metrics` feature is on.
    ///
    /// ```
    /// let layer = sightline_http::client::ClientLayer::builder().metrics(false).build();
    /// # drop(layer);
    /// ```
    pub fn metrics(mut self, enabled: bool) -> Self {
        self.metrics = enabled && cfg!(feature = "metrics");
        self
    }

    /// Query parameter names whose values are recorded as `REDACTED` in `url.full`.
    ///
    /// Defaults to [`DEFAULT_SENSITIVE_QUERY_PARAMS`]; names compare case-insensitively.
    ///
    /// ```
    /// let layer = sightline_http::client::ClientLayer::builder()
    ///     .sensitive_query_params(["token", "signature"])
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn sensitive_query_params<I, P>(mut self, params: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<Box<str>>,
    {
        self.sensitive_query_params = params.into_iter().map(Into::into).collect();
        self
    }

    /// Request headers recorded on the client span as `http.request.header.<name>` (a string
    /// array with every value, as the semantic conventions say), read as the caller set them,
    /// before the trace context is injected.
    ///
    /// The values of sensitive headers ([`DEFAULT_SENSITIVE_HEADERS`](crate::DEFAULT_SENSITIVE_HEADERS)
    /// and [`sensitive_headers`](Self::sensitive_headers)) are recorded as `REDACTED`; values
    /// that are not UTF-8 get U+FFFD in place of the bad bytes.
    ///
    /// Defaults to none.
    ///
    /// ```
    /// use http::header::{ACCEPT, AUTHORIZATION};
    ///
    /// let layer = sightline_http::client::ClientLayer::builder()
    ///     .capture_request_headers([ACCEPT, AUTHORIZATION])
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn capture_request_headers<I>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = HeaderName>,
    {
        self.headers.request = names.into_iter().collect();
        self
    }

    /// Response headers recorded on the client span as `http.response.header.<name>`, with
    /// sensitive values (`set-cookie`, ...) recorded as `REDACTED`.
    ///
    /// Defaults to none.
    ///
    /// ```
    /// use http::header::{CONTENT_TYPE, SET_COOKIE};
    ///
    /// let layer = sightline_http::client::ClientLayer::builder()
    ///     .capture_response_headers([CONTENT_TYPE, SET_COOKIE])
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn capture_response_headers<I>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = HeaderName>,
    {
        self.headers.response = names.into_iter().collect();
        self
    }

    /// Headers whose captured values are recorded as `REDACTED`, in addition to
    /// [`DEFAULT_SENSITIVE_HEADERS`](crate::DEFAULT_SENSITIVE_HEADERS), which are always
    /// sensitive.
    ///
    /// Defaults to none beyond those.
    ///
    /// ```
    /// let token = http::HeaderName::from_static("x-upstream-token");
    /// let layer = sightline_http::client::ClientLayer::builder()
    ///     .capture_request_headers([token.clone()])
    ///     .sensitive_headers([token])
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn sensitive_headers<I>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = HeaderName>,
    {
        self.headers.sensitive = names.into_iter().collect();
        self
    }

    /// Builds the layer.
    ///
    /// ```
    /// let layer = sightline_http::client::ClientLayer::builder().build();
    /// # drop(layer);
    /// ```
    pub fn build(self) -> ClientLayer {
        ClientLayer {
            shared: Arc::new(Shared {
                tracer: self.tracer,
                propagator: self.propagator,
                request_id_header: self.request_id_header,
                sensitive_query_params: self.sensitive_query_params,
                headers: self.headers.build(),
                #[cfg(feature = "metrics")]
                histograms: self.metrics.then(Default::default),
            }),
        }
    }
}
