//! The configuration every middleware shares, and the setters that fill it, generated with one
//! doc each into every builder (`common_setters!`, `capture_setters!`, `access_setters!`,
//! `query_setters!`), so the four builders offer the same set and say the same things.

use http::HeaderName;
use opentelemetry::global::BoxedTracer;
use sightline_propagation::Propagator;

use super::classify::Side;
use super::headers::{HeaderCapture, HeaderCaptureConfig};
use crate::access::AccessLogLevels;
use crate::request_id::X_REQUEST_ID;

/// The common part of a builder, as the setters fill it.
pub(crate) struct CommonConfig {
    pub(crate) tracer: Option<BoxedTracer>,
    pub(crate) propagator: Propagator,
    pub(crate) request_id_header: Option<HeaderName>,
    pub(crate) metrics: bool,
    pub(crate) capture: HeaderCaptureConfig,
    pub(crate) attach_context: bool,
    pub(crate) random_trace_ids: bool,
}

impl CommonConfig {
    /// The defaults of a server (`attach_context` and `random_trace_ids` on) or a client
    /// (both off: a client's span is not the caller's context, and its caller decides).
    pub(crate) fn new(side: Side) -> Self {
        let server = side == Side::Server;
        Self {
            tracer: None,
            propagator: Propagator::new(),
            request_id_header: Some(X_REQUEST_ID),
            metrics: cfg!(feature = "metrics"),
            capture: HeaderCaptureConfig::default(),
            attach_context: server,
            random_trace_ids: server,
        }
    }

    /// The layer's common part, with the captured headers' attribute keys built under
    /// `prefixes` (request, response).
    pub(crate) fn build(self, prefixes: (&str, &str)) -> Common {
        Common {
            capture: self.capture.build_with_prefixes(prefixes.0, prefixes.1),
            tracer: self.tracer,
            propagator: self.propagator,
            request_id_header: self.request_id_header,
            metrics: self.metrics,
            attach_context: self.attach_context,
            random_trace_ids: self.random_trace_ids,
        }
    }

    pub(crate) fn debug_fields(&self, f: &mut std::fmt::DebugStruct<'_, '_>) {
        f.field("tracing", &self.tracer.is_some())
            .field("propagator", &self.propagator)
            .field("request_id_header", &self.request_id_header)
            .field("metrics", &self.metrics);
    }
}

/// The common part of a layer, shared by every clone and every service it makes.
pub(crate) struct Common {
    pub(crate) tracer: Option<BoxedTracer>,
    pub(crate) propagator: Propagator,
    pub(crate) request_id_header: Option<HeaderName>,
    /// Whether metrics are recorded (always `false` without the `metrics` feature).
    pub(crate) metrics: bool,
    pub(crate) capture: HeaderCapture,
    pub(crate) attach_context: bool,
    pub(crate) random_trace_ids: bool,
}

impl Common {
    pub(crate) fn debug_fields(&self, f: &mut std::fmt::DebugStruct<'_, '_>) {
        f.field("tracing", &self.tracer.is_some())
            .field("request_id_header", &self.request_id_header)
            .field("metrics", &self.metrics);
    }
}

/// The access-log part of a server builder.
pub(crate) struct AccessConfig {
    pub(crate) enabled: bool,
    pub(crate) levels: AccessLogLevels,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            levels: AccessLogLevels::DEFAULT,
        }
    }
}

/// Query parameters whose values are replaced with `REDACTED` in `url.query` and `url.full`:
/// the semantic conventions' list plus common credential names.
pub const DEFAULT_SENSITIVE_QUERY_PARAMS: &[&str] = &[
    "AWSAccessKeyId",
    "Signature",
    "sig",
    "X-Goog-Signature",
    "access_token",
    "api_key",
    "apikey",
    "auth",
    "code",
    "id_token",
    "key",
    "password",
    "refresh_token",
    "secret",
    "token",
];

/// [`DEFAULT_SENSITIVE_QUERY_PARAMS`] as a builder holds them.
pub(crate) fn default_sensitive_query_params() -> Vec<Box<str>> {
    DEFAULT_SENSITIVE_QUERY_PARAMS
        .iter()
        .map(|&p| p.into())
        .collect()
}

