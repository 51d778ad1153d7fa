//! The gRPC half: layers for tonic servers and channels, configured from the same builder.

use sightline_http::grpc::{
    GrpcClientLayer, GrpcClientLayerBuilder, GrpcServerLayer, GrpcServerLayerBuilder,
};

use sightline_propagation::Propagator;

use crate::{Sightline, SightlineBuilder};

type Configure<B> = Box<dyn FnOnce(B) -> B>;

/// The builder's gRPC settings.
#[derive(Default)]
pub(crate) struct GrpcConfig {
    server: Option<Configure<GrpcServerLayerBuilder>>,
    client: Option<Box<dyn Fn(GrpcClientLayerBuilder) -> GrpcClientLayerBuilder + Send + Sync>>,
}

/// What [`Sightline`] keeps to make the gRPC layers.
pub(crate) struct GrpcLayers {
    server: GrpcServerLayer,
    tracer: opentelemetry_sdk::trace::Tracer,
    propagator: Option<Propagator>,
    client: Option<Box<dyn Fn(GrpcClientLayerBuilder) -> GrpcClientLayerBuilder + Send + Sync>>,
}

impl GrpcConfig {
    pub(crate) fn build(
        self,
        tracer: opentelemetry_sdk::trace::Tracer,
        propagator: Option<Propagator>,
    ) -> GrpcLayers {
        let mut server = GrpcServerLayer::builder().tracer(tracer.clone());
        if let Some(propagator) = &propagator {
            server = server.propagator(propagator.clone());
        }
        if let Some(configure) = self.server {
            server = configure(server);
        }
        GrpcLayers {
            server: server.build(),
            tracer,
            propagator,
            client: self.client,
        }
    }
}

impl SightlineBuilder {
    /// Adjusts the gRPC server layer (known services, health-check tracing, error codes,
    /// message counts, legacy attribute names, ...).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), sightline::Error> {
    /// use sightline::grpc::{Code, CodeSet};
    ///
    /// let sightline = sightline::Sightline::builder()
    ///     .service_name("greeter")
    ///     .grpc_server(|layer| {
    ///         layer
    ///             .known_services(["sightline.example.v1.Greeter"])
    ///             .error_codes(CodeSet::SERVER_ERRORS.with(Code::NotFound))
    ///     })
    ///     .build()?;
    /// # drop(sightline);
    /// # Ok(())
    /// # }
    /// ```
    pub fn grpc_server(
        mut self,
        configure: impl FnOnce(GrpcServerLayerBuilder) -> GrpcServerLayerBuilder + 'static,
    ) -> Self {
        self.grpc.server = Some(Box::new(configure));
        self
    }

    /// Adjusts every gRPC client layer made by [`Sightline::grpc_client_layer`].
    ///
    /// ```no_run
    /// # fn main() -> Result<(), sightline::Error> {
    /// use sightline::grpc::{Code, CodeSet};
    ///
    /// // A lookup that finds nothing is an answer, not a failed call.
    /// let sightline = sightline::Sightline::builder()
    ///     .service_name("checkout")
    ///     .grpc_client(|layer| layer.error_codes(CodeSet::ALL_ERRORS.without(Code::NotFound)))
    ///     .build()?;
    /// # drop(sightline);
    /// # Ok(())
    /// # }
    /// ```
    pub fn grpc_client(
        mut self,
        configure: impl Fn(GrpcClientLayerBuilder) -> GrpcClientLayerBuilder + Send + Sync + 'static,
    ) -> Self {
        self.grpc.client = Some(Box::new(configure));
        self
    }
}

impl Sightline {
    /// The server middleware for a tonic server:
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
    pub fn grpc_server_layer(&self) -> GrpcServerLayer {
        self.inner.grpc.server.clone()
    }

    /// The client middleware for a tonic `Channel` to `target` (`http://host:port`, which
    /// gives `server.address` and `server.port`):
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
    pub fn grpc_client_layer(&self, target: &str) -> GrpcClientLayer {
        let grpc = &self.inner.grpc;
        let mut builder = GrpcClientLayer::builder()
            .tracer(grpc.tracer.clone())
            .target(target);
        if let Some(propagator) = &grpc.propagator {
            builder = builder.propagator(propagator.clone());
        }
        if let Some(configure) = &grpc.client {
            builder = configure(builder);
        }
        builder.build()
    }
}
