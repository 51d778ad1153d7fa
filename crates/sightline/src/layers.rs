//! The middleware the built [`Sightline`] hands out: each as a ready layer with the defaults,
//! or as a pre-configured builder (tracer and propagation formats set) for a layer of your
//! own configuration. Any number of differently configured layers can be made.

use opentelemetry_sdk::trace::Tracer;
use sightline_http::client::{ClientLayer, ClientLayerBuilder};
#[cfg(feature = "grpc")]
use sightline_http::grpc::{
    GrpcClientLayer, GrpcClientLayerBuilder, GrpcServerLayer, GrpcServerLayerBuilder,
};
use sightline_http::server::{ServerLayer, ServerLayerBuilder};
use sightline_propagation::Propagator;

use crate::Sightline;

/// The tracer and propagator every layer gets, and the default layers, made once.
/// The server's metric settings from the environment.
#[derive(Default)]
pub(crate) struct ServerMetrics {
    pub(crate) tenant: Option<(http::HeaderName, sightline_http::server::TenantValues)>,
    pub(crate) series_limit: Option<usize>,
}

pub(crate) struct Layers {
    tracer: Tracer,
    propagator: Propagator,
    trusted_proxies: Vec<ipnet::IpNet>,
    server_metrics: ServerMetrics,
    http_server: ServerLayer,
    http_client: ClientLayer,
    #[cfg(feature = "grpc")]
    grpc_server: GrpcServerLayer,
}

impl Layers {
    pub(crate) fn new(
        tracer: Tracer,
        propagator: Option<Propagator>,
        trusted_proxies: Vec<ipnet::IpNet>,
        server_metrics: ServerMetrics,
    ) -> Self {
        let propagator = propagator.unwrap_or_default();
        let mut layers = Self {
            http_server: ServerLayer::builder().build(),
            http_client: ClientLayerBuilder::default().build(),
            #[cfg(feature = "grpc")]
            grpc_server: GrpcServerLayer::builder().build(),
            tracer,
            propagator,
            trusted_proxies,
            server_metrics,
        };
        layers.http_server = layers.http_server_builder().build();
        layers.http_client = layers.http_client_builder().build();
        #[cfg(feature = "grpc")]
        {
            layers.grpc_server = layers.grpc_server_builder().build();
        }
        layers
    }

    fn http_server_builder(&self) -> ServerLayerBuilder {
        let mut builder = ServerLayer::builder()
            .tracer(self.tracer.clone())
            .propagator(self.propagator.clone())
            .trusted_proxies(self.trusted_proxies.iter().copied());
        if let Some((header, values)) = &self.server_metrics.tenant {
            builder = builder.tenant_label(header.clone(), values.clone());
        }
        if let Some(limit) = self.server_metrics.series_limit {
            builder = builder.metric_series_limit(limit);
        }
        builder
    }

    fn http_client_builder(&self) -> ClientLayerBuilder {
        ClientLayerBuilder::default()
            .tracer(self.tracer.clone())
            .propagator(self.propagator.clone())
    }

    #[cfg(feature = "grpc")]
    fn grpc_server_builder(&self) -> GrpcServerLayerBuilder {
        GrpcServerLayer::builder()
            .tracer(self.tracer.clone())
            .propagator(self.propagator.clone())
    }
}

impl Sightline {
    /// The server middleware for an axum `Router` (apply it with `Router::layer`), with the
    /// defaults; [`http_server_layer_builder`](Self::http_server_layer_builder) configures one.
    pub fn http_server_layer(&self) -> ServerLayer {
        self.inner.layers.http_server.clone()
    }

    /// A builder of the server middleware with this `Sightline`'s tracer and propagation
    /// formats already set: for a layer with captured headers, other access-log levels, ...
    /// (see [`ServerLayerBuilder`]).
    ///
    /// ```
    /// # fn f() -> Result<(), sightline::Error> {
    /// use http::header::{AUTHORIZATION, USER_AGENT};
    /// use sightline::middleware::access::AccessLogLevels;
    ///
    /// let sightline = sightline::Sightline::builder().build()?;
    /// let layer = sightline
    ///     .http_server_layer_builder()
    ///     // `http.request.header.authorization` is recorded as ["REDACTED"].
    ///     .capture_request_headers([AUTHORIZATION, USER_AGENT])
    ///     .access_log_levels(AccessLogLevels {
    ///         success: Some(tracing::Level::DEBUG),
    ///         ..AccessLogLevels::default()
    ///     })
    ///     .build();
    /// # drop(layer);
    /// # Ok(()) }
    /// ```
    pub fn http_server_layer_builder(&self) -> ServerLayerBuilder {
        self.inner.layers.http_server_builder()
    }

    /// The client middleware for outgoing HTTP calls: a CLIENT span per call, the trace
    /// context and request ID injected, `http.client.request.duration` recorded. See
    /// [`sightline_http::client`].
    pub fn http_client_layer(&self) -> ClientLayer {
        self.inner.layers.http_client.clone()
    }