/// The setters every builder has, one doc each, and the builder's `Debug`. The builder has a
/// `common: CommonConfig` field.
///
/// - `layer`: the layer's path, for the examples;
/// - `span`: what the OpenTelemetry span is called ("server span");
/// - `metrics`: the metric names the `metrics` setter switches;
/// - `attach_context`, `random_trace_ids`: their defaults.
macro_rules! common_setters {
    (
        builder: $builder:ident,
        layer: $layer:literal,
        span: $span:literal,
        metrics: $metrics:literal,
        attach_context: $attach:literal,
        random_trace_ids: $random:literal $(,)?
    ) => {
        impl ::std::fmt::Debug for $builder {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let mut d = f.debug_struct(stringify!($builder));
                self.common.debug_fields(&mut d);
                d.finish_non_exhaustive()
            }
        }

        impl $builder {
            #[doc = concat!("The OpenTelemetry tracer that makes the ", $span, "s.")]
            ///
            /// Defaults to none: no span is made. Request IDs, metrics, propagation and the
            /// access log work without one; a server's log lines then carry only the request
            /// ID, and a client forwards the caller's context as it is.
            ///
            /// ```
            #[doc = concat!("let layer = ", $layer, "::builder()")]
            ///     .tracer(opentelemetry::global::tracer("checkout"))
            ///     .build();
            /// # drop(layer);
            /// ```
            pub fn tracer<T>(mut self, tracer: T) -> Self
            where
                T: ::opentelemetry::trace::Tracer + Send + Sync + 'static,
                T::Span: Send + Sync + 'static,
            {
                self.common.tracer = Some(::opentelemetry::global::BoxedTracer::new(Box::new(tracer)));
                self
            }

            /// Which trace context formats are read from incoming requests (servers) and
            /// written to outgoing ones (clients).
            ///
            /// Defaults to [`Propagator::new`](sightline_propagation::Propagator::new):
            /// W3C `traceparent`/`tracestate`, then B3 single and multi headers, are read;
            /// W3C `traceparent`/`tracestate` are written; W3C `baggage` both ways. Add B3
            /// to what is written with
            /// [`inject_formats`](sightline_propagation::PropagatorBuilder::inject_formats).
            ///
            /// ```
            /// use sightline_propagation::{Format, Propagator};
            ///
            /// let w3c_and_b3 = Propagator::builder()
            ///     .inject_formats(&[Format::TraceContext, Format::B3Multi])
            ///     .build();
            #[doc = concat!("let layer = ", $layer, "::builder().propagator(w3c_and_b3).build();")]
            /// # drop(layer);
            /// ```
            pub fn propagator(mut self, propagator: ::sightline_propagation::Propagator) -> Self {
                self.common.propagator = propagator;
                self
            }

            /// The header (a metadata key for gRPC) that carries the request ID. A server reads
            /// it (keeping a value of 1 to 128 visible ASCII characters, generating one
            /// otherwise) and returns it on the response; a client forwards the caller's
            /// [`RequestId`](crate::RequestId) in it, unless the request already has one.
            ///
            /// Defaults to `x-request-id`.
            ///
            /// ```
            #[doc = concat!("let layer = ", $layer, "::builder()")]
            ///     .request_id_header(http::HeaderName::from_static("x-correlation-id"))
            ///     .build();
            /// # drop(layer);
            /// ```
            pub fn request_id_header(mut self, name: ::http::HeaderName) -> Self {
                self.common.request_id_header = Some(name);
                self
            }

            /// Switches request IDs off: the header is neither read, generated, returned
            /// nor forwarded.
            ///
            /// ```
            #[doc = concat!("let layer = ", $layer, "::builder().without_request_id().build();")]
            /// # drop(layer);
            /// ```
            pub fn without_request_id(mut self) -> Self {
                self.common.request_id_header = None;
                self
            }

            #[doc = concat!("Whether to record ", $metrics, ".")]
            ///
            /// Defaults to `true` when the `metrics` feature is on.
            ///
            /// ```
            #[doc = concat!("let layer = ", $layer, "::builder().metrics(false).build();")]
            /// # drop(layer);
            /// ```
            pub fn metrics(mut self, enabled: bool) -> Self {
                self.common.metrics = enabled && cfg!(feature = "metrics");
                self
            }

            #[doc = concat!("Whether the ", $span, " is the current OpenTelemetry context while the inner")]
            /// service is called and polled, so that spans made there (directly or through
            /// `tracing-opentelemetry`) are its children.
            ///
            #[doc = concat!("Defaults to `", $attach, "`.")]
            ///
            /// ```
            #[doc = concat!("let layer = ", $layer, "::builder().attach_context(", $attach, ").build();")]
            /// # drop(layer);
            /// ```
            pub fn attach_context(mut self, enabled: bool) -> Self {
                self.common.attach_context = enabled;
                self
            }

            /// Whether the tracer's ID generator makes random trace ids, so that a trace this
            #[doc = concat!("middleware starts (a ", $span, " without a parent) carries the W3C Level 2")]
            /// `random` flag (0x02) in what children inherit, log lines print and requests
            /// propagate. The exported root span's own flags stay as the SDK sets them.
            ///
            #[doc = concat!("Defaults to `", $random, "`. The OpenTelemetry SDK's default generator makes")]
            /// random ids; leave this off for a tracer whose trace ids are not random.
            ///
            /// ```
            #[doc = concat!("let layer = ", $layer, "::builder().random_trace_ids(", $random, ").build();")]
            /// # drop(layer);
            /// ```
            pub fn random_trace_ids(mut self, random: bool) -> Self {
                self.common.random_trace_ids = random;
                self
            }
        }
    };
}

