//! The configuration every middleware shares, and the setters that fill it, generated with one
//! doc each into every builder (`common_setters!`, `capture_setters!`, `access_setters!`,
//! `query_setters!`), so the four builders offer the same set and say the same things.

use http::HeaderName;
use sightline_propagation::Propagator;

use super::classify::Side;
use super::headers::{HeaderCapture, HeaderCaptureConfig};
use crate::access::AccessLogLevels;
use crate::request_id::X_REQUEST_ID;

/// The configuration every middleware has: with the captured headers as the builder collects
/// them ([`CommonConfig`]), or with their attribute keys built, as the layer keeps it.
pub(crate) struct Common<C = HeaderCapture> {
    pub(crate) tracer: Option<super::tracer::LayerTracer>,
    pub(crate) propagator: Propagator,
    pub(crate) request_id_header: Option<HeaderName>,
    /// Whether metrics are recorded (always `false` without the `metrics` feature).
    pub(crate) metrics: bool,
    pub(crate) capture: C,
    pub(crate) attach_context: bool,
    pub(crate) random_trace_ids: bool,
}

/// The common part of a builder, as the setters fill it.
pub(crate) type CommonConfig = Common<HeaderCaptureConfig>;

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

    /// [`build`](Self::build) with the HTTP prefixes: `http.request.header`,
    /// `http.response.header`.
    pub(crate) fn build_http(self) -> Common {
        use opentelemetry_semantic_conventions::attribute::{
            HTTP_REQUEST_HEADER, HTTP_RESPONSE_HEADER,
        };

        self.build((HTTP_REQUEST_HEADER, HTTP_RESPONSE_HEADER))
    }
}

impl<C> Common<C> {
    pub(crate) fn debug_fields(&self, f: &mut std::fmt::DebugStruct<'_, '_>) {
        f.field("tracing", &self.tracer.is_some())
            .field("request_id_header", &self.request_id_header)
            .field("metrics", &self.metrics);
    }

