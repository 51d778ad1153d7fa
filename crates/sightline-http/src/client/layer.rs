//! [`ClientLayerBuilder`]: the client's configuration.

use super::{ClientLayer, Shared};
use crate::core::classify::Side;
use crate::core::config::{
    CommonConfig, capture_setters, common_setters, default_sensitive_query_params, query_setters,
};

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
    common: CommonConfig,
    sensitive_query_params: Vec<Box<str>>,
}

impl Default for ClientLayerBuilder {
    fn default() -> Self {
        Self {
            common: CommonConfig::new(Side::Client),
            sensitive_query_params: default_sensitive_query_params(),
        }
    }
}

common_setters! {
    builder: ClientLayerBuilder,
    layer: "sightline_http::client::ClientLayer",
    span: "client span",
    metrics: "`http.client.request.duration`",
    attach_context: "false",
    random_trace_ids: "false",
    builds: ClientLayer,
}

capture_setters! {
    headers,
    builder: ClientLayerBuilder,
    layer: "sightline_http::client::ClientLayer",
    span: "client span",
}

query_setters! {
    builder: ClientLayerBuilder,
    layer: "sightline_http::client::ClientLayer",
    attribute: "url.full",
    field: sensitive_query_params,
}

impl ClientLayerBuilder {
    fn into_shared(self) -> Shared {
        let common = self.common.build_http();
        Shared {
            sensitive_query_params: self.sensitive_query_params,
            #[cfg(feature = "metrics")]
            histograms: common.metrics_state(),
            common,
        }
    }
}