pub(crate) use common_setters;

/// The capture setters: `headers` (HTTP: `capture_request_headers`, ...) or `metadata` (gRPC:
/// `capture_request_metadata`, ...), writing the builder's `common.capture`.
macro_rules! capture_setters {
    (headers, builder: $builder:ident, layer: $layer:literal, span: $span:literal $(,)?) => {
        impl $builder {
            #[doc = concat!("Request headers recorded on the ", $span, " as `http.request.header.<name>`")]
            /// (a string array with every value of the header, as the semantic conventions
            /// say), read as the request arrived (a client reads them before injecting the
            /// trace context).
            ///
            /// The values of sensitive headers
            /// ([`DEFAULT_SENSITIVE_HEADERS`](crate::DEFAULT_SENSITIVE_HEADERS) and
            /// [`sensitive_headers`](Self::sensitive_headers)) are recorded as `REDACTED`.
            /// Values that are not UTF-8 are recorded with U+FFFD in place of the bad bytes.
            /// Headers are never written to log lines.
            ///
            /// Defaults to none.
            ///
            /// ```
            /// use http::header::{ACCEPT, AUTHORIZATION};
            ///
            /// // `http.request.header.accept` as sent, `http.request.header.authorization` as ["REDACTED"].
            #[doc = concat!("let layer = ", $layer, "::builder()")]
            ///     .capture_request_headers([ACCEPT, AUTHORIZATION])
            ///     .build();
            /// # drop(layer);
            /// ```
            pub fn capture_request_headers<I>(mut self, names: I) -> Self
            where
                I: IntoIterator<Item = ::http::HeaderName>,
            {
                self.common.capture.request = names.into_iter().collect();
                self
            }

            #[doc = concat!("Response headers recorded on the ", $span, " as `http.response.header.<name>`,")]
            /// with sensitive values (`set-cookie`, ...) recorded as `REDACTED`; see
            /// [`capture_request_headers`](Self::capture_request_headers).
            ///
            /// Defaults to none.
            ///
            /// ```
            /// use http::header::{CONTENT_TYPE, SET_COOKIE};
            ///
            #[doc = concat!("let layer = ", $layer, "::builder()")]
            ///     .capture_response_headers([CONTENT_TYPE, SET_COOKIE])
            ///     .build();
            /// # drop(layer);
            /// ```
            pub fn capture_response_headers<I>(mut self, names: I) -> Self
            where
                I: IntoIterator<Item = ::http::HeaderName>,
            {
                self.common.capture.response = names.into_iter().collect();
                self
            }

            /// Headers whose captured values are recorded as `REDACTED`, in addition to
            /// [`DEFAULT_SENSITIVE_HEADERS`](crate::DEFAULT_SENSITIVE_HEADERS)
            /// (`authorization`, `cookie`, `set-cookie`, `proxy-authorization`,
            /// `x-api-key`), which are always sensitive.
            ///
            /// Defaults to none beyond those.
            ///
            /// ```
            /// let token = http::HeaderName::from_static("x-session-token");
            #[doc = concat!("let layer = ", $layer, "::builder()")]
            ///     .capture_request_headers([token.clone()])
            ///     .sensitive_headers([token])
            ///     .build();
            /// # drop(layer);
            /// ```
            pub fn sensitive_headers<I>(mut self, names: I) -> Self
            where
                I: IntoIterator<Item = ::http::HeaderName>,
            {
                self.common.capture.sensitive = names.into_iter().collect();
                self
            }
        }
    };
    (metadata, builder: $builder:ident, layer: $layer:literal, span: $span:literal $(,)?) => {
        impl $builder {
            #[doc = concat!("Request metadata keys recorded on the ", $span, " as `rpc.request.metadata.<key>`")]
            /// (a string array), per the semantic conventions' opt-in attribute
            /// (`rpc.grpc.request.metadata.<key>` with
            /// [`legacy_semconv`](Self::legacy_semconv)), read as the call started (a client
            /// reads them before injecting the trace context). Values of sensitive keys
            /// (`authorization`, `cookie`, `x-api-key`, ..., and
            /// [`sensitive_metadata`](Self::sensitive_metadata)) are recorded as `REDACTED`.
            ///
            /// Defaults to none.
            ///
            /// ```
            /// use http::HeaderName;
            ///
            #[doc = concat!("let layer = ", $layer, "::builder()")]
            ///     .capture_request_metadata([HeaderName::from_static("x-tenant"), http::header::AUTHORIZATION])
            ///     .build();
            /// # drop(layer);
            /// ```
            pub fn capture_request_metadata<I>(mut self, keys: I) -> Self
            where
                I: IntoIterator<Item = ::http::HeaderName>,
            {
                self.common.capture.request = keys.into_iter().collect();
                self
            }

            /// Response metadata keys (from the response head or the trailers) recorded on
            #[doc = concat!("the ", $span, " as `rpc.response.metadata.<key>` (`rpc.grpc.response.metadata.<key>`")]
            /// with [`legacy_semconv`](Self::legacy_semconv)); sensitive values as
            /// `REDACTED`.
            ///
            /// Defaults to none.
            ///
            /// ```
            #[doc = concat!("let layer = ", $layer, "::builder()")]
            ///     .capture_response_metadata([http::HeaderName::from_static("x-shard")])
            ///     .build();
            /// # drop(layer);
            /// ```
            pub fn capture_response_metadata<I>(mut self, keys: I) -> Self
            where
                I: IntoIterator<Item = ::http::HeaderName>,
            {
                self.common.capture.response = keys.into_iter().collect();
                self
            }

            /// Metadata keys whose captured values are recorded as `REDACTED`, in addition to
            /// [`DEFAULT_SENSITIVE_HEADERS`](crate::DEFAULT_SENSITIVE_HEADERS), which always
            /// are.
            ///
            /// ```
            /// let token = http::HeaderName::from_static("x-upstream-token");
            #[doc = concat!("let layer = ", $layer, "::builder()")]
            ///     .capture_request_metadata([token.clone()])
            ///     .sensitive_metadata([token])
            ///     .build();
            /// # drop(layer);
            /// ```
            pub fn sensitive_metadata<I>(mut self, keys: I) -> Self
            where
                I: IntoIterator<Item = ::http::HeaderName>,
            {
                self.common.capture.sensitive = keys.into_iter().collect();
                self
            }
        }
    };
}