    /// `T::default()` when the layer records metrics: its handle caches.
    #[cfg(feature = "metrics")]
    pub(crate) fn metrics_state<T: Default>(&self) -> Option<T> {
        self.metrics.then(T::default)
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
/// - `attach_context`, `random_trace_ids`: their defaults;
/// - `builds`: the layer `build()` makes, from the builder's `into_shared()`.
macro_rules! common_setters {
    (
        builder: $builder:ident,
        layer: $layer:literal,
        span: $span:literal,
        metrics: $metrics:literal,
        attach_context: $attach:literal,
        random_trace_ids: $random:literal,
        builds: $built:ident $(,)?
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
                self.common.tracer = Some($crate::core::tracer::LayerTracer::new(tracer));
                self
            }

            #[doc = concat!("Adds attributes to every ", $span, " from the request head, when the span starts")]
            /// (a tenant from a header, an API version from the path): the hook appends
            /// them to the list it is given. Runs only for requests that get a span, after
            /// the semantic-convention attributes, so it may also override one. Like the
            /// OpenTelemetry contrib crates' request extractors.
            ///
            /// Defaults to none.
            ///
            /// ```
            /// use opentelemetry::KeyValue;
            ///
            #[doc = concat!("let layer = ", $layer, "::builder()")]
            ///     .request_attributes(|head, attrs| {
            ///         if let Some(tenant) = head.headers().get("x-tenant").and_then(|v| v.to_str().ok()) {
            ///             attrs.push(KeyValue::new("tenant.id", tenant.to_owned()));
            ///         }
            ///     })
            ///     .build();
            /// # drop(layer);
            /// ```
            pub fn request_attributes<F>(mut self, hook: F) -> Self
            where
                F: Fn(&$crate::RequestHead<'_>, &mut Vec<::opentelemetry::KeyValue>) + Send + Sync + 'static,
            {
                self.common.capture.hooks.request = Some(::std::sync::Arc::new(hook));
                self
            }

            #[doc = concat!("Adds attributes to every ", $span, " from the response head, when it arrives")]
            /// (a cache status, a header the service sets). Defaults to none.
            ///
            /// ```
            /// use opentelemetry::KeyValue;
            ///
            #[doc = concat!("let layer = ", $layer, "::builder()")]
            ///     .response_attributes(|head, attrs| {
            ///         if let Some(cache) = head.headers().get("x-cache").and_then(|v| v.to_str().ok()) {
            ///             attrs.push(KeyValue::new("http.cache_status", cache.to_owned()));
            ///         }
            ///     })
            ///     .build();
            /// # drop(layer);
            /// ```
            pub fn response_attributes<F>(mut self, hook: F) -> Self
            where
                F: Fn(&$crate::ResponseHead<'_>, &mut Vec<::opentelemetry::KeyValue>) + Send + Sync + 'static,
            {
                self.common.capture.hooks.response = Some(::std::sync::Arc::new(hook));
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

            /// Builds the layer.
            ///
            /// ```
            #[doc = concat!("let layer = ", $layer, "::builder().build();")]
            /// # drop(layer);
            /// ```
            pub fn build(self) -> $built {
                $built::from_shared(self.into_shared())
            }
        }
    };
}

pub(crate) use common_setters;

/// The capture setters, writing the builder's `common.capture`: named for headers (HTTP) or
/// metadata (gRPC) by `fns`, with the attribute keys they record.
macro_rules! capture_setters {
    (headers, builder: $builder:ident, layer: $layer:literal, span: $span:literal $(,)?) => {
        $crate::core::config::capture_setters! {
            builder: $builder,
            layer: $layer,
            span: $span,
            fns: [capture_request_headers, capture_response_headers, sensitive_headers],
            what: "header",
            keys: ["`http.request.header.<name>`", "`http.response.header.<name>`"],
        }
    };
    (metadata, builder: $builder:ident, layer: $layer:literal, span: $span:literal $(,)?) => {
        $crate::core::config::capture_setters! {
            builder: $builder,
            layer: $layer,
            span: $span,
            fns: [capture_request_metadata, capture_response_metadata, sensitive_metadata],
            what: "metadata key",
            keys: [
                "`rpc.request.metadata.<key>` (`rpc.grpc.request.metadata.<key>` with [`legacy_semconv`](Self::legacy_semconv))",
                "`rpc.response.metadata.<key>` (`rpc.grpc.response.metadata.<key>` with [`legacy_semconv`](Self::legacy_semconv))"
            ],
        }
    };
    (@setter $(#[$doc:meta])* fn $name:ident => $field:ident) => {
        $(#[$doc])*
        pub fn $name<I>(mut self, names: I) -> Self
        where
            I: IntoIterator<Item = ::http::HeaderName>,
        {
            self.common.capture.$field = names.into_iter().collect();
            self
        }
    };
    (
        builder: $builder:ident,
        layer: $layer:literal,
        span: $span:literal,
        fns: [$request:ident, $response:ident, $sensitive:ident],
        what: $what:literal,
        keys: [$request_key:literal, $response_key:literal] $(,)?
    ) => {
        impl $builder {
            $crate::core::config::capture_setters! {
                @setter
                #[doc = concat!("Request ", $what, "s recorded on the ", $span, " as ", $request_key, " (a string")]
                /// array with every value, as the semantic conventions' opt-in attribute says),
                /// read as the request arrived (a client reads them before injecting the trace
                /// context).
                ///
                #[doc = concat!("The values of sensitive ", $what, "s ([`DEFAULT_SENSITIVE_HEADERS`](crate::DEFAULT_SENSITIVE_HEADERS)")]
                #[doc = concat!("and [`", stringify!($sensitive), "`](Self::", stringify!($sensitive), ")) are recorded as `REDACTED`.")]
                /// Values that are not UTF-8 are recorded with U+FFFD in place of the bad bytes.
                /// They are never written to log lines.
                ///
                /// Defaults to none.
                ///
                /// ```
                /// use http::header::{ACCEPT, AUTHORIZATION};
                ///
                /// // `accept` as sent, `authorization` as ["REDACTED"].
                #[doc = concat!("let layer = ", $layer, "::builder()")]
                #[doc = concat!("    .", stringify!($request), "([ACCEPT, AUTHORIZATION])")]
                ///     .build();
                /// # drop(layer);
                /// ```
                fn $request => request
            }

            $crate::core::config::capture_setters! {
                @setter
                #[doc = concat!("Response ", $what, "s (from the response head, and for gRPC the trailers) recorded")]
                #[doc = concat!("on the ", $span, " as ", $response_key, ", with sensitive values (`set-cookie`, ...)")]
                #[doc = concat!("recorded as `REDACTED`; see [`", stringify!($request), "`](Self::", stringify!($request), ").")]
                ///
                /// Defaults to none.
                ///
                /// ```
                /// use http::header::{CONTENT_TYPE, SET_COOKIE};
                ///
                #[doc = concat!("let layer = ", $layer, "::builder()")]
                #[doc = concat!("    .", stringify!($response), "([CONTENT_TYPE, SET_COOKIE])")]
                ///     .build();
                /// # drop(layer);
                /// ```
                fn $response => response
            }

            $crate::core::config::capture_setters! {
                @setter
                #[doc = concat!("Request and response ", $what, "s whose captured values are recorded as `REDACTED`,")]
                /// in addition to [`DEFAULT_SENSITIVE_HEADERS`](crate::DEFAULT_SENSITIVE_HEADERS)
                /// (`authorization`, `cookie`, `set-cookie`, `proxy-authorization`, `x-api-key`),
                /// which are always sensitive.
                ///
                /// Defaults to none beyond those.
                ///
                /// ```
                /// let token = http::HeaderName::from_static("x-session-token");
                #[doc = concat!("let layer = ", $layer, "::builder()")]
                #[doc = concat!("    .", stringify!($request), "([token.clone()])")]
                #[doc = concat!("    .", stringify!($sensitive), "([token])")]
                ///     .build();
                /// # drop(layer);
                /// ```
                fn $sensitive => sensitive
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

/// A setter of a list of names (`Vec<Box<str>>`) at `field`, with its docs.
macro_rules! names_setter {
    ($builder:ident, $(#[$doc:meta])* fn $name:ident => $($field:ident).+) => {
        impl $builder {
            $(#[$doc])*
            pub fn $name<I, R>(mut self, names: I) -> Self
            where
                I: IntoIterator<Item = R>,
                R: Into<Box<str>>,
            {
                self.$($field).+ = names.into_iter().map(Into::into).collect();
                self
            }
        }
    };
}

pub(crate) use names_setter;

/// `sensitive_query_params`, setting the builder's `field`.
macro_rules! query_setters {
    (
        builder: $builder:ident,
        layer: $layer:literal,
        attribute: $attribute:literal,
        field: $($field:ident).+ $(,)?
    ) => {
        $crate::core::config::names_setter! {
            $builder,
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
            fn sensitive_query_params => $($field).+
        }
    };
}

pub(crate) use query_setters;