    /// A builder of the client middleware with this `Sightline`'s tracer and propagation
    /// formats already set (see [`ClientLayerBuilder`]).
    ///
    /// ```
    /// # fn f() -> Result<(), sightline::Error> {
    /// let sightline = sightline::Sightline::builder().build()?;
    /// let layer = sightline
    ///     .http_client_layer_builder()
    ///     .capture_response_headers([http::header::CONTENT_TYPE])
    ///     .build();
    /// # drop(layer);
    /// # Ok(()) }
    /// ```
    pub fn http_client_layer_builder(&self) -> ClientLayerBuilder {
        self.inner.layers.http_client_builder()
    }

    /// A [`reqwest-middleware`](https://docs.rs/reqwest-middleware) middleware for outgoing
    /// `reqwest` calls, made of [`Self::http_client_layer`]: a CLIENT span per call, the trace
    /// context in this `Sightline`'s formats and the request ID injected,
    /// `http.client.request.duration` recorded; the call ends when its body has been read.
    ///
    /// ```
    /// # fn f() -> Result<(), sightline::Error> {
    /// let sightline = sightline::Sightline::builder().build()?;
    /// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
    ///     .with(sightline.reqwest_middleware())
    ///     .build();
    /// # drop(client);
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "reqwest")]
    pub fn reqwest_middleware(&self) -> sightline_http::reqwest::ClientMiddleware {
        sightline_http::reqwest::ClientMiddleware::new(self.http_client_layer())
    }

    /// The server middleware for a tonic server, with the defaults:
    /// `tonic::transport::Server::builder().layer(sightline.grpc_server_layer())`.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), sightline::Error> {
    /// let sightline = sightline::Sightline::builder().service_name("greeter").build()?;
    /// let layer = sightline.grpc_server_layer();
    /// // tonic::transport::Server::builder().layer(layer).add_service(..).serve(addr)
    /// # drop(layer);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "grpc")]
    pub fn grpc_server_layer(&self) -> GrpcServerLayer {
        self.inner.layers.grpc_server.clone()
    }

    /// A builder of the gRPC server middleware with this `Sightline`'s tracer and propagation
    /// formats already set (known services, health-check tracing, error codes, ...; see
    /// [`GrpcServerLayerBuilder`]).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), sightline::Error> {
    /// use sightline::grpc::{Code, CodeSet};
    ///
    /// let sightline = sightline::Sightline::builder().service_name("greeter").build()?;
    /// let layer = sightline
    ///     .grpc_server_layer_builder()
    ///     .known_services(["sightline.example.v1.Greeter"])
    ///     .error_codes(CodeSet::SERVER_ERRORS.with(Code::NotFound))
    ///     .build();
    /// # drop(layer);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "grpc")]
    pub fn grpc_server_layer_builder(&self) -> GrpcServerLayerBuilder {
        self.inner.layers.grpc_server_builder()
    }

    /// The client middleware for a tonic `Channel` to `target` (`http://host:port`, which
    /// gives `server.address` and `server.port`), with the defaults:
    /// `ServiceBuilder::new().layer(sightline.grpc_client_layer(target)).service(channel)`.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), sightline::Error> {
    /// let sightline = sightline::Sightline::builder().service_name("checkout").build()?;
    /// let layer = sightline.grpc_client_layer("http://127.0.0.1:50051");
    /// // GreeterClient::new(tower::ServiceBuilder::new().layer(layer).service(channel))
    /// # drop(layer);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "grpc")]
    pub fn grpc_client_layer(&self, target: &str) -> GrpcClientLayer {
        self.grpc_client_layer_builder(target).build()
    }

    /// A builder of the gRPC client middleware for `target`, with this `Sightline`'s tracer
    /// and propagation formats already set (see [`GrpcClientLayerBuilder`]).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), sightline::Error> {
    /// use sightline::grpc::{Code, CodeSet};
    ///
    /// // A lookup that finds nothing is an answer, not a failed call.
    /// let sightline = sightline::Sightline::builder().service_name("checkout").build()?;
    /// let layer = sightline
    ///     .grpc_client_layer_builder("http://127.0.0.1:50051")
    ///     .error_codes(CodeSet::ALL_ERRORS.without(Code::NotFound))
    ///     .build();
    /// # drop(layer);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "grpc")]
    pub fn grpc_client_layer_builder(&self, target: &str) -> GrpcClientLayerBuilder {
        GrpcClientLayer::builder()
            .tracer(self.inner.layers.tracer.clone())
            .propagator(self.inner.layers.propagator.clone())
            .target(target)
    }

    /// The tracer of Sightline's own spans (instrumentation scope
    /// [`INSTRUMENTATION_SCOPE`](crate::INSTRUMENTATION_SCOPE)), for layers built by hand.
    pub fn tracer(&self) -> &Tracer {
        &self.inner.layers.tracer
    }

    /// The trace context formats every layer reads and writes
    /// ([`SightlineBuilder::propagator`](crate::SightlineBuilder::propagator)).
    pub fn propagator(&self) -> &Propagator {
        &self.inner.layers.propagator
    }
}