pub(crate) use capture_setters;

/// The access-log setters of a server builder, which has an `access: AccessConfig` field.
macro_rules! access_setters {
    (builder: $builder:ident, layer: $layer:literal $(,)?) => {
        impl $builder {
            /// Whether to emit one access-log event (target `sightline_http::access`) per
            /// request or call; excluded routes and health checks never do.
            ///
            /// Defaults to `true`.
            ///
            /// ```
            #[doc = concat!("let layer = ", $layer, "::builder().access_log(false).build();")]
            /// # drop(layer);
            /// ```
            pub fn access_log(mut self, enabled: bool) -> Self {
                self.access.enabled = enabled;
                self
            }

            /// The level of the access-log event by outcome (success, client error, server
            /// error; [`AccessLogLevels`](crate::access::AccessLogLevels) says which is which
            /// for HTTP and gRPC); `None` for a kind writes no event for it.
            ///
            /// Defaults to [`AccessLogLevels::DEFAULT`](crate::access::AccessLogLevels::DEFAULT):
            /// INFO, WARN, ERROR.
            ///
            /// ```
            /// use sightline_http::access::AccessLogLevels;
            ///
            #[doc = concat!("let layer = ", $layer, "::builder()")]
            ///     .access_log_levels(AccessLogLevels {
            ///         success: Some(tracing::Level::DEBUG),
            ///         ..AccessLogLevels::default()
            ///     })
            ///     .build();
            /// # drop(layer);
            /// ```
            pub fn access_log_levels(mut self, levels: $crate::access::AccessLogLevels) -> Self {
                self.access.levels = levels;
                self
            }
        }
    };
}

pub(crate) use access_setters;

/// `sensitive_query_params`, for a builder with a `sensitive_query_params` field.
macro_rules! query_setters {
    (builder: $builder:ident, layer: $layer:literal, attribute: $attribute:literal $(,)?) => {
        impl $builder {
            #[doc = concat!("Query parameter names whose values are recorded as `REDACTED` in `", $attribute, "`.")]
            ///
            /// Defaults to [`DEFAULT_SENSITIVE_QUERY_PARAMS`](crate::server::DEFAULT_SENSITIVE_QUERY_PARAMS);
            /// names compare case-insensitively, after percent-decoding.
            ///
            /// ```
            #[doc = concat!("let layer = ", $layer, "::builder()")]
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
        }
    };
}

pub(crate) use query_setters;
